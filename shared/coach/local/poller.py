"""A local stand-in for Lambda's SQS event source mapping.

It receives batches, hands them to the generator as SQS events of the shape AWS sends, deletes the
messages the handler did not report as failed, and makes failed ones visible again after a short delay,
so SQS's own redrive policy moves a message to the DLQ after its last allowed receive, as in the cloud.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Callable
from typing import Any

from aws_lambda_powertools import Logger

from coach.adapters.queue import queue_depth
from coach.local.lambda_runtime import invoke
from coach.local.workers import WorkStats, run_workers

Handler = Callable[[dict[str, Any]], Any]
BatchHook = Callable[[list[dict[str, Any]]], None]
logger = Logger(child=True)


def to_sqs_event(messages: list[dict[str, Any]], queue_arn: str, region: str = "us-east-1") -> dict[str, Any]:
    records = []
    for msg in messages:
        attributes = msg.get("Attributes", {})
        records.append({
            "messageId": msg["MessageId"],
            "receiptHandle": msg["ReceiptHandle"],
            "body": msg["Body"],
            "attributes": {
                "ApproximateReceiveCount": attributes.get("ApproximateReceiveCount", "1"),
                "SentTimestamp": attributes.get("SentTimestamp", str(int(time.time() * 1000))),
                "SenderId": attributes.get("SenderId", "local"),
                "ApproximateFirstReceiveTimestamp": attributes.get(
                    "ApproximateFirstReceiveTimestamp", str(int(time.time() * 1000))),
            },
            "messageAttributes": {
                name: {"stringValue": value.get("StringValue"), "binaryValue": None, "stringListValues": [],
                       "binaryListValues": [], "dataType": value.get("DataType", "String")}
                for name, value in msg.get("MessageAttributes", {}).items()
            },
            "md5OfBody": msg.get("MD5OfBody") or hashlib.md5(msg["Body"].encode()).hexdigest(),
            "eventSource": "aws:sqs",
            "eventSourceARN": queue_arn,
            "awsRegion": region,
        })
    return {"Records": records}


class SqsPoller:
    def __init__(
        self,
        sqs: Any,
        queue_url: str,
        queue_arn: str,
        *,
        handler: Handler | None = None,
        batch_size: int = 5,
        concurrency: int = 4,
        retry_delay_s: int = 1,
        wait_s: int = 1,
        after_batch: BatchHook | None = None,
    ) -> None:
        self.sqs = sqs
        self.queue_url = queue_url
        self.queue_arn = queue_arn
        self.handler = handler or (lambda event: invoke("generator", event))
        self.batch_size = max(1, min(10, batch_size))
        self.concurrency = max(1, concurrency)
        self.retry_delay_s = retry_delay_s
        self.wait_s = wait_s
        # Called with a batch's messages after the handler and before any is deleted: a local build makes
        # what the batch wrote durable there, so a crash never loses a critique whose message is gone.
        self.after_batch = after_batch
        self.stats = WorkStats()
        self._stop = threading.Event()
        self._in_flight = 0
        # The emulator's SQS is not thread-safe (a receive can race a delete), so this process sends it one
        # request at a time. The requests are short; the generator's work runs outside the lock.
        self._sqs_lock = threading.Lock()

    def queue_depth(self) -> int:
        with self._sqs_lock:
            return queue_depth(self.sqs, self.queue_url)

    def _process(self, messages: list[dict[str, Any]]) -> None:
        event = to_sqs_event(messages, self.queue_arn)
        failed_ids: set[str]
        error = False
        try:
            response = self.handler(event) or {}
            failed_ids = {f["itemIdentifier"] for f in response.get("batchItemFailures", [])}
        except Exception:
            failed_ids = {m["MessageId"] for m in messages}
            error = True
        if self.after_batch is not None:
            try:
                self.after_batch(messages)
            except Exception as exc:  # the records are still in the emulator; the periodic save keeps them
                logger.warning("after-batch hook failed", extra={"error": f"{type(exc).__name__}: {exc}"})
        done = [m for m in messages if m["MessageId"] not in failed_ids]
        retry = [m for m in messages if m["MessageId"] in failed_ids]
        # One request per batch, as the event source mapping does: fewer calls, less emulator time per story.
        if done:
            self._settle("delete_message_batch", [
                {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(done)])
        if retry:
            self._settle("change_message_visibility_batch", [
                {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"], "VisibilityTimeout": self.retry_delay_s}
                for i, m in enumerate(retry)])
        self.stats.add(len(messages), len(failed_ids), error)

    def _settle(self, operation: str, entries: list[dict[str, Any]]) -> None:
        with self._sqs_lock:
            response = getattr(self.sqs, operation)(QueueUrl=self.queue_url, Entries=entries)
        if response.get("Failed"):
            # A refused delete only means an extra delivery (the generator is idempotent); say so, though.
            reasons = "; ".join(f"{f.get('Code')}: {f.get('Message')}" for f in response["Failed"])
            logger.warning("SQS refused entries", extra={"operation": operation, "refused": len(response["Failed"]),
                                                         "reasons": reasons})

    def _receive(self) -> list[dict[str, Any]]:
        with self._sqs_lock:
            response = self.sqs.receive_message(
                QueueUrl=self.queue_url, MaxNumberOfMessages=self.batch_size, WaitTimeSeconds=0,
                AttributeNames=["All"], MessageAttributeNames=["All"],
            )
        return list(response.get("Messages", []))

    def _worker(self) -> None:
        idle_s = min(max(self.wait_s, 0.05), 0.25)  # a short poll, so a worker never holds the lock waiting
        while not self._stop.is_set():
            with self.stats.lock:
                self._in_flight += 1  # counted from before the receive: a batch in hand is never "drained"
            try:
                messages = self._receive()
                if messages:
                    self._process(messages)
            except Exception as exc:  # a dead worker would quietly lower the concurrency
                logger.warning("SQS poller failed", extra={"error": f"{type(exc).__name__}: {exc}"})
                messages = []
            finally:
                with self.stats.lock:
                    self._in_flight -= 1
            if not messages:
                self._stop.wait(idle_s)

    def run(self, *, on_tick: Callable[[], None] | None = None, timeout_s: float | None = None,
            tick_s: float = 0.5) -> bool:
        """Poll with `concurrency` workers until the queue is drained (True) or the timeout passes (False).

        Drained means no visible or in-flight message twice in a row with no batch being handled: every
        message was either deleted after success or moved to the DLQ by the redrive policy.
        """
        empty_ticks = 0

        def drained() -> bool:
            nonlocal empty_ticks
            busy = self._in_flight > 0
            empty_ticks = empty_ticks + 1 if (not busy and self.queue_depth() == 0) else 0
            return empty_ticks >= 2

        return run_workers(self._worker, name="sqs-poller", concurrency=self.concurrency, stop=self._stop,
                           drained=drained, on_tick=on_tick, timeout_s=timeout_s, tick_s=tick_s)
