"""`coach build --batch`: the state machine's Submit -> Wait -> Poll -> Collect loop, run in this process.

The steps are the batch function's own (invoked as Lambda would be); between polls this process sleeps.
Ctrl-C leaves the batches running at the provider: re-running the same build id resumes them.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, TextIO

from pydantic import BaseModel

Step = Callable[[str, dict[str, Any]], Any]


class BatchRun(BaseModel):
    submitted: int = 0
    resumed: int = 0
    generated: int = 0
    fallback: int = 0  # stories sent to the synchronous queue
    failed: int = 0
    finished: bool = True  # False: stopped waiting with batches still running


def follow_batches(build_id: str, step: Step, *, poll_s: float, timeout_s: float, stream: TextIO,
                   on_poll: Callable[[], None] | None = None) -> BatchRun:
    run = BatchRun()
    deadline = time.monotonic() + timeout_s
    event = {"build_id": build_id}
    while True:
        submitted = step("batch", {"action": "submit", **event})
        run.submitted += submitted["submitted"]
        run.resumed += submitted["resumed"]
        run.fallback += submitted["fallback"]
        run.failed += submitted["failed"]
        if submitted["done"]:
            return run
        stream.write(f"batches: {submitted['running']} running ({submitted['submitted']} submitted, "
                     f"{submitted['resumed']} resumed)\n")
        while True:
            time.sleep(poll_s)
            polled = step("batch", {"action": "poll", **event})
            if on_poll:
                on_poll()
            if polled["running"] == 0:
                break
            if time.monotonic() > deadline:
                stream.write(f"warning: {polled['running']} batches still running; re-run the same build id to "
                             "resume and collect them\n")
                run.finished = False
                return run
        collected = step("batch", {"action": "collect", **event})
        run.generated += collected["generated"]
        run.fallback += collected["fallback"]
        run.failed += collected["failed"]
        stream.write(f"batches collected: {collected['generated']} critiques, {collected['resubmit']} to "
                     f"resubmit, {collected['fallback']} to the synchronous path\n")
        if collected["resubmit"] == 0:
            return run
