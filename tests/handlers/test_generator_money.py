"""The generator handler with a paid provider: an OpenAI-compatible test server behind emulated AWS (moto).

What a build's owner would notice: how many completions the server saw per story (each one is money),
which messages came back as batch failures, and what the feedback records say.
"""

from __future__ import annotations

import json
import threading
import time

import boto3
import pytest

from coach import runtime
from coach.adapters.storage import BuildStore, feedback_key
from coach.domain.records import GenerationTask
from coach.local.lambda_runtime import invoke
from coach.local.poller import SqsPoller, to_sqs_event
from tests.fakes.openai_server import CONTENT_POLICY, FakeOpenAIServer

KEY = "sk-generator-tests"


@pytest.fixture
def fake(aws, monkeypatch):
    with FakeOpenAIServer(api_key=KEY, retry_after=0.01) as server:
        monkeypatch.setenv("OPENAI_API_KEY", KEY)
        monkeypatch.setenv("OPENAI_BASE_URL", server.base_url)
        monkeypatch.setenv("COACH_COMPLETION_TIMEOUT", "5")
        runtime.reset()
        yield server
    runtime.reset()


def _scrape(build_id: str, limit: int) -> dict:
    return invoke("scraper", {"request": {"build_id": build_id, "source": {"kind": "samples"}, "limit": limit,
                                          "provider": "openai", "model": "gpt-4o-mini"}})


def _receive(aws, count: int) -> list[dict]:
    sqs = boto3.client("sqs")
    got: list[dict] = []
    while len(got) < count:
        batch = sqs.receive_message(QueueUrl=aws.queue_url, MaxNumberOfMessages=10, AttributeNames=["All"],
                                    MessageAttributeNames=["All"]).get("Messages", [])
        assert batch, f"expected {count} messages, the queue had {len(got)}"
        got += batch
    return got


def _story_marker(store: BuildStore, build_id: str, story_id: str) -> str:
    story = store.get_story(build_id, story_id)
    assert story is not None
    return story.text.strip().splitlines()[0][:60]


def _failures(result: dict) -> list[str]:
    return [f["itemIdentifier"] for f in result["batchItemFailures"]]


def test_redelivery_and_retried_batches_pay_once_and_keep_the_s3_record_true(aws, fake):
    _scrape("m1", 3)
    messages = _receive(aws, 3)
    store = BuildStore(aws.bucket, boto3.client("s3"))
    assert _failures(invoke("generator", to_sqs_event(messages, aws.queue_arn))) == []
    assert fake.total_successes == 3

    # The whole batch again (a retried batch), then one message whose S3 record was lost meanwhile:
    # the idempotency store answers both, and the record is written back from it.
    task = GenerationTask.model_validate_json(messages[0]["Body"])
    before = store.get_feedback("m1", task.story_id)
    assert _failures(invoke("generator", to_sqs_event(messages, aws.queue_arn))) == []
    boto3.client("s3").delete_object(Bucket=aws.bucket, Key=feedback_key("m1", task.story_id))
    assert _failures(invoke("generator", to_sqs_event(messages[:1], aws.queue_arn))) == []

    assert fake.total_successes == 3 and len(fake.chat_requests()) == 3
    assert store.get_feedback("m1", task.story_id) == before

    # A re-run of the build enqueues nothing that already has feedback.
    again = _scrape("m1", 3)
    assert again["enqueued"] == 0 and again["reused"] == 3


def test_two_deliveries_at_once_make_one_call_and_the_second_comes_back(aws, fake):
    _scrape("m2", 1)
    [message] = _receive(aws, 1)
    fake.configure(latency=1.0)
    results: dict[str, dict] = {}

    def deliver(name: str) -> None:
        results[name] = invoke("generator", to_sqs_event([message], aws.queue_arn))

    first = threading.Thread(target=deliver, args=("first",))
    first.start()
    ddb = boto3.client("dynamodb")
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:  # until the first delivery holds the story and is calling
        items = ddb.scan(TableName=aws.table)["Items"]
        if any(item.get("status", {}).get("S") == "INPROGRESS" for item in items):
            break
        time.sleep(0.02)
    deliver("second")
    first.join()

    assert _failures(results["first"]) == []
    assert _failures(results["second"]) == [message["MessageId"]]
    assert len(fake.chat_requests()) == 1 and fake.total_successes == 1
    # When it comes back, it finds the finished result and pays nothing.
    assert _failures(invoke("generator", to_sqs_event([message], aws.queue_arn))) == []
    assert fake.total_successes == 1


def test_transient_failure_is_not_remembered_and_a_later_delivery_generates(aws, fake):
    _scrape("m3", 1)
    [message] = _receive(aws, 1)
    fake.push_script(*[429] * 5)  # every attempt of the first delivery is refused
    assert _failures(invoke("generator", to_sqs_event([message], aws.queue_arn))) == [message["MessageId"]]
    store = BuildStore(aws.bucket, boto3.client("s3"))
    task = GenerationTask.model_validate_json(message["Body"])
    assert store.get_feedback("m3", task.story_id) is None  # an error is never written as feedback

    assert _failures(invoke("generator", to_sqs_event([message], aws.queue_arn))) == []
    record = store.get_feedback("m3", task.story_id)
    assert record is not None and record.status == "generated" and record.feedback
    assert fake.total_successes == 1


def test_content_policy_fails_the_story_at_once_with_its_reason(aws, fake):
    _scrape("m4", 2)
    messages = _receive(aws, 2)
    fake.push_script(CONTENT_POLICY)
    assert _failures(invoke("generator", to_sqs_event(messages, aws.queue_arn))) == []
    records = {r.story_id: r for r in BuildStore(aws.bucket, boto3.client("s3")).feedback("m4")}
    failed = [r for r in records.values() if r.status == "failed"]
    assert len(failed) == 1 and failed[0].feedback is None
    assert failed[0].error is not None and failed[0].error.code == "upstream_content_policy"
    assert "safety system" in failed[0].error.message
    assert len(fake.chat_requests()) == 2  # no retry of a request the API refuses


def test_length_cut_is_recorded_for_the_validator(aws, fake, monkeypatch):
    monkeypatch.setenv("COACH_MAX_FEEDBACK_TOKENS", "20")
    _scrape("m5", 1)
    invoke("generator", to_sqs_event(_receive(aws, 1), aws.queue_arn))
    [record] = BuildStore(aws.bucket, boto3.client("s3")).feedback("m5")
    assert record.status == "generated" and record.finish_reason == "length"
    assert record.usage.completion_tokens == 20 and record.cost_usd > 0


def test_after_the_last_delivery_the_message_is_dead_lettered_with_its_cause(aws, fake):
    fake.configure(failure_rate=1.0, rate_limit_share=1.0)  # 429 on every call
    _scrape("m6", 1)
    sqs = boto3.client("sqs")
    poller = SqsPoller(sqs, aws.queue_url, aws.queue_arn, concurrency=1, retry_delay_s=0, wait_s=0)
    assert poller.run(timeout_s=60, tick_s=0.2)
    progress = invoke("progress", {"build_id": "m6"})
    assert progress["failed"] == 1 and progress["done"] and progress["dead_lettered"] == 1

    dead = sqs.receive_message(QueueUrl=aws.dlq_url, MaxNumberOfMessages=10,
                               MessageAttributeNames=["All"]).get("Messages", [])
    assert len(dead) == 1
    story_id = dead[0]["MessageAttributes"]["story_id"]["StringValue"]
    [record] = BuildStore(aws.bucket, boto3.client("s3")).feedback("m6")
    assert record.story_id == story_id and record.status == "failed" and record.dead_lettered
    assert record.error is not None and record.error.code == "upstream_rate_limited"
    assert "gave up after 3 deliveries" in record.error.message
    assert fake.total_successes == 0 and fake.status_counts() == {429: 15}  # 3 deliveries x 5 attempts


def test_redrive_moves_only_that_builds_dead_letters_back_to_the_story_queue(aws):
    from coach.cli.redrive_cmd import move_dead_letters

    sqs = boto3.client("sqs")
    for build_id, story_id in [("m7", "s1"), ("other", "s2"), ("m7", "s3")]:
        body = json.dumps({"build_id": build_id, "story_id": story_id})
        attributes = {"build_id": {"DataType": "String", "StringValue": build_id},
                      "story_id": {"DataType": "String", "StringValue": story_id}}
        sqs.send_message(QueueUrl=aws.dlq_url, MessageBody=body, MessageAttributes=attributes)
    assert sorted(move_dead_letters(sqs, aws.dlq_url, aws.queue_url, "m7")) == ["s1", "s3"]

    back = _receive(aws, 2)
    assert sorted(json.loads(m["Body"])["story_id"] for m in back) == ["s1", "s3"]
    assert {m["MessageAttributes"]["build_id"]["StringValue"] for m in back} == {"m7"}
    left = sqs.receive_message(QueueUrl=aws.dlq_url, MaxNumberOfMessages=10).get("Messages", [])
    assert [json.loads(m["Body"])["build_id"] for m in left] == ["other"]
