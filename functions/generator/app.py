"""SQS batch -> one critique per story -> S3 feedback record; only failed messages return to the queue."""

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from coach import runtime
from coach.domain.records import GenerationTask
from coach.pipeline.generate import generate

logger = Logger()
tracer = Tracer()
metrics = Metrics()
processor = BatchProcessor(event_type=EventType.SQS)


@tracer.capture_method
def record_handler(record: SQSRecord) -> dict:
    task = GenerationTask.model_validate_json(record.body)
    cfg = runtime.settings()
    result, reused = generate(
        task,
        store=runtime.store(),
        provider_factory=runtime.provider_for_task,
        receive_count=int(record.attributes.approximate_receive_count or 1),
        max_receives=cfg.max_receive_count,
        max_story_tokens=cfg.max_story_tokens,
        max_feedback_tokens=cfg.max_feedback_tokens,
    )
    outcome = "reused" if reused else result.status
    metrics.add_metric(name=f"Generation_{outcome}", unit=MetricUnit.Count, value=1)
    if not reused:
        metrics.add_metric(name="CompletionTokens", unit=MetricUnit.Count, value=result.usage.total_tokens)
    logger.info("story processed", extra={"build_id": task.build_id, "story_id": task.story_id,
                                          "outcome": outcome, "error": result.error and result.error.code})
    return {"story_id": task.story_id, "status": outcome}


@logger.inject_lambda_context
@tracer.capture_lambda_handler
@metrics.log_metrics
def lambda_handler(event: dict, context: LambdaContext) -> dict:
    return process_partial_response(event=event, record_handler=record_handler, processor=processor,
                                    context=context)
