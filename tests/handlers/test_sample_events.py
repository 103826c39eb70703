"""Every sample event in infra/events runs through its handler (emulated AWS), as `sam local invoke -e` would.

The samples build's events run in the state machine's order and must succeed; the fine-tuning events name
a build and a job that exist only in an account, so their handlers must answer with a coded error (the event
itself parsed), never a validation error or a traceback.
"""

from __future__ import annotations

import json
from pathlib import Path

import boto3
import pytest

from coach import runtime
from coach.adapters.storage import BuildStore
from coach.domain.records import BuildRequest, GenerationTask
from coach.errors import CoachError
from coach.local.lambda_runtime import invoke
from coach.local.poller import to_sqs_event
from tests.fakes.bedrock_server import FakeBedrockServer
from tests.fakes.openai_server import FakeOpenAIServer

EVENTS = Path(__file__).resolve().parents[2] / "infra" / "events"
HANDLERS = {
    "build_request.json": "checkinput", "build_request_samples.json": "checkinput",
    "scraper.json": "scraper", "generator_sqs.json": "generator", "progress.json": "progress",
    "shard.json": "shard", "assembler.json": "assembler",
    "finetune_start.json": "finetune", "finetune_status.json": "finetune", "finetune_publish.json": "finetune",
    "critique_health.json": "critique", "critique_post.json": "critique",
    "finetune_bedrock_status.json": "finetune", "finetune_deploy.json": "finetune", "evaluate.json": "evaluate",
    "build_request_batch.json": "checkinput", "batch_collect.json": "batch", "batch_cancel_on_abort.json": "batch",
}


def load(name: str) -> dict:
    return json.loads((EVENTS / name).read_text(encoding="utf-8"))


def test_every_sample_event_is_run_by_a_test_here():
    assert {p.name for p in EVENTS.glob("*.json")} == set(HANDLERS)


def test_the_build_requests_pass_the_input_check(aws):
    for name in ("build_request.json", "build_request_samples.json", "build_request_batch.json"):
        checked = invoke("checkinput", load(name))
        assert BuildRequest.model_validate(checked).build_id == load(name)["build_id"]


def test_the_samples_build_events_run_in_order(aws):
    store = BuildStore(aws.bucket, boto3.client("s3"))
    scraped = invoke("scraper", load("scraper.json"))
    build_id = scraped["build_id"]
    assert scraped["stories"] == load("progress.json")["enqueued"]

    # The sample SQS event names a story the scraper really stored, and the generator critiques it.
    event = load("generator_sqs.json")
    task = GenerationTask.model_validate_json(event["Records"][0]["body"])
    assert task.build_id == build_id and store.get_story(build_id, task.story_id) is not None
    assert invoke("generator", event)["batchItemFailures"] == []
    record = store.get_feedback(build_id, task.story_id)
    assert record is not None and record.status == "generated"

    sqs = boto3.client("sqs")
    while batch := sqs.receive_message(QueueUrl=aws.queue_url, MaxNumberOfMessages=10, AttributeNames=["All"],
                                       MessageAttributeNames=["All"]).get("Messages", []):
        assert invoke("generator", to_sqs_event(batch, aws.queue_arn))["batchItemFailures"] == []
        sqs.delete_message_batch(QueueUrl=aws.queue_url, Entries=[
            {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(batch)])

    progress = invoke("progress", load("progress.json"))
    assert progress["done"] is True
    # The sample batch names the stories the scraper stored; only the run id is this test's own.
    batch = load("shard.json")
    batch["BatchInput"]["run_id"] = scraped["run_id"]
    assert {i["Key"] for i in batch["Items"]} == set(store.list_keys(f"builds/{build_id}/stories/"))
    assert invoke("shard", batch)["examples"] > 10
    assembled = invoke("assembler", load("assembler.json"))
    assert assembled["train_examples"] > 0 and store.get_text(assembled["manifest_key"])


@pytest.mark.parametrize("name", ["critique_health.json", "critique_post.json"])
def test_the_api_events_get_answers(aws, name):
    response = invoke("critique", load(name))
    assert response["statusCode"] == 200, response["body"]


def test_the_fine_tune_events_reach_their_handler(aws, monkeypatch):
    published = invoke("finetune", load("finetune_publish.json"))
    assert published["model"] == load("finetune_publish.json")["job"]["fine_tuned_model"]
    with FakeOpenAIServer(api_key="sk-events") as server:
        monkeypatch.setenv("OPENAI_API_KEY", "sk-events")
        monkeypatch.setenv("OPENAI_BASE_URL", server.base_url)
        runtime.reset()
        with pytest.raises(CoachError) as missing_dataset:  # that build was never assembled here
            invoke("finetune", load("finetune_start.json"))
        assert missing_dataset.value.code == "dataset_missing"
        with pytest.raises(CoachError) as unknown_job:  # nor was that job started
            invoke("finetune", load("finetune_status.json"))
        assert unknown_job.value.code == "fine_tune_job_not_found"
    runtime.reset()


def test_the_bedrock_fine_tune_events_reach_their_handler(aws, monkeypatch):
    with FakeBedrockServer() as bedrock:
        monkeypatch.setenv("AWS_ENDPOINT_URL_BEDROCK", bedrock.endpoint_url)
        runtime.reset()
        for name in ("finetune_bedrock_status.json", "finetune_deploy.json"):
            with pytest.raises(CoachError) as unknown:  # that job (and its model) exist only in an account
                invoke("finetune", load(name))
            assert unknown.value.code == "bedrock_resource_not_found", name
    runtime.reset()


def test_the_evaluate_event_reaches_its_handler(aws):
    with pytest.raises(CoachError) as unassembled:  # that build was never assembled here
        invoke("evaluate", load("evaluate.json"))
    assert unassembled.value.code == "eval_set_missing"


def test_the_batch_events_reach_their_handler(aws):
    from coach.step_errors import BatchFailed

    # The aborted execution's event (from EventBridge) names a build with nothing to cancel here.
    assert invoke("batch", load("batch_cancel_on_abort.json")) == {"build_id": "wp-2025-06-batch", "done": True}
    with pytest.raises(BatchFailed) as unknown:  # that build never ran here
        invoke("batch", load("batch_collect.json"))
    assert str(unknown.value).startswith("build_not_found: ")
