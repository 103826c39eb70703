"""Each pipeline handler against emulated AWS (moto), with the event shapes AWS sends."""

from __future__ import annotations

import json

import boto3
import pytest

from coach.adapters.storage import BuildStore, dataset_key, feedback_key
from coach.domain.prompt import PROMPT_VERSION
from coach.domain.records import BuildManifest, GenerationRecord, GenerationTask
from coach.local.lambda_runtime import invoke
from coach.local.poller import to_sqs_event
from coach.step_errors import InvalidBuildRequest, NoStories, SourceFailed
from tests.support.shards import shard_build


def _request(build_id: str = "b1", **extra) -> dict:
    return {"build_id": build_id, "source": {"kind": "samples"}, **extra}


def _receive_all(sqs, url: str) -> list[dict]:
    messages = []
    while True:
        got = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, AttributeNames=["All"],
                                  MessageAttributeNames=["All"]).get("Messages", [])
        if not got:
            return messages
        messages += got


def test_checkinput_fills_defaults_and_rejects_bad_input(aws):
    out = invoke("checkinput", {"build_id": "ok-1"})
    assert out["source"]["kind"] == "samples" and out["provider"] == "offline"
    with pytest.raises(InvalidBuildRequest, match="build_id"):
        invoke("checkinput", {"build_id": "Not Valid!"})
    with pytest.raises(InvalidBuildRequest, match="provider"):
        invoke("checkinput", {"build_id": "x", "provider": "gpt"})


def test_scraper_stores_stories_and_enqueues_one_message_each(aws):
    out = invoke("scraper", {"request": _request(limit=5)})
    assert out["stories"] == 5 and out["enqueued"] == 5 and out["reused"] == 0
    store = BuildStore(aws.bucket, boto3.client("s3"))
    assert len(list(store.stories("b1"))) == 5
    messages = _receive_all(boto3.client("sqs"), aws.queue_url)
    tasks = [GenerationTask.model_validate_json(m["Body"]) for m in messages]
    assert sorted(t.story_id for t in tasks) == sorted(s.story_id for s in store.stories("b1"))
    assert {t.prompt_version for t in tasks} == {PROMPT_VERSION}


def test_scraper_fails_with_readable_cause(aws, tmp_path):
    with pytest.raises(SourceFailed, match="source_not_found"):
        invoke("scraper", {"request": {"build_id": "b2", "source": {"kind": "directory",
                                                                     "path": str(tmp_path / "missing")}}})
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "blank.txt").write_text("   \n")
    with pytest.raises((NoStories, SourceFailed)):
        invoke("scraper", {"request": {"build_id": "b3", "source": {"kind": "directory", "path": str(empty)}}})


def test_generator_writes_feedback_and_reports_only_failed_records(aws):
    invoke("scraper", {"request": _request(limit=3)})
    sqs = boto3.client("sqs")
    messages = _receive_all(sqs, aws.queue_url)
    # One poisoned message among good ones: only it is reported as failed.
    poisoned = dict(messages[0], MessageId="poison", Body="{not json")
    event = to_sqs_event([*messages, poisoned], aws.queue_arn)
    result = invoke("generator", event)
    assert result["batchItemFailures"] == [{"itemIdentifier": "poison"}]
    store = BuildStore(aws.bucket, boto3.client("s3"))
    records = list(store.feedback("b1"))
    assert len(records) == 3
    for record in records:
        assert record.status == "generated" and record.feedback
        assert record.model == "coach-offline-critic-v1" and record.provider == "offline"
        assert record.usage.estimated and record.cost_usd == 0


def test_generator_never_pays_twice_for_a_redelivered_message(aws):
    invoke("scraper", {"request": _request(limit=1)})
    messages = _receive_all(boto3.client("sqs"), aws.queue_url)
    s3 = boto3.client("s3")
    invoke("generator", to_sqs_event(messages, aws.queue_arn))
    task = GenerationTask.model_validate_json(messages[0]["Body"])
    key = feedback_key("b1", task.story_id)
    first = s3.get_object(Bucket=aws.bucket, Key=key)["Body"].read()
    invoke("generator", to_sqs_event(messages, aws.queue_arn))  # at-least-once delivery
    assert s3.get_object(Bucket=aws.bucket, Key=key)["Body"].read() == first


def test_progress_counts_this_runs_outcomes(aws):
    invoke("scraper", {"request": _request(limit=4)})
    out = invoke("progress", {"build_id": "b1", "enqueued": 4})
    assert out["enqueued"] == 4 and out["accounted"] == 0 and not out["done"]
    messages = _receive_all(boto3.client("sqs"), aws.queue_url)
    invoke("generator", to_sqs_event(messages, aws.queue_arn))
    out = invoke("progress", {"build_id": "b1", "enqueued": 4})
    assert out["generated"] == 4 and out["done"]


def _generate_all(aws, build_id: str, limit: int) -> dict:
    scrape = invoke("scraper", {"request": _request(build_id, limit=limit)})
    sqs = boto3.client("sqs")
    invoke("generator", to_sqs_event(_receive_all(sqs, aws.queue_url), aws.queue_arn))
    return scrape


def test_validator_and_assembler_write_dataset_and_manifest(aws):
    scrape = _generate_all(aws, "b1", 12)
    store = BuildStore(aws.bucket, boto3.client("s3"))
    # Plant one bad critique: a numbered list written about "the author".
    story_id = scrape_id = next(iter(sorted(s.story_id for s in store.stories("b1"))))
    bad = GenerationRecord(build_id="b1", story_id=scrape_id, prompt_version=PROMPT_VERSION, provider="offline",
                           model="coach-offline-critic-v1", status="generated",
                           feedback="1. The author uses too many adverbs.\n2. The author should cut the ending.\n"
                                    "3. The author has a good title.")
    store.put_feedback(bad)
    summary = shard_build(aws.bucket, "b1")
    assert summary["accepted"] == 11 and summary["rejected"] == 1

    out = invoke("assembler", {"request": _request(), "scrape": scrape, "shards": summary["shards"]})
    assert out["train_examples"] + out["validation_examples"] == 11
    train = store.get_text(out["train_key"]).splitlines()
    example = json.loads(train[0])
    roles = [m["role"] for m in example["messages"]]
    assert roles == ["system", "user", "assistant"]
    rejected = [json.loads(line) for line in store.get_text(dataset_key("b1", "rejected.jsonl")).splitlines()]
    assert rejected[0]["id"] == story_id and "list_format" in rejected[0]["reasons"]
    manifest = store.get_model(out["manifest_key"], BuildManifest)
    assert manifest.counts.accepted == 11 and manifest.counts.rejected_by_reason["list_format"] == 1
    assert manifest.prompt_version == PROMPT_VERSION and manifest.tokens.dataset_tokens > 0


def test_finetune_start_records_skipped_for_offline_provider(aws):
    scrape = _generate_all(aws, "b1", 10)
    shard_build(aws.bucket, "b1")
    dataset = invoke("assembler", {"request": _request(fine_tune={"enabled": True}), "scrape": scrape})
    out = invoke("finetune", {"action": "start", "request": _request(fine_tune={"enabled": True}),
                              "dataset": dataset})
    assert out["status"] == "skipped" and "offline" in out["reason"]
    store = BuildStore(aws.bucket, boto3.client("s3"))
    manifest = store.get_model(dataset["manifest_key"], BuildManifest)
    assert manifest.fine_tune.status == "skipped" and manifest.fine_tune.reason


def test_progress_records_stories_whose_messages_left_without_a_record(aws, monkeypatch):
    """A message dead-lettered with no record (e.g. a timeout on its last delivery) must not stall the build."""
    from coach import runtime
    from coach.pipeline.progress import check_progress

    invoke("scraper", {"request": _request(limit=3)})
    sqs = boto3.client("sqs")
    messages = _receive_all(sqs, aws.queue_url)
    # Two stories succeed; the third message vanishes from the queue (as into the DLQ) with no record.
    invoke("generator", to_sqs_event(messages[:2], aws.queue_arn))
    for message in messages:
        sqs.delete_message(QueueUrl=aws.queue_url, ReceiptHandle=message["ReceiptHandle"])
    store = BuildStore(aws.bucket, boto3.client("s3"))
    now = [1_000.0]

    def check(depth: int):
        return check_progress("b1", store=store, tally=runtime.run_tally(), queue_depth=depth, drain_confirm_s=60,
                              clock=lambda: now[0])

    assert not check(0).done  # the first empty reading only starts the clock
    now[0] += 30
    assert not check(1).done  # messages back in the queue: the clock restarts
    now[0] += 10
    assert not check(0).done
    now[0] += 61
    progress = check(0)
    assert progress.done and progress.lost == 1 and progress.generated == 2 and progress.accounted == 3
    lost = [r for r in store.feedback("b1") if r.status == "failed"]
    assert len(lost) == 1 and lost[0].error.code == "message_lost" and lost[0].dead_lettered
    # The handler wires the real queue depth in: with the queue empty and no wait it reports done at once.
    monkeypatch.setenv("COACH_QUEUE_DRAIN_CONFIRM_SECONDS", "0")
    assert invoke("progress", {"build_id": "b1", "enqueued": 3})["done"]


def test_a_transient_failure_brings_the_message_back_soon_not_after_the_visibility_timeout(aws, monkeypatch):
    from coach import runtime
    from coach.errors import RateLimitedError
    from coach.local.lambda_runtime import load_handler_module

    class Throttled:
        def complete(self, *args, **kwargs):
            raise RateLimitedError("rate limited", retry_after=7)

    delays = []
    app = load_handler_module("generator")
    monkeypatch.setattr(runtime, "provider_for_task", lambda task: Throttled())
    monkeypatch.setattr(app, "redelivery_delay", lambda count, retry_after: delays.append((count, retry_after)) or 0)
    invoke("scraper", {"request": _request(limit=1)})
    sqs = boto3.client("sqs")
    messages = _receive_all(sqs, aws.queue_url)
    result = invoke("generator", to_sqs_event(messages, aws.queue_arn))
    assert result["batchItemFailures"] == [{"itemIdentifier": messages[0]["MessageId"]}]
    assert delays == [(1, 7)]  # the delivery count and the API's Retry-After decide the delay
    # Visible again at once (delay 0 here), although the queue's visibility timeout is a minute.
    again = sqs.receive_message(QueueUrl=aws.queue_url, MaxNumberOfMessages=10).get("Messages", [])
    assert [m["MessageId"] for m in again] == [messages[0]["MessageId"]]


def test_redelivery_delay_backs_off_and_honours_retry_after():
    from coach.domain.redelivery import MAX_DELAY_S, redelivery_delay

    assert [redelivery_delay(n) for n in (1, 2, 3)] == [30, 60, 120]
    assert redelivery_delay(1, retry_after=95.5) == 95
    assert redelivery_delay(12) == MAX_DELAY_S
