"""The story queue (SQS): one message per story of a build."""

from __future__ import annotations

from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import boto3

from coach.domain.records import GenerationTask

SQS_BATCH = 10
# Messages still to be handled: visible, received but not deleted, and sent with a delay.
WAITING = ("ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible", "ApproximateNumberOfMessagesDelayed")
SENDERS = 8  # SendMessageBatch requests in flight at once


def queue_depth(sqs: Any, queue_url: str, names: tuple[str, ...] = WAITING) -> int:
    """The sum of a queue's approximate message counts `names` (one GetQueueAttributes)."""
    attrs = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=list(names))["Attributes"]
    return sum(int(attrs.get(name, 0)) for name in names)


class StoryQueue:
    def __init__(self, queue_url: str, sqs_client: Any | None = None) -> None:
        self.url = queue_url
        self.sqs = sqs_client or boto3.client("sqs")

    def enqueue(self, tasks: Iterable[GenerationTask]) -> int:
        """Send tasks in batches of 10, several batches at once (100,000 stories are 10,000 requests: 200 s one
        after the other, under 30 s eight at a time); a message SQS refuses raises, so no story is silently
        dropped."""
        listed = list(tasks)
        batches = [listed[i:i + SQS_BATCH] for i in range(0, len(listed), SQS_BATCH)]
        if len(batches) < 2:
            return sum(self._send(batch) for batch in batches)
        with ThreadPoolExecutor(max_workers=min(SENDERS, len(batches))) as pool:
            return sum(pool.map(self._send, batches))

    def _send(self, batch: list[GenerationTask]) -> int:
        entries = [
            {
                "Id": str(i),
                "MessageBody": task.model_dump_json(),
                "MessageAttributes": {
                    "build_id": {"DataType": "String", "StringValue": task.build_id},
                    "story_id": {"DataType": "String", "StringValue": task.story_id},
                },
            }
            for i, task in enumerate(batch)
        ]
        response = self.sqs.send_message_batch(QueueUrl=self.url, Entries=entries)
        failed = response.get("Failed", [])
        if failed:
            reasons = "; ".join(f"{f.get('Code')}: {f.get('Message')}" for f in failed)
            raise RuntimeError(f"SQS refused {len(failed)} of {len(batch)} story messages: {reasons}")
        return len(batch)

    def retry_later(self, receipt_handle: str, delay_s: int) -> None:
        """Make a received message visible again after `delay_s` seconds instead of the queue's timeout."""
        self.sqs.change_message_visibility(QueueUrl=self.url, ReceiptHandle=receipt_handle, VisibilityTimeout=delay_s)
