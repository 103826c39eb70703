"""The direct local build: the build's flow over local adapters, with no AWS emulator in between.

The state folder (OUT/.state by default) is the build store itself: every record is a file there the moment
it is written (write-then-rename), so nothing needs mirroring and a re-run of the same build id resumes from
whatever the folder holds. Generation runs `--concurrency` calls at once (coach.local.direct_generation).

After kill -9 at any point, a re-run of the build id pays again only for the calls that were in flight at the
kill (at most `--concurrency`): a critique's record is written before its message leaves the queue, and the
scraper re-enqueues only stories without feedback.
"""

from __future__ import annotations

import sys
from typing import Any, TextIO

from coach.adapters.storage import BuildStore
from coach.local.build_flow import build_environment, run_flow, run_step
from coach.local.build_options import LocalBuildOptions, LocalBuildResult
from coach.local.direct_generation import DirectGenerator
from coach.local.direct_steps import DirectAdapters, DirectSteps


class DirectRuntime:
    """The steps are the pipeline functions (coach.local.direct_steps); the store is the state folder."""

    def __init__(self, options: LocalBuildOptions) -> None:
        self.options = options
        self.adapters = DirectAdapters.in_folder(options.state)
        self.store: BuildStore = self.adapters.store
        self._steps = DirectSteps(self.adapters)

    def step(self, name: str, event: dict[str, Any]) -> Any:
        return run_step(name, event, call=self._steps)

    def resumed_note(self) -> str:
        return f" (resumed from {self.options.state})"

    def generator(self) -> DirectGenerator:
        return DirectGenerator(self.adapters, concurrency=self.options.concurrency, pool=self.options.http_pool)

    def while_generating(self) -> None:
        return None

    def checkpoint(self) -> None:
        return None  # every record is in the state folder the moment it is written

    def report_store(self) -> BuildStore:
        return self.store

    def close(self) -> None:
        self.adapters.guard.close()


def run_direct_build(options: LocalBuildOptions, *, stream: TextIO | None = None) -> LocalBuildResult:
    stream = stream or sys.stderr  # read at call time: tests swap sys.stderr
    with build_environment(options.verbose):
        rt = DirectRuntime(options)
        try:
            return run_flow(options, rt, stream)
        finally:
            rt.close()
