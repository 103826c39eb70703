"""Locks between processes on one machine, for the files that local commands share.

The guard, the budget ledger and the registry file serialise their own threads; these locks keep a second
process out: two `coach build` commands on one state folder would each believe no call is in flight and pay
for the same stories, and two publishers of the registry file would lose one's version. The kernel drops an
flock when its process dies, so a killed build never blocks its re-run. Where flock does not exist
(Windows), the locks are not taken.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path
from typing import TextIO

from coach.errors import CoachError

try:
    import fcntl
except ImportError:  # pragma: no cover - not Unix
    fcntl = None  # type: ignore[assignment]


@contextlib.contextmanager
def held(path: Path) -> Iterator[None]:
    """Hold the lock file at `path`, waiting for another process to let go of it."""
    with _opened(path) as handle:
        if fcntl is not None:
            fcntl.flock(handle, fcntl.LOCK_EX)
        yield


@contextlib.contextmanager
def state_folder_lock(state: Path) -> Iterator[None]:
    """One build process at a time in a state folder; another gets `state_in_use` at once, never a wait."""
    path = state / "local" / "build.lock"
    with _opened(path) as handle:
        if fcntl is not None:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = path.read_text(encoding="utf-8").strip() or "another process"
                raise CoachError(f"another coach command ({holder}) is running a build in {state}; wait for it "
                                 "to end, or give this one its own --out", code="state_in_use") from None
        handle.seek(0)
        handle.truncate()
        handle.write(f"pid {os.getpid()}")
        handle.flush()
        yield


@contextlib.contextmanager
def _opened(path: Path) -> Iterator[TextIO]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a+", encoding="utf-8") as handle:
        yield handle
