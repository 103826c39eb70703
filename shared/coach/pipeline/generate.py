"""Generate stage: one story's critique from the completion provider, written as a GenerationRecord.

A failure is never written as feedback: a permanent upstream error becomes a `failed` record with its
reason; a transient one is raised so the message returns to the queue, and on its last allowed receive
a `failed` record with the cause (marked dead-lettered) is written first, so the build can account for it.

Money: a story that already has feedback is never sent again (the S3 record is checked first, and
`generate_once` adds Powertools idempotency so concurrent or repeated deliveries share one call). With a
budget, each call first reserves its worst-case cost from the run's ledger; a story that no longer fits is
recorded as `skipped_budget` without calling the API.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from aws_lambda_powertools import Logger
from pydantic import BaseModel

from coach.adapters.budget import Reservation, SpendingLedger
from coach.adapters.completion import Completion
from coach.adapters.idempotency import Guard, NotCached
from coach.adapters.run_tally import RunTally
from coach.adapters.storage import BuildStore
from coach.domain.budget import estimate_call
from coach.domain.pricing import PriceTable, price_table
from coach.domain.prompt import DEFAULT_MAX_FEEDBACK_TOKENS, DEFAULT_MAX_STORY_TOKENS, END_MARKER, build_messages
from coach.domain.records import ErrorInfo, GenerationRecord, GenerationStatus, GenerationTask
from coach.domain.tokens import count_chat_tokens, get_counter
from coach.errors import CoachError, PermanentUpstreamError, UpstreamError
from coach.pipeline.validate import judge_and_store

ProviderFactory = Callable[[GenerationTask], Any]
logger = Logger(child=True)


class GenerationOutcome(BaseModel):
    record: GenerationRecord
    reused: bool = False  # the story already had feedback: nothing was called or paid
    replayed: bool = False  # the idempotency store answered for an earlier delivery

    @property
    def label(self) -> str:
        return "reused" if self.reused else self.record.status


def _unsuccessful(task: GenerationTask, status: GenerationStatus, code: str, message: str,
                  **extra: Any) -> GenerationRecord:
    return GenerationRecord(
        build_id=task.build_id, story_id=task.story_id, prompt_version=task.prompt_version,
        provider=task.provider, model=task.model, status=status, run_id=task.run_id,
        error=ErrorInfo(code=code, message=message[:500]), **extra,
    )


def _failed(task: GenerationTask, code: str, message: str, **extra: Any) -> GenerationRecord:
    return _unsuccessful(task, "failed", code, message, **extra)


def _reserve(task: GenerationTask, messages: list[dict[str, str]], *, ledger: SpendingLedger | None,
             prices: PriceTable, max_feedback_tokens: int) -> Reservation | GenerationRecord | None:
    """A reservation for this call, None when no budget applies, or the record of a story that cannot fit."""
    if task.budget_usd is None or ledger is None:
        return None
    counter = get_counter()
    call = estimate_call(task.model, count_chat_tokens(messages), max_feedback_tokens, prices,
                         estimated_tokens=counter.estimated)
    if not call.priced:
        return _failed(task, "unpriced_model", f"the build has a budget but model '{task.model}' has no "
                                               "price: add it to COACH_PRICE_TABLE")
    if call.nanos == 0:
        return None
    allowance = task.budget_usd - task.budget_spent_usd
    reservation = ledger.reserve(task.build_id, task.run_id, amount_usd=call.usd, allowance_usd=allowance)
    if reservation is not None:
        return reservation
    state = ledger.state(task.build_id, task.run_id)
    return _unsuccessful(
        task, "skipped_budget", "budget_exceeded",
        f"budget ${task.budget_usd:.4f} reached: ${task.budget_spent_usd + state.spent_usd:.4f} spent and "
        f"${state.reserved_usd:.4f} reserved by calls in flight; this story needs up to ${call.usd:.4f}",
    )


def _keep(store: BuildStore, record: GenerationRecord) -> GenerationRecord:
    store.put_feedback(record)
    return record


def _critique_text(provider: Any, messages: list[dict[str, str]], max_feedback_tokens: int) -> tuple[Completion, str]:
    """The completion and its critique without the stop marker; an empty critique is worth another try."""
    completion = provider.complete(messages, max_tokens=max_feedback_tokens, stop=[END_MARKER])
    text = completion.text.replace(END_MARKER, "").strip()
    if not text:
        raise UpstreamError("the completion API returned an empty critique", code="upstream_empty",
                            retryable=True)
    return completion, text


def _dead_lettered(task: GenerationTask, exc: UpstreamError, *, truncated: bool, attempts: int) -> GenerationRecord:
    """The failure a message's last delivery leaves before the DLQ, where the build can count it."""
    return _failed(task, exc.code, f"gave up after {attempts} deliveries: {exc.message}", truncated=truncated,
                   attempts=attempts, dead_lettered=True)


def _generated(task: GenerationTask, completion: Completion, text: str, *, truncated: bool, prices: PriceTable,
               started: float) -> GenerationRecord:
    model = completion.model or task.model
    return GenerationRecord(
        build_id=task.build_id, story_id=task.story_id, prompt_version=task.prompt_version,
        provider=task.provider, model=model, status="generated", feedback=text,
        finish_reason=completion.finish_reason, truncated=truncated, usage=completion.usage,
        cost_usd=prices.cost_usd(model, completion.usage), run_id=task.run_id,
        attempts=completion.attempts, latency_ms=int((time.monotonic() - started) * 1000),
        requested_model=task.model,
    )


def generate(
    task: GenerationTask,
    *,
    store: BuildStore,
    provider_factory: ProviderFactory,
    receive_count: int = 1,
    max_receives: int = 3,
    max_story_tokens: int = DEFAULT_MAX_STORY_TOKENS,
    max_feedback_tokens: int = DEFAULT_MAX_FEEDBACK_TOKENS,
    ledger: SpendingLedger | None = None,
    prices: PriceTable | None = None,
) -> tuple[GenerationRecord, bool]:
    """Returns (record, reused). Raises UpstreamError when the message should be retried."""
    existing = store.get_feedback(task.build_id, task.story_id)
    if existing and existing.written_for(task.provider, task.model, task.prompt_version):
        return existing, True
    story = store.get_story(task.build_id, task.story_id)
    if story is None:
        missing = _failed(task, "story_missing", f"no stored story {task.story_id} in build {task.build_id}")
        return _keep(store, missing), False

    prompt = build_messages(story.text, story.title, layout="full", max_story_tokens=max_story_tokens)
    prices = prices or price_table()
    reserved = _reserve(task, prompt.messages, ledger=ledger, prices=prices,
                        max_feedback_tokens=max_feedback_tokens)
    if isinstance(reserved, GenerationRecord):
        return _keep(store, reserved), False
    started = time.monotonic()
    try:
        completion, text = _critique_text(provider_factory(task), prompt.messages, max_feedback_tokens)
    except PermanentUpstreamError as exc:
        _release(ledger, reserved)
        return _keep(store, _failed(task, exc.code, exc.message, truncated=prompt.truncated)), False
    except UpstreamError as exc:
        _release(ledger, reserved)
        if receive_count >= max_receives:
            _keep(store, _dead_lettered(task, exc, truncated=prompt.truncated, attempts=receive_count))
        raise
    except CoachError as exc:  # configuration problems fail the story with a readable reason
        _release(ledger, reserved)
        return _keep(store, _failed(task, exc.code, exc.message)), False
    except BaseException:
        _release(ledger, reserved)
        raise

    record = _generated(task, completion, text, truncated=prompt.truncated, prices=prices, started=started)
    store.put_feedback(record)  # first: a paid critique must be kept even if the ledger update fails
    _judge(store, record, story)
    _settle(ledger, reserved, task.story_id, record.cost_usd)
    return record, False


def _settle(ledger: SpendingLedger | None, reserved: Reservation | None, story_id: str, cost_usd: float) -> None:
    if ledger is None or not isinstance(reserved, Reservation):
        return
    try:
        ledger.settle(reserved, cost_usd)
    except Exception as exc:  # the reservation stays counted, so the budget errs on the safe side
        logger.warning("could not settle a budget reservation", extra={"story_id": story_id, "error": str(exc)})


def _judge(store: BuildStore, record: GenerationRecord, story: Any) -> None:
    """Judge the critique while it is in hand, so the shard stage only reads the verdict."""
    try:
        judge_and_store(store, record, story)
    except Exception as exc:  # the shard stage judges it again; the paid critique is already kept
        logger.warning("could not judge a critique", extra={"story_id": record.story_id, "error": str(exc)})


def _release(ledger: SpendingLedger | None, reserved: Reservation | GenerationRecord | None) -> None:
    if ledger is None or not isinstance(reserved, Reservation):
        return
    try:
        ledger.release(reserved)
    except Exception as exc:  # an unreleased reservation only makes the budget stricter
        logger.warning("could not release a budget reservation", extra={"error": str(exc)})


def generate_once(task: GenerationTask, *, guard: Guard, store: BuildStore, tally: RunTally | None = None,
                  **options: Any) -> GenerationOutcome:
    """`generate` behind the idempotency guard keyed by (build_id, story_id, prompt_version, provider, model).

    Only generated feedback is remembered; failures and budget skips are not, so a later delivery or a
    re-run tries those stories again. Raises GenerationInProgressError while another delivery works on it.
    Every final record (and the failure written on a message's last delivery) is counted in the run's tally.
    """
    try:
        outcome = _generate_guarded(task, guard=guard, store=store, **options)
    except UpstreamError:
        if tally is not None and options.get("receive_count", 1) >= options.get("max_receives", 3):
            tally.count(task.build_id, task.run_id, task.story_id, "failed")  # its failed record is written
        raise
    if tally is not None:
        tally.count(task.build_id, task.run_id, task.story_id, outcome.record.status)
    return outcome


def _generate_guarded(task: GenerationTask, *, guard: Guard, store: BuildStore,
                      **options: Any) -> GenerationOutcome:

    def work() -> dict[str, Any]:
        record, reused = generate(task, store=store, **options)
        result = {"record": record.model_dump(mode="json"), "reused": reused}
        if record.status != "generated":
            raise NotCached(result)
        return result

    result, replayed = guard.run(task.model_dump(mode="json"), work)
    record = GenerationRecord.model_validate(result["record"])
    if replayed:
        # The S3 record is the source of truth; put it back if it has gone missing since.
        current = store.get_feedback(task.build_id, task.story_id)
        if current is None or current.status != "generated":
            store.put_feedback(record)
        return GenerationOutcome(record=record, reused=True, replayed=True)
    return GenerationOutcome(record=record, reused=bool(result.get("reused")))
