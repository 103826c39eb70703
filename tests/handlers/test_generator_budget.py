"""A build's budget through the real handlers: the scraper's pre-check, then spending during generation.

The test server answers longer critiques than the estimate assumes, so a build that fits its budget on
paper runs out part-way: the remaining stories must be recorded as skipped (not lost, not paid), and a
re-run with a larger budget must generate exactly those.
"""

from __future__ import annotations

import boto3
import pytest

from coach.adapters.sources import load_stories
from coach.adapters.storage import BuildStore
from coach.domain.records import BuildRequest
from coach.local.lambda_runtime import invoke
from coach.local.poller import to_sqs_event
from coach.pipeline.scrape import estimate_pending
from coach.step_errors import SourceFailed
from tests.support.overspend import MODEL, overspending_server, write_stories

KEY = "sk-budget-tests"


@pytest.fixture
def paid(aws, monkeypatch, tmp_path):
    source = tmp_path / "stories.jsonl"
    write_stories(source, 8, seed=5, prefix="budget")
    with overspending_server(monkeypatch, KEY) as fake:
        yield fake, str(source)


def _request(path: str, budget: float, build_id: str = "budget-1") -> dict:
    return {"build_id": build_id, "source": {"kind": "jsonl", "path": path}, "provider": "openai",
            "model": MODEL, "budget_usd": budget}


def _generate_queued(aws) -> None:
    sqs = boto3.client("sqs")
    messages = sqs.receive_message(QueueUrl=aws.queue_url, MaxNumberOfMessages=10,
                                   AttributeNames=["All"]).get("Messages", [])
    assert messages
    result = invoke("generator", to_sqs_event(messages, aws.queue_arn))
    assert result["batchItemFailures"] == []
    for message in messages:
        sqs.delete_message(QueueUrl=aws.queue_url, ReceiptHandle=message["ReceiptHandle"])


def test_a_build_that_cannot_fit_is_refused_before_anything_is_enqueued(aws, paid):
    fake, path = paid
    with pytest.raises(SourceFailed, match=r"budget_exceeded: .*8 stories.*raise the budget \(--budget"):
        invoke("scraper", {"request": _request(path, 0.001)})
    depth = boto3.client("sqs").get_queue_attributes(QueueUrl=aws.queue_url, AttributeNames=["All"])
    assert depth["Attributes"]["ApproximateNumberOfMessages"] == "0"
    assert fake.chat_requests() == []


def test_spending_stops_at_the_budget_and_a_larger_budget_finishes_the_rest(aws, paid):
    fake, path = paid
    store = BuildStore(aws.bucket, boto3.client("s3"))
    request = BuildRequest.model_validate(_request(path, 1.0))
    budget = estimate_pending(request, load_stories(request.source).stories).usd  # just fits on paper

    scrape = invoke("scraper", {"request": _request(path, budget)})
    assert scrape["enqueued"] == 8 and scrape["estimate"]["usd"] == pytest.approx(budget)
    _generate_queued(aws)

    records = {r.story_id: r for r in store.feedback("budget-1")}
    generated = [r for r in records.values() if r.status == "generated"]
    skipped = [r for r in records.values() if r.status == "skipped_budget"]
    assert len(records) == 8 and generated and skipped and len(generated) + len(skipped) == 8
    assert sum(r.cost_usd for r in generated) <= budget
    assert fake.total_successes == len(generated) == len(fake.chat_requests())  # skipped ones never called
    for record in skipped:
        assert record.feedback is None and record.error is not None
        assert record.error.code == "budget_exceeded" and "budget" in record.error.message
    progress = invoke("progress", {"build_id": "budget-1"})
    assert progress["skipped_budget"] == len(skipped) and progress["done"]

    # The same build with a larger budget: only the skipped stories are enqueued, each paid once.
    rerun = invoke("scraper", {"request": _request(path, budget * 3)})
    assert rerun["enqueued"] == len(skipped) and rerun["reused"] == len(generated)
    assert rerun["spent_before_usd"] == pytest.approx(sum(r.cost_usd for r in generated))
    _generate_queued(aws)
    assert {r.status for r in store.feedback("budget-1")} == {"generated"}
    assert fake.total_successes == 8 and max(fake.success_counts.values()) == 1


def test_a_budget_needs_a_priced_model(aws, paid):
    _fake, path = paid
    request = _request(path, 5.0) | {"model": "mystery-model"}
    with pytest.raises(SourceFailed, match="unpriced_model"):
        invoke("scraper", {"request": request})
