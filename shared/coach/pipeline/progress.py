"""Progress check: has every enqueued story of this run been accounted for?

A story is accounted for by its feedback record: generated, failed (with its cause) or skipped_budget.
A message can also leave the queue with no record at all: a body the generator cannot read, or a
function timeout on its last delivery, sends it to the DLQ silently. So when the story queue has stayed
empty (nothing visible or in flight) for a while and stories are still missing, each missing story gets a
`failed` record saying where its message went, and the check is done: the state machine does not wait
out its whole time limit for messages that are no longer there.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from pydantic import BaseModel

from coach.adapters.storage import BuildStore, progress_key, request_key, scrape_key
from coach.domain.prompt import PROMPT_VERSION
from coach.domain.records import BuildRequest, ErrorInfo, GenerationRecord
from coach.pipeline.scrape import default_model

# SQS message counts are approximate: two empty readings this far apart make "drained" trustworthy.
DEFAULT_DRAIN_CONFIRM_S = 60.0
LOST_MESSAGE = ("the story's message left the queue without a feedback record (an unreadable message, or a "
                "timeout on its last delivery): look in the dead-letter queue, then re-run or redrive the build")


class Progress(BaseModel):
    build_id: str
    enqueued: int
    generated: int = 0
    failed: int = 0
    skipped_budget: int = 0
    dead_lettered: int = 0
    lost: int = 0  # stories whose message left the queue without a record, now recorded as failed
    accounted: int = 0
    done: bool = False


def check_progress(
    build_id: str,
    *,
    store: BuildStore,
    dlq_depth: int | None = None,
    queue_depth: int | None = None,
    drain_confirm_s: float = DEFAULT_DRAIN_CONFIRM_S,
    clock: Callable[[], float] = time.time,
) -> Progress:
    """`queue_depth` is the story queue's visible + in-flight count; None skips the lost-message check."""
    scrape: dict[str, Any] | None = store.get_json(scrape_key(build_id))
    if scrape is None:
        return Progress(build_id=build_id, enqueued=0, done=True)
    run_id = scrape.get("run_id", "")
    wanted = set(scrape.get("enqueued_ids", []))
    progress = Progress(build_id=build_id, enqueued=len(wanted), dead_lettered=dlq_depth or 0)
    accounted: set[str] = set()
    for record in store.feedback(build_id):
        if record.story_id not in wanted:
            continue
        if record.status == "generated":
            progress.generated += 1
        elif record.run_id != run_id:  # a failure left by an earlier run does not count for this one
            continue
        elif record.status == "failed":
            progress.failed += 1
        else:
            progress.skipped_budget += 1
        accounted.add(record.story_id)
    progress.accounted = len(accounted)
    progress.done = progress.accounted >= progress.enqueued
    if queue_depth:
        _forget_drain(store, build_id)
    elif not progress.done and queue_depth == 0 and _drained(store, build_id, run_id, drain_confirm_s, clock):
        _record_lost(store, build_id, run_id, sorted(wanted - accounted))
        progress.lost = len(wanted - accounted)
        progress.failed += progress.lost
        progress.accounted += progress.lost
        progress.done = True
    return progress


def _drained(store: BuildStore, build_id: str, run_id: str, confirm_s: float, clock: Callable[[], float]) -> bool:
    """True once the queue has been seen empty at two checks at least `confirm_s` apart in this run."""
    marker = store.get_json(progress_key(build_id)) or {}
    if marker.get("run_id") != run_id:
        marker = {"run_id": run_id, "queue_empty_since": clock()}
        store.put_json(progress_key(build_id), marker)
    return clock() - float(marker["queue_empty_since"]) >= confirm_s


def _forget_drain(store: BuildStore, build_id: str) -> None:
    """Messages are back in the queue: an earlier empty reading no longer counts."""
    if store.get_json(progress_key(build_id)):
        store.put_json(progress_key(build_id), {})


def _record_lost(store: BuildStore, build_id: str, run_id: str, story_ids: list[str]) -> None:
    request = store.get_model(request_key(build_id), BuildRequest)
    provider = request.provider if request else "offline"
    model = default_model(request) if request else "unknown"
    for story_id in story_ids:
        store.put_feedback(GenerationRecord(
            build_id=build_id, story_id=story_id, prompt_version=PROMPT_VERSION, provider=provider, model=model,
            status="failed", run_id=run_id, dead_lettered=True,
            error=ErrorInfo(code="message_lost", message=LOST_MESSAGE),
        ))
