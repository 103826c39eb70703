"""The fake OpenAI server behaves like the real API as far as the `openai` SDK can tell."""

from __future__ import annotations

import contextlib
import json
import threading

import openai
import pytest

from tests.fakes.openai_server import (
    CONTENT_POLICY,
    FakeOpenAIServer,
    Fault,
    FineTuneFailure,
    Reply,
    default_epochs,
)

KEY = "sk-test-0123456789"
STORY_MESSAGE = {
    "role": "user",
    "content": "Critique this.\n\n=== STORY ===\nTitle: Rain\n\nThe rain fell all Tuesday on the harbour.\n\n"
               "She did not look up.\n\n=== END STORY ===\n\nFEEDBACK:",
}


@pytest.fixture
def server():
    with FakeOpenAIServer(api_key=KEY) as fake:
        yield fake


def client_for(fake: FakeOpenAIServer, *, key: str = KEY, retries: int = 0, timeout: float = 10.0):
    return openai.OpenAI(base_url=fake.base_url, api_key=key, max_retries=retries, timeout=timeout)


def training_jsonl(examples: int, *, broken_line: int | None = None) -> bytes:
    lines = []
    for i in range(examples):
        row = {"messages": [
            {"role": "system", "content": "You are an editor."},
            {"role": "user", "content": f"Story number {i}: the lighthouse keeper counts ships."},
            {"role": "assistant", "content": "Your pacing in the opening works; show the fear instead."},
        ]}
        lines.append(json.dumps({"prompt": "x"}) if i == broken_line else json.dumps(row))
    return ("\n".join(lines) + "\n").encode()


def test_completion_is_a_second_person_critique_with_usage(server):
    reply = client_for(server).chat.completions.create(model="gpt-4o-mini", messages=[STORY_MESSAGE])

    text = reply.choices[0].message.content
    assert reply.model == "gpt-4o-mini"
    assert reply.choices[0].finish_reason == "stop"
    assert reply.id.startswith("chatcmpl-") and reply.created > 0
    assert len(text.split("\n\n")) == 2
    assert text.startswith("Your ") and " you " in text
    assert "The rain fell all Tuesday" in text  # it quotes the story, briefly
    assert reply.usage.completion_tokens > 0 and reply.usage.prompt_tokens > 0
    assert reply.usage.total_tokens == reply.usage.prompt_tokens + reply.usage.completion_tokens
    assert server.success_counts == {STORY_MESSAGE["content"]: 1}


def test_reply_can_be_fixed_computed_or_queued(server):
    client = client_for(server)
    ask = {"model": "gpt-4.1-mini", "messages": [{"role": "user", "content": "hello"}]}

    server.configure(reply=lambda messages: f"echo {messages[-1]['content']}")
    assert client.chat.completions.create(**ask).choices[0].message.content == "echo hello"

    server.queue_replies("first", Reply("cut off mid", finish_reason="length"))
    server.configure(reply="fixed")
    texts = [client.chat.completions.create(**ask).choices[0] for _ in range(3)]
    assert [(c.message.content, c.finish_reason) for c in texts] == [
        ("first", "stop"), ("cut off mid", "length"), ("fixed", "stop"),
    ]


def test_max_tokens_and_stop_sequences_shape_the_reply(server):
    client = client_for(server)
    server.configure(reply="All good. <<END>> trailing chatter")
    stopped = client.chat.completions.create(model="m", messages=[STORY_MESSAGE], stop=["<<END>>"])
    assert stopped.choices[0].message.content == "All good. "

    server.configure(reply=None)
    capped = client.chat.completions.create(model="m", messages=[STORY_MESSAGE], max_tokens=10)
    assert capped.choices[0].finish_reason == "length"
    assert capped.usage.completion_tokens == 10


def test_wrong_or_missing_key_is_401_invalid_api_key(server):
    with pytest.raises(openai.AuthenticationError) as err:
        client_for(server, key="sk-wrong-abcdef").chat.completions.create(model="m", messages=[STORY_MESSAGE])
    assert err.value.status_code == 401
    assert err.value.code == "invalid_api_key"
    assert "sk-wrong-abcdef" not in err.value.message and "cdef" in err.value.message  # masked, like OpenAI
    assert server.total_successes == 0
    assert server.status_counts() == {401: 1}


def test_scripted_429_is_retried_by_the_sdk_after_retry_after(server):
    server.push_script(Fault(429, retry_after=1))
    reply = client_for(server, retries=2).chat.completions.create(model="m", messages=[STORY_MESSAGE])

    assert reply.choices[0].message.content
    calls = server.chat_requests()
    assert [c.status for c in calls] == [429, 200]
    # Without the header the SDK's first backoff is at most 0.5 s; it waited the full second it was told.
    assert calls[1].at - calls[0].at >= 1.0
    assert server.successes_containing("The rain fell all Tuesday") == 1


def test_error_bodies_look_like_openai(server):
    server.push_script(CONTENT_POLICY, 500, Fault(429, code="insufficient_quota", type="insufficient_quota"))
    client = client_for(server)
    with pytest.raises(openai.BadRequestError) as bad:
        client.chat.completions.create(model="m", messages=[STORY_MESSAGE])
    assert bad.value.code == "content_policy_violation"
    assert bad.value.body["type"] == "invalid_request_error"
    with pytest.raises(openai.InternalServerError) as boom:
        client.chat.completions.create(model="m", messages=[STORY_MESSAGE])
    assert boom.value.status_code == 500 and boom.value.type == "server_error"
    with pytest.raises(openai.RateLimitError) as quota:
        client.chat.completions.create(model="m", messages=[STORY_MESSAGE])
    assert quota.value.code == "insufficient_quota"
    assert "retry-after" not in quota.value.response.headers  # waiting does not fix an empty account


def test_random_faults_are_reproducible_with_a_seed():
    def statuses(seed: int) -> list[int]:
        with FakeOpenAIServer(failure_rate=0.5, rate_limit_share=0.5, seed=seed, retry_after=None) as fake:
            client = client_for(fake)
            for _ in range(30):
                with contextlib.suppress(openai.APIStatusError):
                    client.chat.completions.create(model="m", messages=[STORY_MESSAGE])
            return [r.status for r in fake.chat_requests()]

    first, again = statuses(7), statuses(7)
    assert first == again
    assert {200, 429, 500} <= set(first)


def test_stall_outlasts_the_client_timeout_and_is_not_counted_as_paid(server):
    server.configure(stall_seconds=2.0)
    server.push_script("stall")
    with pytest.raises(openai.APITimeoutError):
        client_for(server, timeout=0.3).chat.completions.create(model="m", messages=[STORY_MESSAGE])
    client_for(server).chat.completions.create(model="m", messages=[STORY_MESSAGE])
    assert server.success_counts == {STORY_MESSAGE["content"]: 1}


def test_counts_are_exact_under_concurrency(server):
    client = client_for(server)
    errors: list[Exception] = []

    def ask(n: int) -> None:
        try:
            client.chat.completions.create(model="m", messages=[{"role": "user", "content": f"story {n % 5}"}])
        except Exception as err:  # reported by the assertion below
            errors.append(err)

    threads = [threading.Thread(target=ask, args=(n,)) for n in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert server.success_counts == {f"story {n}": 4 for n in range(5)}
    assert len(server.chat_requests()) == 20


def test_fine_tune_job_runs_to_success(server):
    server.configure(fine_tune_polls_per_state=2)
    client = client_for(server)
    data = training_jsonl(12)
    uploaded = client.files.create(file=("train.jsonl", data), purpose="fine-tune")
    assert client.files.retrieve(uploaded.id).bytes == len(data)
    assert client.files.content(uploaded.id).read() == data
    assert server.file_content(uploaded.id) == data.decode()

    job = client.fine_tuning.jobs.create(
        model="gpt-4o-mini-2024-07-18", training_file=uploaded.id, suffix="writing-coach", seed=7,
        metadata={"build_id": "b1"},
        method={"type": "supervised", "supervised": {"hyperparameters": {"n_epochs": 2}}},
    )
    seen = [job.status]
    while job.status not in ("succeeded", "failed", "cancelled"):
        job = client.fine_tuning.jobs.retrieve(job.id)
        seen.append(job.status)

    assert seen == [
        "validating_files", "validating_files", "queued", "queued", "running", "running", "succeeded",
    ]
    assert job.fine_tuned_model == f"ft:gpt-4o-mini-2024-07-18:coach:writing-coach:{job.id[6:14]}"
    one_pass = sum(-(-len("".join(m["content"] for m in json.loads(line)["messages"])) // 4)
                   for line in data.decode().splitlines())
    assert job.trained_tokens == one_pass * 2
    assert job.metadata == {"build_id": "b1"} and job.seed == 7
    events = [e.message for e in client.fine_tuning.jobs.list_events(job.id)]
    assert events[0] == "The job has successfully completed"
    assert all(e.level == "info" for e in client.fine_tuning.jobs.list_events(job.id))
    checkpoints = list(client.fine_tuning.jobs.checkpoints.list(job.id))
    assert len(checkpoints) == 2
    assert checkpoints[0].fine_tuned_model_checkpoint.startswith(job.fine_tuned_model)
    assert job.fine_tuned_model in [m.id for m in client.models.list()]
    assert server.jobs[job.id].request_body["suffix"] == "writing-coach"


def test_fine_tune_job_fails_on_a_bad_training_file(server):
    client = client_for(server)
    broken = training_jsonl(12, broken_line=3)
    uploaded = client.files.create(file=("train.jsonl", broken), purpose="fine-tune")
    job = client.fine_tuning.jobs.create(model="gpt-4o-mini-2024-07-18", training_file=uploaded.id)
    while job.status not in ("succeeded", "failed", "cancelled"):
        job = client.fine_tuning.jobs.retrieve(job.id)

    assert job.status == "failed"
    assert job.error.code == "invalid_training_file"
    assert "Line 4" in job.error.message
    assert job.fine_tuned_model is None and job.trained_tokens is None
    assert next(iter(client.fine_tuning.jobs.list_events(job.id))).level == "error"


def test_fine_tune_failure_mode_and_too_few_examples(server):
    client = client_for(server)
    small = client.files.create(file=("small.jsonl", training_jsonl(3)), purpose="fine-tune")
    job = client.fine_tuning.jobs.create(model="gpt-4o-mini-2024-07-18", training_file=small.id)
    for _ in range(5):
        job = client.fine_tuning.jobs.retrieve(job.id)
    assert job.status == "failed" and "at least 10 examples" in job.error.message

    server.configure(fine_tune_failure=FineTuneFailure(code="server_error", message="boom", param=None,
                                                       at_state="running"))
    good = client.files.create(file=("train.jsonl", training_jsonl(12)), purpose="fine-tune")
    job = client.fine_tuning.jobs.create(model="gpt-4o-mini-2024-07-18", training_file=good.id)
    states = [client.fine_tuning.jobs.retrieve(job.id).status for _ in range(4)]
    assert states == ["queued", "running", "failed", "failed"]
    assert client.fine_tuning.jobs.retrieve(job.id).error.code == "server_error"


def test_cancel_and_unknown_ids(server):
    client = client_for(server)
    uploaded = client.files.create(file=("train.jsonl", training_jsonl(12)), purpose="fine-tune")
    job = client.fine_tuning.jobs.create(model="gpt-4o-mini-2024-07-18", training_file=uploaded.id)
    assert client.fine_tuning.jobs.cancel(job.id).status == "cancelled"
    assert client.fine_tuning.jobs.retrieve(job.id).status == "cancelled"
    with pytest.raises(openai.BadRequestError):
        client.fine_tuning.jobs.cancel(job.id)
    with pytest.raises(openai.NotFoundError):
        client.fine_tuning.jobs.retrieve("ftjob-missing")
    with pytest.raises(openai.NotFoundError):
        client.files.retrieve("file-missing")
    with pytest.raises(openai.BadRequestError) as bad:
        client.fine_tuning.jobs.create(model="gpt-4o-mini-2024-07-18", training_file="file-missing")
    assert bad.value.param == "training_file"


def test_default_epochs_follow_openai_rule():
    assert default_epochs(10) == 10  # 10 x 3 < 100: min(25, 100 // 10)
    assert default_epochs(2) == 25
    assert default_epochs(500) == 3
    assert default_epochs(10_000) == 2  # 10,000 x 3 > 25,000: 25,000 // 10,000
