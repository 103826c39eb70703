"""The local builds of a working folder, for `coach builds`: where each one is and how it stands.

Builds are found by their state: every folder under the output root (default out/) holding `.state/builds/ID`.
While a build runs, its state folder holds `local/run.json` with the process id; a build whose process is gone
without saying how it ended was interrupted (Ctrl-C, kill -9).
"""

from __future__ import annotations

import contextlib
import json
import os
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from coach.adapters.storage import build_prefix, dataset_key, request_key
from coach.domain.records import BuildManifest, GenerationRecord, utc_now
from coach.local.dir_store import write_atomically


def run_marker(state: Path) -> Path:
    return state / "local" / "run.json"


class LocalBuild(BaseModel):
    build_id: str
    out: str
    state: str
    status: str = "unknown"
    stories: int = 0
    generated: int = 0
    failed: int = 0
    skipped_budget: int = 0
    accepted: int = 0
    rejected: int = 0
    cost_usd: float = 0.0
    updated_at: str | None = None
    fine_tune: str | None = None


def mark_running(state: Path, build_id: str) -> None:
    write_atomically(run_marker(state), json.dumps({"build_id": build_id, "pid": os.getpid(),
                                                    "started_at": utc_now(), "status": "running"}))


def mark_ended(state: Path, build_id: str, status: str) -> None:
    write_atomically(run_marker(state), json.dumps({"build_id": build_id, "ended_at": utc_now(), "status": status}))


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _manifest(out: Path, state: Path, build_id: str) -> BuildManifest | None:
    for path in (state / dataset_key(build_id, "manifest.json"), out / "manifest.json"):
        try:
            return BuildManifest.model_validate_json(path.read_text(encoding="utf-8"))
        except (FileNotFoundError, ValidationError, ValueError):
            continue
    return None


def _from_records(summary: LocalBuild, state: Path) -> None:
    """Counts of a build with no manifest yet (interrupted before assembly): from its records."""
    folder = state / build_prefix(summary.build_id) / "feedback"
    summary.stories = sum(1 for _ in (state / build_prefix(summary.build_id) / "stories").glob("*.json"))
    for path in folder.glob("*.json"):
        try:
            record = GenerationRecord.model_validate_json(path.read_text(encoding="utf-8"))
        except (ValidationError, ValueError, OSError):
            continue
        summary.cost_usd += record.cost_usd or 0.0
        if record.status == "generated":
            summary.generated += 1
        elif record.status == "failed":
            summary.failed += 1
        else:
            summary.skipped_budget += 1


def describe(build_id: str, out: Path, state: Path) -> LocalBuild:
    summary = LocalBuild(build_id=build_id, out=str(out), state=str(state))
    marker: dict[str, Any] = {}
    with contextlib.suppress(FileNotFoundError, ValueError):
        marker = json.loads(run_marker(state).read_text(encoding="utf-8"))
    manifest = _manifest(out, state, build_id)
    if marker.get("status") == "running":
        summary.status = "running" if _alive(int(marker.get("pid", 0))) else "interrupted (re-run to resume)"
    elif manifest is None:
        summary.status = marker.get("status") or "interrupted (re-run to resume)"
    elif manifest.failure is not None:
        summary.status = f"failed at {manifest.failure.step}: {manifest.failure.code}"
    else:
        summary.status = marker.get("status") or "complete"
    summary.updated_at = marker.get("ended_at") or marker.get("started_at")
    if manifest is not None and summary.status != "running" and not summary.status.startswith("interrupted"):
        c = manifest.counts
        summary.stories, summary.generated, summary.failed = c.stories, c.generated, c.failed
        summary.skipped_budget, summary.accepted, summary.rejected = c.skipped_budget, c.accepted, c.rejected
        summary.cost_usd = manifest.cost.generation_usd
        summary.updated_at = summary.updated_at or manifest.created_at
        summary.fine_tune = manifest.fine_tune.status
    else:
        _from_records(summary, state)
    return summary


def local_builds(root: Path = Path("out")) -> list[LocalBuild]:
    """Every build whose state is in a folder under `root` (or in `root` itself), by output folder."""
    found: list[LocalBuild] = []
    if not root.is_dir():
        return found
    for out in [root, *sorted(p for p in root.iterdir() if p.is_dir())]:
        builds = out / ".state" / "builds"
        if builds.is_dir():
            for folder in sorted(builds.iterdir()):
                if (out / ".state" / request_key(folder.name)).is_file():
                    found.append(describe(folder.name, out, out / ".state"))
    return found
