"""Generation for a direct local build: C worker threads, each with one story's call in flight at a time.

Each worker takes one message from the in-process queue and runs the generator's own work on it
(`generate_once`, with the file-backed guard and ledger); like the Lambda handler it deletes the message on
success and hands it back for a later delivery on a transient failure. The feedback record is on disk before
the message is deleted, so a crash (kill -9) costs at most the C calls in flight.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

from coach import runtime
from coach.adapters.idempotency import GenerationInProgressError
from coach.domain.records import GenerationTask
from coach.errors import UpstreamError
from coach.local.direct_steps import DirectAdapters
from coach.local.memory_queue import Delivery
from coach.local.workers import WorkStats, run_workers
from coach.pipeline.generate import generate_once

log = logging.getLogger(__name__)
# Locally a failed delivery comes back after a second (the emulated poller does the same): the provider's own
# retries with backoff have already run inside the call, and a local user is waiting.
RETRY_DELAY_S = 1.0


class DirectGenerator:
    def __init__(self, adapters: DirectAdapters, *, concurrency: int = 4,
                 retry_delay_s: float = RETRY_DELAY_S, pool: int | None = None) -> None:
        self.a = adapters
        self.concurrency = max(1, concurrency)
        self.pool = pool  # the provider's connections; None: the COACH_HTTP_POOL setting
        self.retry_delay_s = retry_delay_s
        self.stats = WorkStats()
        self._stop = threading.Event()

    def _handle(self, delivery: Delivery) -> None:
        task = delivery.task
        cfg = runtime.settings()
        try:
            generate_once(
                task, guard=self.a.guard, store=self.a.store, tally=self.a.tally,
                provider_factory=self._provider, receive_count=delivery.receive_count,
                max_receives=self.a.queue.max_receive_count, max_story_tokens=cfg.max_story_tokens,
                max_feedback_tokens=cfg.max_feedback_tokens,
                ledger=self.a.ledger if task.budget_usd is not None else None,
            )
        except Exception as exc:
            # A transient failure comes back quietly; anything else is a handler error: logged, and the
            # message comes back too and, at last, dead-letters.
            transient = isinstance(exc, (GenerationInProgressError, UpstreamError))
            if not transient:
                log.warning("story %s: %s: %s", task.story_id, type(exc).__name__, exc)
            self.a.queue.retry_later(delivery.receipt_handle, self.retry_delay_s)
            self.stats.add(1, 1, error=not transient)
            return
        self.a.queue.delete(delivery.receipt_handle)
        self.stats.add(1, 0)

    def _provider(self, task: GenerationTask) -> Any:
        return runtime.provider(task.provider, task.model, pool=self.pool)

    def _worker(self) -> None:
        while not self._stop.is_set():
            for delivery in self.a.queue.receive(1, wait_s=0.1):
                self._handle(delivery)

    def run(self, *, on_tick: Callable[[], None] | None = None, timeout_s: float | None = None,
            tick_s: float = 0.1) -> bool:
        """Work until the queue is empty and no worker holds a message (True) or the timeout passes (False).

        On any exit (Ctrl-C included) every call in flight is finished and its record written first.
        """
        # A message in hand stays in flight until its record is written: empty means drained.
        return run_workers(self._worker, name="generator", concurrency=self.concurrency, stop=self._stop,
                           drained=lambda: self.a.queue.depth() == 0, on_tick=on_tick, timeout_s=timeout_s,
                           tick_s=tick_s)
