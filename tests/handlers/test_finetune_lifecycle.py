"""From assembled JSONL to a served model: the assembler and fine-tune handlers against emulated AWS (moto)
and an OpenAI-compatible test server with files and fine-tuning jobs."""

from __future__ import annotations

import hashlib
import json
import math
import random
from types import SimpleNamespace

import boto3
import pytest
from moto import mock_aws

from coach import runtime
from coach.adapters.storage import BuildStore, dataset_key
from coach.domain.prompt import PROMPT_VERSION
from coach.domain.records import BuildManifest, GenerationRecord, Story, Usage, Verdict
from coach.domain.tokens import get_counter
from coach.errors import CoachError
from coach.local.lambda_runtime import invoke
from coach.pipeline.assemble import DatasetInvalidError
from coach.step_errors import DatasetInvalid
from tests.fakes.openai_server import FakeOpenAIServer, FineTuneFailure
from tests.support.shards import sharded

BUCKET = "coach-finetune-tests"
PARAMETER = "/coach/critique-model"
PRICE = 8.0  # USD per 1M training tokens, set through the environment
WORDS = [
    "lantern", "harbour", "quiet", "river", "salt", "window", "letter", "mother", "winter", "orchard", "engine",
    "silver", "kettle", "dusk", "bridge", "station", "mirror", "ledger", "garden", "ribbon", "violin", "thunder",
    "pocket", "candle", "ferry", "meadow", "ticket", "shadow", "compass", "tower",
]


@pytest.fixture
def lifecycle(monkeypatch):
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1",
        "COACH_BUCKET": BUCKET, "COACH_MODEL_PARAMETER": PARAMETER, "COACH_TOKENIZER": "estimate",
        "COACH_TRAINING_PRICE_PER_MILLION": str(PRICE), "POWERTOOLS_TRACE_DISABLED": "1",
        "POWERTOOLS_METRICS_DISABLED": "true", "POWERTOOLS_LOG_LEVEL": "ERROR", "COACH_MODEL_CACHE_SECONDS": "0",
    }.items():
        monkeypatch.setenv(name, value)
    for name in ("AWS_ENDPOINT_URL", "AWS_PROFILE", "AWS_SESSION_TOKEN", "COACH_OPENAI_SECRET",
                 "COACH_EXAMPLE_TOKEN_LIMIT", "COACH_DEDUPE_SIMILARITY", "COACH_PROVIDER", "COACH_MODEL"):
        monkeypatch.delenv(name, raising=False)
    get_counter.cache_clear()  # the counting method is chosen once per process; these tests pin it
    # The day these tests were written: gpt-4o-mini (their base model) shuts down 43 days later.
    from datetime import date

    from coach.domain import retirement

    monkeypatch.setattr(retirement, "today", lambda: date(2026, 12, 2))
    with FakeOpenAIServer(api_key="sk-test") as fake, mock_aws():
        monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
        monkeypatch.setenv("OPENAI_BASE_URL", fake.base_url)
        runtime.reset()
        s3 = boto3.client("s3")
        s3.create_bucket(Bucket=BUCKET)
        yield SimpleNamespace(fake=fake, store=BuildStore(BUCKET, s3), ssm=boto3.client("ssm"))
    runtime.reset()
    get_counter.cache_clear()


def _prose(rng: random.Random, sentences: int) -> str:
    return " ".join(" ".join(rng.choice(WORDS) for _ in range(9)).capitalize() + "." for _ in range(sentences))


def _request(build_id: str = "ft-build", **fine_tune) -> dict:
    return {"build_id": build_id, "provider": "openai", "model": "gpt-4o-mini",
            "fine_tune": {"enabled": True, "backend": "openai", "base_model": "gpt-4o-mini-2024-07-18",
                          **fine_tune}}


def seed_build(store: BuildStore, build_id: str = "ft-build", n: int = 24, provider: str = "openai") -> dict[str, str]:
    """n stories with distinct accepted critiques, as the generator and validator leave them."""
    critiques = {}
    for i in range(n):
        rng = random.Random(i)
        story_id = f"story-{i:02}"
        story = Story(story_id=story_id, title=f"Tale {i}", text=_prose(rng, 12), source="directory")
        critique = f"You open with real confidence. {_prose(rng, 4)}\n\nYour ending lands. {_prose(rng, 2)}"
        store.put_story(build_id, story)
        store.put_feedback(GenerationRecord(
            build_id=build_id, story_id=story_id, prompt_version=PROMPT_VERSION, provider=provider,
            model="gpt-4o-mini", status="generated", feedback=critique,
            usage=Usage(prompt_tokens=900, completion_tokens=200, total_tokens=1_100), cost_usd=0.0003))
        store.put_verdict(build_id, Verdict(story_id=story_id, accepted=True, feedback=critique))
        critiques[story_id] = critique
    return critiques


def _manifest(store: BuildStore, build_id: str = "ft-build") -> BuildManifest:
    manifest = store.get_model(dataset_key(build_id, "manifest.json"), BuildManifest)
    assert manifest is not None
    return manifest


def _poll(job_id: str, build_id: str = "ft-build", limit: int = 12) -> list[dict]:
    seen = []
    for _ in range(limit):
        seen.append(invoke("finetune", {"action": "status", "job_id": job_id, "build_id": build_id}))
        if seen[-1]["status"] in ("succeeded", "failed", "cancelled"):
            return seen
    raise AssertionError(f"the job did not finish in {limit} polls: {seen[-1]}")


def _hand_count(messages: list[dict]) -> int:
    # chars/4 rounded up for every role and content, 3 per message, 3 to prime the reply.
    return 3 + sum(3 + math.ceil(len(m["role"]) / 4) + math.ceil(len(m["content"]) / 4) for m in messages)


def test_a_build_goes_from_jsonl_to_a_published_model_the_api_then_serves(lifecycle):
    fake, store = lifecycle.fake, lifecycle.store
    seed_build(store)
    assembled = invoke("assembler", sharded(_request()))
    assert assembled["train_examples"] + assembled["validation_examples"] == 24
    assert "billable tokens" in assembled["cost_line"]
    manifest = _manifest(store)
    assert manifest.dataset_checks["train.jsonl"].passed and manifest.dataset_checks["train.jsonl"].estimated

    started = invoke("finetune", {"action": "start", "request": _request()})
    assert started["status"] == "validating_files" and started["job_id"].startswith("ftjob-")
    job = fake.jobs[started["job_id"]]
    body = job.request_body
    assert body["model"] == "gpt-4o-mini-2024-07-18" and body["suffix"] == "writing-coach" and body["seed"] == 42
    assert body["method"] == {"type": "supervised"}
    assert body["metadata"]["build_id"] == "ft-build"
    assert fake.file_content(body["training_file"]) == store.get_text(dataset_key("ft-build", "train.jsonl"))
    assert fake.file_content(body["validation_file"]) == store.get_text(dataset_key("ft-build", "validation.jsonl"))
    assert {f.purpose for f in fake.files.values()} == {"fine-tune"}

    polls = _poll(started["job_id"])
    assert [p["status"] for p in polls] == ["queued", "running", "succeeded"]
    done = polls[-1]
    assert done["error"] is None and done["fine_tuned_model"].startswith("ft:gpt-4o-mini-2024-07-18:")
    assert done["trained_tokens"] == job.trained_tokens > 0
    assert done["cost_usd"] == pytest.approx(done["trained_tokens"] / 1_000_000 * PRICE)
    assert {"train_loss", "valid_loss"} <= set(done["metrics"])
    events = [json.loads(line) for line in store.get_text(done["events_key"]).splitlines()]
    assert events[-1]["message"] == "The job has successfully completed"
    assert [e["created_at"] for e in events] == sorted(e["created_at"] for e in events)
    kept = json.loads(store.get_text(dataset_key("ft-build", "fine-tune/metrics.json")))
    assert kept["final_metrics"] == done["metrics"] and kept["checkpoints"]

    manifest = _manifest(store)
    assert manifest.fine_tune.status == "succeeded"
    assert manifest.fine_tune.trained_tokens == done["trained_tokens"]
    assert manifest.fine_tune.cost_usd == done["cost_usd"] and manifest.fine_tune.metrics == done["metrics"]

    published = invoke("finetune", {"action": "publish", "build_id": "ft-build", "job": done})
    value = json.loads(lifecycle.ssm.get_parameter(Name=PARAMETER)["Parameter"]["Value"])
    assert value["model"] == published["model"] == done["fine_tuned_model"]
    assert value["prompt_version"] == "editor-compact-v1" and value["build_id"] == "ft-build"
    assert set(value) == {"model", "prompt_version", "build_id", "trained_at", "provider", "base_model",
                          "retires_on"}
    assert value["provider"] == "openai" and value["base_model"] == "gpt-4o-mini-2024-07-18"
    # OpenAI retires every gpt-4o-mini fine-tune with its base: the record and the manifest say when.
    assert value["retires_on"] == done["retires_on"] == "2027-01-14"
    assert _manifest(store).fine_tune.published_at

    _api_serves(lifecycle, done["fine_tuned_model"])


def _api_serves(lifecycle, model: str) -> None:
    """The critique API picks the published model up and sends it exactly a training example's layout."""
    service = pytest.importorskip("coach.api.service")
    from aws_lambda_powertools.utilities import parameters

    from coach.api.config import ApiConfig
    from coach.api.models import CritiqueRequest

    parameters.clear_caches()
    train = [json.loads(line) for line in
             lifecycle.store.get_text(dataset_key("ft-build", "train.jsonl")).splitlines()]
    example = train[0]
    number = int(example["messages"][1]["content"].split("Title: Tale ", 1)[1].split("\n", 1)[0])
    story = lifecycle.store.get_story("ft-build", f"story-{number:02}")
    response = service.CritiqueService(ApiConfig.from_env()).critique(
        CritiqueRequest(story=story.text, title=story.title))
    assert response.model == model
    (call,) = lifecycle.fake.chat_requests()
    assert call.model == model
    prompt = example["messages"][:2]  # the system and user messages the model was trained on
    assert call.messages_hash == hashlib.sha256(json.dumps(prompt, sort_keys=True).encode()).hexdigest()[:16]


def test_a_failed_job_surfaces_openais_error_code_and_message(lifecycle):
    fake, store = lifecycle.fake, lifecycle.store
    fake.configure(fine_tune_failure=FineTuneFailure(
        code="invalid_n_examples", message="Training file has too few examples after validation.",
        param="training_file", at_state="queued"))
    seed_build(store)
    invoke("assembler", sharded(_request()))
    started = invoke("finetune", {"action": "start", "request": _request()})
    failed = _poll(started["job_id"])[-1]
    assert failed["status"] == "failed" and failed["fine_tuned_model"] is None
    assert failed["error"]["code"] == "invalid_n_examples"
    assert "too few examples" in failed["error"]["message"]
    manifest = _manifest(store)
    assert manifest.fine_tune.status == "failed"
    assert manifest.fine_tune.error is not None and manifest.fine_tune.error.code == "invalid_n_examples"
    events = store.get_text(failed["events_key"])
    assert "too few examples" in events
    with pytest.raises(CoachError) as refused:
        invoke("finetune", {"action": "publish", "build_id": "ft-build", "job": failed})
    assert refused.value.code == "nothing_to_publish"
    with pytest.raises(lifecycle.ssm.exceptions.ParameterNotFound):
        lifecycle.ssm.get_parameter(Name=PARAMETER)


def test_a_malformed_dataset_is_refused_before_upload_with_line_numbers(lifecycle):
    fake, store = lifecycle.fake, lifecycle.store
    good = {"messages": [{"role": "system", "content": "Editor."}, {"role": "user", "content": "A story."},
                         {"role": "assistant", "content": "You write with care."}]}
    lines = [json.dumps({**good, "messages": [*good["messages"][:2],
                                              {"role": "assistant", "content": f"You did {i} well."}]})
             for i in range(12)]
    lines[2] = json.dumps({"messages": good["messages"][:2]})  # no assistant message
    lines[6] = '{"messages": [{"role": "user", "content": "x"}'  # cut short
    store.put_text(dataset_key("bad-build", "train.jsonl"), "\n".join(lines) + "\n")
    with pytest.raises(DatasetInvalidError) as refused:
        invoke("finetune", {"action": "start", "request": _request("bad-build")})
    message = str(refused.value)
    assert refused.value.code == "dataset_invalid"
    assert "line 3: no_assistant_message" in message and "line 7: invalid_json" in message
    assert "offending lines: 3, 7" in message
    assert fake.files == {} and fake.jobs == {}
    assert not [r for r in fake.requests if r.path.startswith("/v1/files")]


def test_the_assembler_refuses_examples_over_the_token_limit_and_writes_no_dataset(lifecycle, monkeypatch):
    store = lifecycle.store
    seed_build(store)
    monkeypatch.setenv("COACH_EXAMPLE_TOKEN_LIMIT", "300")
    # The handler ends the execution with the state machine's error name and a readable cause.
    with pytest.raises(DatasetInvalid) as refused:
        invoke("assembler", sharded(_request()))
    assert "too_many_tokens" in str(refused.value) and "offending lines: 1-" in str(refused.value)
    assert store.get_text(dataset_key("ft-build", "train.jsonl")) is None
    # The manifest says the assembly failed and why, instead of being absent (or an earlier run's).
    failed = _manifest(store)
    assert failed.failure is not None and failed.failure.step == "assemble"
    assert failed.failure.code == "dataset_invalid" and "too_many_tokens" in failed.failure.message
    assert failed.counts.accepted == 24 and "train.jsonl" not in failed.files
    report = json.loads(store.get_text(dataset_key("ft-build", "checks.json")))
    assert report["train.jsonl"]["problems"][0]["code"] == "too_many_tokens"


def test_starting_twice_reuses_the_job_and_uploads_nothing_more(lifecycle):
    fake, store = lifecycle.fake, lifecycle.store
    seed_build(store)
    invoke("assembler", sharded(_request()))
    first = invoke("finetune", {"action": "start", "request": _request()})
    second = invoke("finetune", {"action": "start", "request": _request()})
    assert second["job_id"] == first["job_id"] and second["reused"] is True
    assert len(fake.jobs) == 1 and len(fake.files) == 2


def test_manifest_cost_estimate_matches_a_hand_computation(lifecycle):
    store = lifecycle.store
    seed_build(store, n=30)
    invoke("assembler", sharded(_request()))
    manifest = _manifest(store)
    train = [json.loads(line) for line in store.get_text(dataset_key("ft-build", "train.jsonl")).splitlines()]
    n = len(train)
    assert n == manifest.counts.train_examples and 20 <= n < 34
    epochs = min(25, 100 // n)  # n x 3 < 100: OpenAI raises the epochs for a small set
    billable = sum(_hand_count(e["messages"]) for e in train) * epochs
    assert manifest.cost.fine_tune_epochs == epochs and manifest.cost.epochs_rule == "default"
    assert manifest.cost.billable_training_tokens == billable
    assert manifest.cost.fine_tune_usd == pytest.approx(billable / 1_000_000 * PRICE)
    assert manifest.cost.training_price_per_million == PRICE

    # Given epochs replace the rule, and are what the job is asked for.
    invoke("assembler", sharded(_request(epochs=2)))
    assert _manifest(store).cost.billable_training_tokens == billable // epochs * 2
    started = invoke("finetune", {"action": "start", "request": _request(epochs=2)})
    body = lifecycle.fake.jobs[started["job_id"]].request_body
    assert body["method"] == {"type": "supervised", "supervised": {"hyperparameters": {"n_epochs": 2}}}


def test_duplicates_are_removed_before_the_split_and_listed_with_what_they_repeat(lifecycle):
    store = lifecycle.store
    critiques = seed_build(store, n=14)
    # The same story again under another id, and a critique that is a near copy of another.
    again = store.get_story("ft-build", "story-01").model_copy(update={"story_id": "story-90"})
    store.put_story("ft-build", again)
    near = critiques["story-02"].replace("You open", "You opened")
    other = Story(story_id="story-91", title="Other", text=_prose(random.Random(91), 12), source="directory")
    store.put_story("ft-build", other)
    for sid, text in (("story-90", "You deserve praise. " + _prose(random.Random(90), 6)), ("story-91", near)):
        store.put_feedback(GenerationRecord(build_id="ft-build", story_id=sid, prompt_version=PROMPT_VERSION,
                                            provider="openai", model="gpt-4o-mini", status="generated",
                                            feedback=text))
        store.put_verdict("ft-build", Verdict(story_id=sid, accepted=True, feedback=text))
    result = invoke("assembler", sharded(_request()))
    counts = _manifest(store).counts
    assert (counts.accepted, counts.duplicate_stories, counts.near_duplicate_critiques) == (16, 1, 1)
    assert result["duplicates_removed"] == 2 and counts.train_examples + counts.validation_examples == 14
    rows = {r["id"]: r for r in map(json.loads, store.get_text(dataset_key("ft-build", "rejected.jsonl")).splitlines())}
    assert rows["story-90"]["duplicate_of"] == "story-01" and rows["story-90"]["reasons"] == ["duplicate_story"]
    assert rows["story-91"]["duplicate_of"] == "story-02"
    assert rows["story-91"]["reasons"] == ["near_duplicate_critique"] and rows["story-91"]["similarity"] >= 0.8


def test_legacy_export_is_written_when_asked_for(lifecycle):
    store = lifecycle.store
    seed_build(store)
    invoke("assembler", sharded(_request(legacy_export=True)))
    manifest = _manifest(store)
    rows = [json.loads(line) for line in store.get_text(manifest.files["train_legacy.jsonl"]).splitlines()]
    assert len(rows) == manifest.counts.train_examples
    assert all(set(r) == {"prompt", "completion"} and r["completion"].startswith(" ") for r in rows)
    assert manifest.dataset_checks["train_legacy.jsonl"].passed


def test_offline_critiques_are_not_fine_tuned(lifecycle):
    seed_build(lifecycle.store, provider="offline")
    request = {**_request(), "provider": "offline"}
    invoke("assembler", sharded(request))
    out = invoke("finetune", {"action": "start", "request": request})
    assert out["status"] == "skipped" and "offline critic" in out["reason"]
    assert _manifest(lifecycle.store).fine_tune.status == "skipped" and lifecycle.fake.files == {}


def test_status_of_an_unknown_job_is_a_clear_upstream_error(lifecycle):
    with pytest.raises(CoachError) as failed:
        invoke("finetune", {"action": "status", "job_id": "ftjob-missing"})
    assert failed.value.code == "fine_tune_job_not_found" and "HTTP 404" in failed.value.message


def test_a_cancelled_job_ends_the_wait_with_a_cancelled_error(lifecycle):
    import openai

    seed_build(lifecycle.store)
    invoke("assembler", sharded(_request()))
    started = invoke("finetune", {"action": "start", "request": _request()})
    openai.OpenAI(api_key="sk-test", base_url=lifecycle.fake.base_url).fine_tuning.jobs.cancel(started["job_id"])
    out = invoke("finetune", {"action": "status", "job_id": started["job_id"]})  # build id from the job's metadata
    assert out["status"] == "cancelled" and out["error"]["code"] == "cancelled"
    assert _manifest(lifecycle.store).fine_tune.status == "cancelled"


def test_follow_polls_to_the_end_and_publishes(lifecycle):
    from coach.pipeline import finetune

    seed_build(lifecycle.store)
    invoke("assembler", sharded(_request()))
    started = invoke("finetune", {"action": "start", "request": _request()})
    naps: list[float] = []
    seen: list[str] = []
    result = finetune.follow(started["job_id"], client_factory=runtime.openai_client, store=lifecycle.store,
                             ssm_client=lifecycle.ssm, parameter=PARAMETER, interval_s=5, sleep=naps.append,
                             on_poll=lambda s: seen.append(s.status))
    assert seen == ["queued", "running", "succeeded"] and naps == [5, 5] and result.polls == 3
    assert result.published is not None and result.published["model"] == result.job.fine_tuned_model
    value = json.loads(lifecycle.ssm.get_parameter(Name=PARAMETER)["Parameter"]["Value"])
    assert value["model"] == result.job.fine_tuned_model


def test_follow_gives_up_waiting_with_a_clear_error(lifecycle):
    from coach.pipeline import finetune

    lifecycle.fake.configure(fine_tune_polls_per_state=50)
    seed_build(lifecycle.store)
    invoke("assembler", sharded(_request()))
    started = invoke("finetune", {"action": "start", "request": _request()})
    with pytest.raises(CoachError) as waiting:
        finetune.follow(started["job_id"], client_factory=runtime.openai_client, max_polls=3, sleep=lambda _: None)
    assert waiting.value.code == "fine_tune_still_running"


def test_a_base_model_about_to_shut_down_is_refused_before_upload(lifecycle, monkeypatch):
    from datetime import date

    from coach.domain import retirement

    monkeypatch.setattr(retirement, "today", lambda: date(2027, 1, 5))
    seed_build(lifecycle.store)
    invoke("assembler", sharded(_request()))
    with pytest.raises(CoachError) as caught:
        invoke("finetune", {"action": "start", "request": _request()})
    assert caught.value.code == "base_model_retiring"
    assert "2027-01-14" in caught.value.message and "Bedrock" in caught.value.message
    assert not lifecycle.fake.files and not lifecycle.fake.jobs  # nothing uploaded, nothing paid
    assert _manifest(lifecycle.store).fine_tune.error.code == "base_model_retiring"


def test_a_base_model_within_sixty_days_starts_with_a_warning_in_the_manifest(lifecycle, monkeypatch):
    seed_build(lifecycle.store)
    invoke("assembler", sharded(_request()))
    started = invoke("finetune", {"action": "start", "request": _request()})
    assert started["job_id"]
    [warning] = _manifest(lifecycle.store).fine_tune.warnings
    assert "shuts down on 2027-01-14 (43 days from today)" in warning


def test_an_organisation_without_fine_tuning_is_pointed_to_bedrock(lifecycle):
    lifecycle.fake.configure(fine_tuning_available=False)
    seed_build(lifecycle.store)
    invoke("assembler", sharded(_request()))
    with pytest.raises(CoachError) as caught:
        invoke("finetune", {"action": "start", "request": _request()})
    assert caught.value.code == "fine_tuning_unavailable"
    assert "Bedrock backend" in caught.value.message
    fine_tune = _manifest(lifecycle.store).fine_tune
    assert fine_tune.status == "failed" and fine_tune.error.code == "fine_tuning_unavailable"
