"""SQS batch -> one critique per story -> S3 feedback record; only failed messages return to the queue.

A story is generated at most once per (build_id, story_id, prompt_version, provider, model): Powertools
idempotency on DynamoDB guards each record, so a redelivered message, a retried batch or a re-run build reuses
the stored feedback, and a duplicate delivered while the first is still running is reported as failed (it returns
later and finds the result).
"""

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from coach import runtime
from coach.adapters.idempotency import GenerationGuard, GenerationInProgressError
from coach.domain.records import GenerationTask
from coach.domain.redelivery import redelivery_delay
from coach.errors import UpstreamError
from coach.observability import count
from coach.pipeline.generate import generate_once

logger = Logger()
tracer = Tracer()
metrics = Metrics()


def _retry_sooner(record: SQSRecord, retry_after: float | None) -> None:
    receive_count = int(record.attributes.approximate_receive_count or 1)
    try:
        runtime.story_queue().retry_later(record.receipt_handle, redelivery_delay(receive_count, retry_after))
    except Exception as exc:  # the queue's own visibility timeout still brings it back
        logger.warning("could not shorten the message's visibility", extra={"error": type(exc).__name__})


def _record_handler(record: SQSRecord, guard: GenerationGuard) -> dict:
    task = GenerationTask.model_validate_json(record.body)
    cfg = runtime.settings()
    try:
        outcome = generate_once(
            task,
            guard=guard,
            store=runtime.store(),
            tally=runtime.run_tally(),
            provider_factory=runtime.provider_for_task,
            receive_count=int(record.attributes.approximate_receive_count or 1),
            max_receives=cfg.max_receive_count,
            max_story_tokens=cfg.max_story_tokens,
            max_feedback_tokens=cfg.max_feedback_tokens,
            ledger=runtime.ledger() if task.budget_usd is not None else None,
        )
    except GenerationInProgressError:
        logger.info("story already in progress", extra={"build_id": task.build_id, "story_id": task.story_id})
        _retry_sooner(record, None)
        raise
    except UpstreamError as exc:
        _retry_sooner(record, exc.retry_after)
        raise
    result = outcome.record
    count(metrics, f"Generation_{outcome.label}")
    if not outcome.reused and result.status == "generated":
        count(metrics, "CompletionTokens", result.usage.total_tokens)
        count(metrics, "CompletionCostMicroUSD", round(result.cost_usd * 1_000_000))
    logger.info("story processed", extra={
        "build_id": task.build_id, "story_id": task.story_id, "outcome": outcome.label,
        "error": result.error and result.error.code})
    return {"story_id": task.story_id, "status": outcome.label}


@logger.inject_lambda_context
@tracer.capture_lambda_handler
@metrics.log_metrics
def lambda_handler(event: dict, context: LambdaContext) -> dict:
    guard = runtime.guard()
    guard.register_lambda_context(context)
    # One processor per invocation: the local poller runs invocations on threads of one process. A batch
    # whose every record failed still answers with the list, so SQS retries exactly those messages.
    processor = BatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)
    return process_partial_response(event=event, record_handler=lambda record: _record_handler(record, guard),
                                    processor=processor, context=context)
