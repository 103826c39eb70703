"""What the local generation loops share: their counts, and worker threads run until the queue drains.

Both the emulated build's SQS poller and the direct build's generator run C worker threads and watch the
queue from the calling thread, which also drives the progress bar (`on_tick`).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass
class WorkStats:
    """What the workers handled: batches of messages, failed messages (they come back) and handler errors."""

    batches: int = 0
    messages: int = 0
    failures: int = 0
    handler_errors: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def add(self, messages: int, failures: int, error: bool = False) -> None:
        with self.lock:
            self.batches += 1
            self.messages += messages
            self.failures += failures
            self.handler_errors += int(error)


def run_workers(work: Callable[[], None], *, name: str, concurrency: int, stop: threading.Event,
                drained: Callable[[], bool], on_tick: Callable[[], None] | None, timeout_s: float | None,
                tick_s: float) -> bool:
    """Run `concurrency` threads of `work` until `drained()` says so (True) or the timeout passes (False).

    `work` loops until `stop` is set. Every `tick_s` the caller's `on_tick` runs, then `drained` is asked. On any
    exit (Ctrl-C included) `stop` is set and every worker joined, so what each holds is finished (its call paid,
    its record written) before this returns; a second Ctrl-C interrupts the wait.
    """
    stop.clear()
    workers = [threading.Thread(target=work, name=f"{name}-{i}", daemon=True) for i in range(concurrency)]
    for worker in workers:
        worker.start()
    deadline = None if timeout_s is None else time.monotonic() + timeout_s
    try:
        while True:
            time.sleep(tick_s)
            if on_tick:
                on_tick()
            if drained():
                return True
            if deadline and time.monotonic() > deadline:
                return False
    finally:
        stop.set()
        for worker in workers:
            worker.join()
