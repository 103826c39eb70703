"""Progress check: has every enqueued story of this run been accounted for?"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from coach.adapters.storage import BuildStore, scrape_key


class Progress(BaseModel):
    build_id: str
    enqueued: int
    generated: int = 0
    failed: int = 0
    skipped_budget: int = 0
    dead_lettered: int = 0
    accounted: int = 0
    done: bool = False


def check_progress(build_id: str, *, store: BuildStore, dlq_depth: int | None = None) -> Progress:
    scrape: dict[str, Any] | None = store.get_json(scrape_key(build_id))
    if scrape is None:
        return Progress(build_id=build_id, enqueued=0, done=True)
    run_id = scrape.get("run_id", "")
    wanted = set(scrape.get("enqueued_ids", []))
    progress = Progress(build_id=build_id, enqueued=len(wanted), dead_lettered=dlq_depth or 0)
    for record in store.feedback(build_id):
        if record.story_id not in wanted:
            continue
        if record.status == "generated":
            progress.generated += 1
        elif record.run_id == run_id:  # a failure left by an earlier run does not count for this one
            if record.status == "failed":
                progress.failed += 1
            else:
                progress.skipped_budget += 1
    progress.accounted = progress.generated + progress.failed + progress.skipped_budget
    progress.done = progress.accounted >= progress.enqueued
    return progress
