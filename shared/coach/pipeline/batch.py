"""Batch generation stage: submit provider batches, poll them, collect their results as feedback records.

The state machine calls `submit` -> (Wait) -> `poll` until no batch is running -> `collect`, and back to
`submit` while failed or expired requests are due for another batch; then the usual progress check.

Money and integrity:
- A story is put in a batch only when it has no generated record and is in no batch still open (running,
  or finished but not yet collected). A resubmitted batch holds only the requests that failed or expired.
- The state (builds/{id}/batch/state.json) is written before each submission, and a submission is found
  again by its name, so a retried or re-run step resumes the batches already paid for.
- Each result becomes the same GenerationRecord the synchronous path writes, priced at the batch price,
  with what it would have cost synchronously. A story that already has a generated record is never
  overwritten, so a late or duplicated result cannot be paid or counted twice.
- After `max_resubmits` further batches, a story still without a critique goes through the synchronous
  queue (fallback "sync") or is recorded as failed with its last error (fallback "fail"). A batch that
  failed as a whole (refused input) is not resubmitted: its stories fall back at once. Too few stories
  for a provider's minimum batch size go through the synchronous queue from the start.
- With a budget, each batch reserves its worst case at the batch price before submission and settles it
  with what its results cost when collected.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal, NamedTuple

from aws_lambda_powertools import Logger
from pydantic import BaseModel, Field

from coach.adapters.batch_jobs import BatchBackend
from coach.adapters.budget import Reservation, SpendingLedger
from coach.adapters.queue import StoryQueue
from coach.adapters.run_tally import RunTally
from coach.adapters.storage import BuildStore, batch_requests_key, batch_state_key, request_key, scrape_key
from coach.domain.batch import BatchResult, generation_key, split_requests
from coach.domain.budget import estimate_call
from coach.domain.pricing import PriceTable, price_table
from coach.domain.prompt import (
    DEFAULT_MAX_FEEDBACK_TOKENS,
    DEFAULT_MAX_STORY_TOKENS,
    END_MARKER,
    PROMPT_VERSION,
    build_messages,
)
from coach.domain.records import BuildRequest, ErrorInfo, GenerationRecord, GenerationTask, Story, utc_now
from coach.domain.tokens import count_chat_tokens, get_counter
from coach.errors import CoachError
from coach.pipeline.scrape import default_model
from coach.pipeline.validate import judge_and_store

logger = Logger(child=True)
BackendFactory = Callable[[BuildRequest, str], BatchBackend]
ChunkStatus = Literal["pending", "running", "completed", "failed", "expired", "cancelled"]


class BatchChunk(BaseModel):
    """One provider batch: the stories it asks for and where it stands."""

    chunk_id: str
    attempt: int  # 1 for a first submission, 2.. for resubmissions of failed or expired requests
    story_ids: list[str]
    batch_id: str | None = None  # OpenAI batch id or Bedrock job ARN, once submitted
    status: ChunkStatus = "pending"
    provider_status: str = ""
    message: str = ""
    collected: bool = False
    cancel_requested: bool = False
    reservation_key: str | None = None
    reservation_nanos: int = 0
    submitted_at: str | None = None
    finished_at: str | None = None

    @property
    def open(self) -> bool:
        return not self.collected


class BatchState(BaseModel):
    build_id: str
    run_id: str
    provider: str
    model: str
    chunks: list[BatchChunk] = Field(default_factory=list)
    next_chunk: int = 1
    submissions: dict[str, int] = Field(default_factory=dict)  # story -> batches it was put in this run
    fallback: list[str] = Field(default_factory=list)  # stories sent to the synchronous path this run

    def open_story_ids(self) -> set[str]:
        return {s for c in self.chunks if c.open for s in c.story_ids}


class BatchStep(BaseModel):
    """What one step did, and what the state machine should do next."""

    build_id: str
    running: int = 0  # batches still running at the provider
    finished: int = 0  # batches finished and waiting to be collected
    submitted: int = 0
    resumed: int = 0  # open batches found from an earlier attempt or run
    generated: int = 0
    resubmit: int = 0  # requests due for another batch
    fallback: int = 0  # stories sent to the synchronous queue
    failed: int = 0
    skipped_budget: int = 0
    done: bool = False  # no batch open and nothing left to submit


class BatchContext:
    """What every step needs: the build's stored request and scrape, the provider backend, the store."""

    def __init__(self, build_id: str, *, store: BuildStore, backend_for: BackendFactory,
                 queue: StoryQueue | None = None, ledger: SpendingLedger | None = None,
                 prices: PriceTable | None = None,
                 max_story_tokens: int = DEFAULT_MAX_STORY_TOKENS,
                 max_feedback_tokens: int = DEFAULT_MAX_FEEDBACK_TOKENS,
                 tally: RunTally | None = None) -> None:
        self.build_id = build_id
        self.tally = tally
        self.store = store
        self.queue = queue
        self.ledger = ledger
        self.prices = prices or price_table()
        self.max_story_tokens = max_story_tokens
        self.max_feedback_tokens = max_feedback_tokens
        request = store.get_model(request_key(build_id), BuildRequest)
        scrape = store.get_json(scrape_key(build_id))
        if request is None or scrape is None:
            raise CoachError(f"build {build_id} has not been scraped: nothing to batch", code="build_not_found")
        self.request = request
        self.scrape: dict[str, Any] = scrape
        self.model = default_model(request)
        self.backend = backend_for(request, self.model)

    @property
    def run_id(self) -> str:
        return str(self.scrape.get("run_id", ""))

    def key(self, story_id: str) -> str:
        return generation_key(self.build_id, story_id, PROMPT_VERSION, self.request.provider, self.model)

    def load(self) -> BatchState:
        state = self.store.get_model(batch_state_key(self.build_id), BatchState)
        if state is None:
            return BatchState(build_id=self.build_id, run_id=self.run_id, provider=self.request.provider,
                              model=self.model)
        if state.run_id != self.run_id:
            # A re-run: open batches are resumed; this run's counts of submissions and fallbacks start afresh.
            state.run_id, state.submissions, state.fallback = self.run_id, {}, []
        return state

    def save(self, state: BatchState) -> None:
        self.store.put_model(batch_state_key(self.build_id), state)

    def has_critique(self, story_id: str) -> bool:
        record = self.store.get_feedback(self.build_id, story_id)
        return bool(record and record.status == "generated" and record.prompt_version == PROMPT_VERSION)

    def record(self, story_id: str, status: Literal["failed", "skipped_budget"], code: str,
               message: str) -> GenerationRecord:
        record = GenerationRecord(
            build_id=self.build_id, story_id=story_id, prompt_version=PROMPT_VERSION,
            provider=self.request.provider, model=self.model, status=status, run_id=self.run_id,
            error=ErrorInfo(code=code, message=message[:500]), generation="batch")
        self.store.put_feedback(record)
        self.count(story_id, status)
        return record

    def count(self, story_id: str, outcome: str) -> None:
        """Counts a final record in the run's tally, which the progress check reads."""
        if self.tally is not None:
            self.tally.count(self.build_id, self.run_id, story_id, outcome)

    def task(self, story_id: str) -> GenerationTask:
        return GenerationTask(
            build_id=self.build_id, story_id=story_id, prompt_version=PROMPT_VERSION,
            provider=self.request.provider, model=self.model, budget_usd=self.request.budget_usd,
            run_id=self.run_id, budget_spent_usd=float(self.scrape.get("spent_before_usd") or 0.0))


def _step(ctx: BatchContext, state: BatchState) -> BatchStep:
    running = sum(1 for c in state.chunks if c.open and c.status in ("pending", "running"))
    finished = sum(1 for c in state.chunks if c.open and c.status not in ("pending", "running"))
    return BatchStep(build_id=ctx.build_id, running=running, finished=finished)


def _fall_back(ctx: BatchContext, state: BatchState, story_ids: list[str], step: BatchStep, *, why: str,
               errors: dict[str, BatchResult] | None = None, always_sync: bool = False) -> None:
    """Stories the batches will not critique: to the synchronous queue, or failed with their last error."""
    fresh = [s for s in story_ids if s not in state.fallback]
    if not fresh:
        return
    if always_sync or ctx.request.batch.fallback == "sync":
        if ctx.queue is None:
            raise CoachError("the synchronous fallback needs the story queue", code="missing_configuration")
        state.fallback.extend(fresh)
        ctx.save(state)  # before enqueueing: a retried step must not enqueue them again
        ctx.queue.enqueue([ctx.task(s) for s in fresh])
        step.fallback += len(fresh)
        logger.info("stories sent to the synchronous path", extra={"build_id": ctx.build_id, "stories": len(fresh),
                                                                    "why": why})
        return
    for story_id in fresh:
        last = (errors or {}).get(story_id)
        code = last.error_code if last else "batch_gave_up"
        ctx.record(story_id, "failed", code, f"{why}" + (f"; last error: {last.error_message}" if last else ""))
        state.fallback.append(story_id)
        step.failed += 1


class _Request(NamedTuple):
    """One story's line of a batch's request file, and the most it can cost (in nanodollars)."""

    story_id: str
    line: str
    worst_nanos: int


def _resend_pending(ctx: BatchContext, state: BatchState, step: BatchStep) -> None:
    """Send the chunks written but not confirmed submitted (a crash, a retried step)."""
    for chunk in state.chunks:
        if chunk.open and chunk.status == "pending":
            _send(ctx, state, chunk)
            step.submitted += 1


def _request(ctx: BatchContext, story_id: str, story: Story, *, estimated_tokens: bool) -> _Request:
    prompt = build_messages(story.text, story.title, layout="full", max_story_tokens=ctx.max_story_tokens)
    line = ctx.backend.request_line(ctx.key(story_id), prompt.messages, max_tokens=ctx.max_feedback_tokens,
                                    stop=[END_MARKER])
    worst = estimate_call(ctx.model, count_chat_tokens(prompt.messages), ctx.max_feedback_tokens, ctx.prices,
                          estimated_tokens=estimated_tokens, batch=True)
    return _Request(story_id, line, worst.nanos)


def _new_requests(ctx: BatchContext, state: BatchState, step: BatchStep) -> list[_Request]:
    """A request for every story still without a critique and in no open batch; a story not stored fails."""
    in_batch = state.open_story_ids()
    wanted = [s for s in ctx.scrape.get("enqueued_ids", [])
              if s not in in_batch and s not in state.fallback and not ctx.has_critique(s)]
    requests: list[_Request] = []
    counter = get_counter()
    for story_id in wanted:
        story = ctx.store.get_story(ctx.build_id, story_id)
        if story is None:
            ctx.record(story_id, "failed", "story_missing", f"no stored story {story_id} in build {ctx.build_id}")
            step.failed += 1
            continue
        requests.append(_request(ctx, story_id, story, estimated_tokens=counter.estimated))
    return requests


def _within_budget(ctx: BatchContext, chunk: BatchChunk, rows: list[_Request], step: BatchStep) -> list[_Request]:
    """For a chunk whose whole worst case the budget cannot hold: keep as many stories as the budget's
    remainder holds at their worst case, reserved for; record the rest as skipped."""
    fits = _fitting(ctx, [r.worst_nanos for r in rows])
    if fits >= max(1, ctx.backend.limits.min_requests) and _reserve(
            ctx, chunk, sum(r.worst_nanos for r in rows[:fits])):
        rows = rows[:fits]
    skipped = chunk.story_ids[len(rows):] if chunk.reservation_key else chunk.story_ids
    chunk.story_ids = [r.story_id for r in rows]
    for story_id in skipped:
        ctx.record(story_id, "skipped_budget", "budget_exceeded",
                   f"budget ${ctx.request.budget_usd:.4f} cannot hold this story's batch request at its "
                   f"worst-case cost (prompt plus {ctx.max_feedback_tokens} completion tokens)")
        step.skipped_budget += 1
    return rows


def _submit_chunk(ctx: BatchContext, state: BatchState, step: BatchStep, rows: list[_Request]) -> None:
    """One new batch of these requests, reserved for (or cut down to what the budget holds), then sent."""
    chunk = BatchChunk(chunk_id=f"b{state.next_chunk:04d}",
                       attempt=1 + max(state.submissions.get(r.story_id, 0) for r in rows),
                       story_ids=[r.story_id for r in rows])
    if not _reserve(ctx, chunk, sum(r.worst_nanos for r in rows)):
        rows = _within_budget(ctx, chunk, rows, step)
        if chunk.reservation_key is None:
            return
    state.next_chunk += 1
    for story_id in chunk.story_ids:
        state.submissions[story_id] = state.submissions.get(story_id, 0) + 1
    state.chunks.append(chunk)
    ctx.store.put_text(_requests_copy_key(ctx, chunk), "".join(r.line + "\n" for r in rows), "application/x-ndjson")
    ctx.save(state)  # the chunk is known before it is paid for
    _send(ctx, state, chunk)
    step.submitted += 1


def submit(ctx: BatchContext) -> BatchStep:
    """Resume the open batches, or put every story still without a critique into new ones."""
    state = ctx.load()
    step = _step(ctx, state)
    step.resumed = sum(1 for c in state.chunks if c.open and c.batch_id)
    _resend_pending(ctx, state, step)
    requests = _new_requests(ctx, state, step)
    batches, left_over = split_requests([len(r.line.encode("utf-8")) + 1 for r in requests], ctx.backend.limits)
    if left_over:
        _fall_back(ctx, state, [requests[i].story_id for i in left_over], step, always_sync=True,
                   why=f"fewer than the {ctx.backend.limits.min_requests} requests a {ctx.backend.provider} "
                       "batch needs")
    for indexes in batches:
        _submit_chunk(ctx, state, step, [requests[i] for i in indexes])
    final = _step(ctx, state)
    step.running, step.finished = final.running, final.finished
    step.done = final.running == 0 and final.finished == 0
    return step


def _requests_copy_key(ctx: BatchContext, chunk: BatchChunk) -> str:
    return batch_requests_key(ctx.build_id, chunk.chunk_id)


def _send(ctx: BatchContext, state: BatchState, chunk: BatchChunk) -> None:
    requests = ctx.store.get_text(_requests_copy_key(ctx, chunk)) or ""
    chunk.batch_id = ctx.backend.submit(ctx.build_id, chunk.chunk_id, requests)
    chunk.status, chunk.submitted_at = "running", utc_now()
    ctx.save(state)


def _reserve(ctx: BatchContext, chunk: BatchChunk, nanos: int) -> bool:
    if ctx.request.budget_usd is None or ctx.ledger is None or nanos == 0:
        return True
    allowance = ctx.request.budget_usd - float(ctx.scrape.get("spent_before_usd") or 0.0)
    reservation = ctx.ledger.reserve(ctx.build_id, ctx.run_id, amount_usd=nanos / 1e9, allowance_usd=allowance)
    if reservation is None:
        return False
    chunk.reservation_key, chunk.reservation_nanos = reservation.key, reservation.nanos
    return True


def _fitting(ctx: BatchContext, nanos: list[int]) -> int:
    """How many of these requests, in order, the budget's remainder holds at their worst case."""
    if ctx.ledger is None or ctx.request.budget_usd is None:
        return len(nanos)
    allowance = ctx.request.budget_usd - float(ctx.scrape.get("spent_before_usd") or 0.0)
    left = allowance * 1e9 - ctx.ledger.state(ctx.build_id, ctx.run_id).committed_usd * 1e9
    count = 0
    for amount in nanos:
        if amount > left:
            break
        left -= amount
        count += 1
    return count


def poll(ctx: BatchContext) -> BatchStep:
    """Read the status of every running batch; one call per batch, no waiting."""
    state = ctx.load()
    for chunk in state.chunks:
        if chunk.open and chunk.status == "running" and chunk.batch_id:
            status = ctx.backend.status(chunk.batch_id)
            chunk.provider_status, chunk.message = status.provider_status, status.message
            if status.state != "running":
                chunk.status, chunk.finished_at = status.state, utc_now()
    ctx.save(state)
    step = _step(ctx, state)
    step.done = step.running == 0 and step.finished == 0
    return step


def collect(ctx: BatchContext) -> BatchStep:
    """Turn finished batches into feedback records; decide what is resubmitted and what falls back."""
    state = ctx.load()
    step = BatchStep(build_id=ctx.build_id)
    give_up: list[str] = []
    whole_failures: list[str] = []
    last_errors: dict[str, BatchResult] = {}
    for chunk in state.chunks:
        if not chunk.open or chunk.status in ("pending", "running"):
            continue
        results = {} if chunk.batch_id is None else {
            r.key: r for r in ctx.backend.results(ctx.build_id, chunk.chunk_id, chunk.batch_id)}
        spent = 0.0
        for story_id in chunk.story_ids:
            result = results.get(ctx.backend.result_key(ctx.key(story_id)))
            if result is not None and result.ok:
                spent += _write(ctx, chunk, story_id, result, step)
                continue
            if result is not None:
                last_errors[story_id] = result
            if ctx.has_critique(story_id):
                continue
            if chunk.status == "failed":
                whole_failures.append(story_id)
            elif state.submissions.get(story_id, chunk.attempt) > ctx.request.batch.max_resubmits:
                give_up.append(story_id)
            else:
                step.resubmit += 1
        _settle(ctx, chunk, spent)
        chunk.collected = True
        ctx.save(state)
    if whole_failures:
        _fall_back(ctx, state, whole_failures, step, why="its batch failed as a whole", errors=last_errors)
    if give_up:
        _fall_back(ctx, state, give_up, step, errors=last_errors,
                   why=f"still without a critique after {ctx.request.batch.max_resubmits + 1} batches")
    ctx.save(state)
    final = _step(ctx, state)
    step.running, step.finished = final.running, final.finished
    step.done = step.resubmit == 0 and final.running == 0 and final.finished == 0
    return step


def _write(ctx: BatchContext, chunk: BatchChunk, story_id: str, result: BatchResult, step: BatchStep) -> float:
    """The record of one batch critique; returns what it cost (0 when the story already had one)."""
    if ctx.has_critique(story_id):
        return 0.0
    story = ctx.store.get_story(ctx.build_id, story_id)
    truncated = False
    if story is not None:
        truncated = build_messages(story.text, story.title, layout="full",
                                   max_story_tokens=ctx.max_story_tokens).truncated
    model = result.model or ctx.model
    record = GenerationRecord(
        build_id=ctx.build_id, story_id=story_id, prompt_version=PROMPT_VERSION, provider=ctx.request.provider,
        model=model, status="generated", feedback=result.text.replace(END_MARKER, "").strip(),
        finish_reason=result.finish_reason, truncated=truncated, usage=result.usage,
        cost_usd=ctx.prices.cost_usd(model, result.usage, batch=True), run_id=ctx.run_id, attempts=chunk.attempt,
        generation="batch", batch_id=chunk.batch_id, sync_cost_usd=ctx.prices.cost_usd(model, result.usage),
    )
    ctx.store.put_feedback(record)
    ctx.count(story_id, "generated")
    try:
        judge_and_store(ctx.store, record, story)
    except Exception as exc:  # the shard stage judges it again; the paid critique is already kept
        logger.warning("could not judge a batch critique", extra={"story_id": story_id, "error": str(exc)})
    step.generated += 1
    return record.cost_usd


def _settle(ctx: BatchContext, chunk: BatchChunk, spent: float) -> None:
    if ctx.ledger is None or chunk.reservation_key is None:
        return
    try:
        ctx.ledger.settle(Reservation(key=chunk.reservation_key, nanos=chunk.reservation_nanos), spent)
    except Exception as exc:  # the reservation stays counted, so the budget errs on the safe side
        logger.warning("could not settle the budget reservation of a batch",
                       extra={"build_id": ctx.build_id, "chunk_id": chunk.chunk_id, "error": str(exc)})
    chunk.reservation_key = None


def cancel(ctx: BatchContext) -> BatchStep:
    """Ask the provider to stop every batch still running; what they finished is collected on a re-run."""
    state = ctx.load()
    step = _step(ctx, state)
    for chunk in state.chunks:
        if chunk.open and chunk.status == "running" and chunk.batch_id and not chunk.cancel_requested:
            ctx.backend.cancel(chunk.batch_id)
            chunk.cancel_requested = True
            ctx.save(state)
    return step
