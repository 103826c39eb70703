"""Progress check: has every enqueued story of this run been accounted for?

A story is accounted for by its final record (generated, failed with its cause, or skipped_budget); whoever
writes that record counts it in the run's tally (coach.adapters.run_tally), so a check is one read of the
tally whatever the build's size, plus the two queue depths the caller passes in.

A message can also leave the queue with no record at all: a body the generator cannot read, or a function
timeout on its last delivery, sends it to the DLQ silently. So when the story queue has stayed empty
(nothing visible or in flight) for a while and stories are still missing, a sweep walks the enqueued ids,
`sweep_limit` per check: a story without a tally marker whose record exists is counted from that record (a
crash between the record and the count); one without a record gets a `failed` record saying where its
message went. When the sweep reaches the end the check is done: the state machine does not wait out its
whole time limit for messages that are no longer there.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import Any

from pydantic import BaseModel

from coach.adapters.run_tally import RunTally
from coach.adapters.storage import BuildStore, progress_key, request_key, scrape_key
from coach.domain.prompt import PROMPT_VERSION
from coach.domain.records import BuildRequest, ErrorInfo, GenerationRecord
from coach.pipeline.scrape import default_model
from coach.settings import DEFAULT_QUEUE_DRAIN_CONFIRM_S

# SQS message counts are approximate: two empty readings this far apart make "drained" trustworthy.
DEFAULT_DRAIN_CONFIRM_S = DEFAULT_QUEUE_DRAIN_CONFIRM_S
DEFAULT_SWEEP_LIMIT = 2_000  # enqueued ids looked at per check once the queue is drained: 20 BatchGetItem calls
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
    max_checks: int = 0  # the state machine's limit of progress checks for this run (see generation_checks)


class GenerationPace(BaseModel):
    """How long generation may take: `floor_checks` always, longer when the run is big for the provider's rate."""

    poll_seconds: float = 30.0
    floor_checks: int = 240
    stories_per_minute: float | None = None
    margin: float = 2.0  # slack over the ideal time: retries, throttling, the last stragglers


def generation_checks(enqueued: int, pace: GenerationPace) -> int:
    """The number of progress checks the run may take: 100,000 stories at 600 a minute (2.8 h), polled every 30 s
    with a margin of 2, allow 667 checks (5.6 h); a small run keeps the floor."""
    if not pace.stories_per_minute or pace.stories_per_minute <= 0 or pace.poll_seconds <= 0:
        return pace.floor_checks
    seconds = enqueued / pace.stories_per_minute * 60 * pace.margin
    return max(pace.floor_checks, math.ceil(seconds / pace.poll_seconds))


def check_progress(
    build_id: str,
    *,
    store: BuildStore,
    tally: RunTally,
    run_id: str | None = None,
    enqueued: int | None = None,
    dlq_depth: int | None = None,
    queue_depth: int | None = None,
    drain_confirm_s: float = DEFAULT_DRAIN_CONFIRM_S,
    clock: Callable[[], float] = time.time,
    sweep_limit: int = DEFAULT_SWEEP_LIMIT,
    pace: GenerationPace | None = None,
) -> Progress:
    """`queue_depth` is the story queue's visible + in-flight + delayed count; None skips the lost-message check.

    `run_id` and `enqueued` come from the scrape step's result; without them the scrape summary is read."""
    if run_id is None or enqueued is None:  # an event from before the check named its run
        scrape: dict[str, Any] | None = store.get_json(scrape_key(build_id))
        if scrape is None:
            return Progress(build_id=build_id, enqueued=0, done=True)
        run_id = str(scrape.get("run_id", ""))
        enqueued = int(scrape.get("enqueued", len(scrape.get("enqueued_ids", []))))
    counts = tally.read(build_id, run_id)
    total = int(enqueued or 0)
    progress = _progress(build_id, total, counts, dlq_depth, pace)
    if queue_depth:
        _forget_drain(store, build_id)
    elif not progress.done and queue_depth == 0 and (
            marker := _drained(store, build_id, run_id, drain_confirm_s, clock)) is not None:
        lost, finished = _sweep(store, tally, build_id, run_id, marker, sweep_limit)
        progress = _progress(build_id, total, tally.read(build_id, run_id), dlq_depth, pace)
        progress.lost = lost
        progress.done = progress.done or finished
    return progress


def _progress(build_id: str, enqueued: int, counts: Any, dlq_depth: int | None,
              pace: GenerationPace | None) -> Progress:
    return Progress(
        build_id=build_id, enqueued=enqueued, generated=counts.generated, failed=counts.failed,
        skipped_budget=counts.skipped_budget, dead_lettered=dlq_depth or 0, accounted=counts.accounted,
        done=counts.accounted >= enqueued, max_checks=generation_checks(enqueued, pace or GenerationPace()),
    )


def _drained(store: BuildStore, build_id: str, run_id: str, confirm_s: float,
             clock: Callable[[], float]) -> dict[str, Any] | None:
    """The drain marker once the queue has been seen empty at two checks at least `confirm_s` apart in this
    run (the sweep keeps its place in it); None before that."""
    marker = store.get_json(progress_key(build_id)) or {}
    if marker.get("run_id") != run_id:
        marker = {"run_id": run_id, "queue_empty_since": clock()}
        store.put_json(progress_key(build_id), marker)
    return marker if clock() - float(marker["queue_empty_since"]) >= confirm_s else None


def _forget_drain(store: BuildStore, build_id: str) -> None:
    """Messages are back in the queue: an earlier empty reading no longer counts."""
    if store.get_json(progress_key(build_id)):
        store.put_json(progress_key(build_id), {})


def _sweep(store: BuildStore, tally: RunTally, build_id: str, run_id: str, marker: dict[str, Any],
           limit: int) -> tuple[int, bool]:
    """Account for the next `limit` enqueued ids; (stories recorded as lost so far, the sweep is finished)."""
    scrape = store.get_json(scrape_key(build_id)) or {}
    ids: list[str] = list(scrape.get("enqueued_ids", []))
    start = int(marker.get("swept", 0))
    page = ids[start:start + max(1, limit)]
    counted = tally.counted(build_id, run_id, page)
    lost = int(marker.get("lost", 0))
    request = None
    for story_id in page:
        if story_id in counted:
            continue
        record = store.get_feedback(build_id, story_id)
        if record is not None and (record.status == "generated" or record.run_id == run_id):
            tally.count(build_id, run_id, story_id, record.status)  # written, but its count was lost in a crash
            continue
        request = request or store.get_model(request_key(build_id), BuildRequest)
        store.put_feedback(_lost_record(build_id, story_id, run_id, request))
        tally.count(build_id, run_id, story_id, "failed")
        lost += 1
    marker.update(swept=start + len(page), lost=lost)
    store.put_json(progress_key(build_id), marker)
    return lost, start + len(page) >= len(ids)


def _lost_record(build_id: str, story_id: str, run_id: str, request: BuildRequest | None) -> GenerationRecord:
    return GenerationRecord(
        build_id=build_id, story_id=story_id, prompt_version=PROMPT_VERSION,
        provider=request.provider if request else "offline", model=default_model(request) if request else "unknown",
        status="failed", run_id=run_id, dead_lettered=True,
        error=ErrorInfo(code="message_lost", message=LOST_MESSAGE),
    )
