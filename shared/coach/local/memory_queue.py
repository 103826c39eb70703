"""The story queue of a direct local build: in this process, with the SQS semantics the generator relies on.

- a received message is invisible for the visibility timeout, then delivered again unless deleted;
- `retry_later` (the generator's shortened visibility after a transient failure) brings it back sooner;
- each delivery counts; a message whose receive count has reached the maximum is moved to the dead-letter
  list instead of being delivered again (SQS's redrive policy), so the generator's last delivery writes
  its `failed` record and nothing is lost silently;
- a receipt handle is valid for one delivery only: settling a stale one does nothing.

The queue needs no durability: the scraper re-enqueues every story without feedback when a build is re-run.
"""

from __future__ import annotations

import heapq
import itertools
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from coach.domain.records import GenerationTask


@dataclass
class Delivery:
    """One received message: its task, a receipt handle for this delivery, and how often it was received."""

    task: GenerationTask
    receipt_handle: str
    receive_count: int
    message_id: str


@dataclass(order=True)
class _Message:
    visible_at: float
    seq: int
    message_id: str = field(compare=False)
    task: GenerationTask = field(compare=False)
    receive_count: int = field(default=0, compare=False)
    handle: str | None = field(default=None, compare=False)


class LocalStoryQueue:
    """The StoryQueue interface (enqueue, retry_later) plus the receive/delete side a consumer uses."""

    def __init__(self, *, max_receive_count: int = 3, visibility_timeout_s: float = 900.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.max_receive_count = max(1, max_receive_count)
        self.visibility_timeout_s = visibility_timeout_s
        self.clock = clock
        self._heap: list[_Message] = []  # by visible_at; an entry whose handle changed is stale
        self._in_flight: dict[str, _Message] = {}  # receipt handle -> message
        self._dead: list[_Message] = []
        self._seq = itertools.count()
        self._lock = threading.Lock()
        self._ready = threading.Condition(self._lock)

    # producer side (StoryQueue) -------------------------------------------------------------------
    def enqueue(self, tasks: Iterable[GenerationTask]) -> int:
        sent = 0
        with self._lock:
            now = self.clock()
            for task in tasks:
                seq = next(self._seq)
                heapq.heappush(self._heap, _Message(now, seq, f"m-{seq}", task))
                sent += 1
            self._ready.notify_all()
        return sent

    def retry_later(self, receipt_handle: str, delay_s: float) -> None:
        """Make a received message visible again after `delay_s` seconds instead of the visibility timeout."""
        with self._lock:
            message = self._in_flight.pop(receipt_handle, None)
            if message is None:
                return  # a stale handle: the message was settled or redelivered meanwhile
            self._requeue(message, self.clock() + max(0.0, delay_s))

    # consumer side --------------------------------------------------------------------------------
    def receive(self, max_messages: int = 1, wait_s: float = 0.0) -> list[Delivery]:
        """Up to `max_messages` visible messages; waits up to `wait_s` for one to become visible."""
        deadline = self.clock() + wait_s
        with self._lock:
            while True:
                got = self._take(max_messages)
                if got or self.clock() >= deadline:
                    return got
                self._ready.wait(min(0.05, max(0.0, deadline - self.clock())))

    def delete(self, receipt_handle: str) -> None:
        with self._lock:
            self._in_flight.pop(receipt_handle, None)

    def depth(self) -> int:
        """Visible + in-flight + waiting to be retried, like SQS's approximate counts together."""
        with self._lock:
            self._expire()
            return len(self._in_flight) + sum(1 for m in self._heap if m.handle is None)

    def dead_letters(self) -> list[GenerationTask]:
        with self._lock:
            self._expire()
            return [m.task for m in self._dead]

    def redrive(self) -> int:
        """Send every dead-lettered message through again with a fresh receive count."""
        with self._lock:
            moved, self._dead = self._dead, []
            for message in moved:
                message.receive_count = 0
                self._requeue(message, self.clock())
            return len(moved)

    # internals (lock held) ------------------------------------------------------------------------
    def _requeue(self, message: _Message, visible_at: float) -> None:
        message.handle = None
        message.visible_at = visible_at
        message.seq = next(self._seq)
        heapq.heappush(self._heap, message)
        self._ready.notify_all()

    def _expire(self) -> None:
        """Deliveries whose visibility timeout passed unsettled come back (a worker that never answered)."""
        now = self.clock()
        for handle, message in list(self._in_flight.items()):
            if message.visible_at <= now:
                del self._in_flight[handle]
                self._requeue(message, now)

    def _take(self, limit: int) -> list[Delivery]:
        self._expire()
        now = self.clock()
        got: list[Delivery] = []
        while self._heap and len(got) < limit and self._heap[0].visible_at <= now:
            message = heapq.heappop(self._heap)
            if message.receive_count >= self.max_receive_count:
                self._dead.append(message)  # the redrive policy: never delivered again
                continue
            message.receive_count += 1
            message.handle = f"{message.message_id}:{message.receive_count}"
            message.visible_at = now + self.visibility_timeout_s
            self._in_flight[message.handle] = message
            got.append(Delivery(message.task, message.handle, message.receive_count, message.message_id))
        return got
