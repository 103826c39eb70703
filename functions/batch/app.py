"""Batch generation steps of the dataset build: submit, poll, collect, cancel.

Events:
  {"action": "submit" | "poll" | "collect" | "cancel", "build_id"}  -> BatchStep (running, finished,
        resubmit, fallback, done, ...): the state machine waits while `running`, collects when nothing runs,
        submits again while `resubmit`, then checks progress as for a synchronous build.
  An EventBridge "Step Functions Execution Status Change" event (ABORTED, TIMED_OUT, FAILED) of the build
        state machine -> cancel: a stopped execution runs no Catch, so this is how its batches are stopped.
"""

import json

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext

from coach import runtime
from coach.errors import CoachError, UpstreamError
from coach.pipeline import batch
from coach.step_errors import BatchFailed, BatchProviderBusy

logger = Logger()
ACTIONS = {"submit": batch.submit, "poll": batch.poll, "collect": batch.collect, "cancel": batch.cancel}


def _build_id_of(event: dict) -> tuple[str, str]:
    """(action, build_id) of a task input or of an execution status change."""
    if event.get("detail-type") == "Step Functions Execution Status Change":
        execution_input = json.loads((event.get("detail") or {}).get("input") or "{}")
        return "cancel", str(execution_input.get("build_id", ""))
    return str(event.get("action", "")), str(event.get("build_id", ""))


@logger.inject_lambda_context
def lambda_handler(event: dict, context: LambdaContext) -> dict:
    action, build_id = _build_id_of(event)
    if action not in ACTIONS or not build_id:
        raise BatchFailed(f"bad_batch_event: expected an action of {sorted(ACTIONS)} and a build_id")
    cfg = runtime.settings()
    store = runtime.store()
    try:
        ctx = batch.BatchContext(
            build_id, store=store, backend_for=runtime.batch_backend,
            queue=runtime.story_queue() if action == "collect" or action == "submit" else None,
            ledger=None, max_story_tokens=cfg.max_story_tokens, max_feedback_tokens=cfg.max_feedback_tokens,
            tally=runtime.run_tally() if action in ("submit", "collect") else None)
        if ctx.request.budget_usd is not None and action in ("submit", "collect"):
            ctx.ledger = runtime.ledger()
        step = ACTIONS[action](ctx)
    except UpstreamError as exc:
        if exc.retryable:  # the state machine retries this step with backoff
            raise BatchProviderBusy(f"{exc.code}: {exc.message}") from None
        raise BatchFailed(f"{exc.code}: {exc.message}") from None
    except CoachError as exc:
        if action == "cancel" and exc.code == "build_not_found":
            logger.info("nothing to cancel", extra={"build_id": build_id})
            return {"build_id": build_id, "done": True}
        raise BatchFailed(f"{exc.code}: {exc.message}") from None
    logger.info(f"batch {action}", extra=step.model_dump())
    return step.model_dump()
