"""A batch build driven through the real handlers, step by step as the state machine runs it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import boto3

from coach.adapters.storage import BuildStore
from coach.local.lambda_runtime import invoke
from coach.local.poller import to_sqs_event
from tests.support.stories import marker, paragraphs, samples, write_rows


def write_stories(path: Path, count: int, prefix: str = "story") -> list[str]:
    """`count` distinct stories cut from the bundled samples, each opening with a findable marker."""
    found = samples()
    rows = []
    for number in range(count):
        sample = found[number % len(found)]
        rows.append({"id": f"{prefix}-{number:03d}", "title": f"{sample.stem} {number}",
                     "text": f"{marker(number)} {prefix}. " + "\n\n".join(paragraphs(sample))})
    return write_rows(path, rows)


def drain_queue(stack: Any) -> int:
    """Run the generator over every message on the story queue (the synchronous fallback)."""
    sqs = boto3.client("sqs")
    handled = 0
    for _ in range(50):
        got = sqs.receive_message(QueueUrl=stack.queue_url, MaxNumberOfMessages=10, AttributeNames=["All"],
                                  MessageAttributeNames=["All"]).get("Messages", [])
        if not got:
            return handled
        result = invoke("generator", to_sqs_event(got, stack.queue_arn))
        failed = {f["itemIdentifier"] for f in result["batchItemFailures"]}
        for message in got:
            if message["MessageId"] not in failed:
                sqs.delete_message(QueueUrl=stack.queue_url, ReceiptHandle=message["ReceiptHandle"])
                handled += 1
    raise AssertionError("the story queue did not drain")


def run_batches(build_id: str, *, max_polls: int = 50) -> list[dict]:
    """submit -> poll until nothing runs -> collect -> submit again while requests are due; the steps' outputs."""
    steps = []
    for _ in range(10):
        steps.append({"action": "submit", **invoke("batch", {"action": "submit", "build_id": build_id})})
        for _ in range(max_polls):
            polled = invoke("batch", {"action": "poll", "build_id": build_id})
            steps.append({"action": "poll", **polled})
            if polled["running"] == 0:
                break
        collected = invoke("batch", {"action": "collect", "build_id": build_id})
        steps.append({"action": "collect", **collected})
        if collected["resubmit"] == 0:
            return steps
    raise AssertionError("batches kept being resubmitted")


def store(stack: Any) -> BuildStore:
    return BuildStore(stack.bucket, boto3.client("s3"))
