"""Judge every generated critique of a build; store a verdict (cleaned text, reasons, evidence) for each."""

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from coach import runtime
from coach.pipeline.validate import validate_build

logger = Logger()
tracer = Tracer()
metrics = Metrics()


@logger.inject_lambda_context
@tracer.capture_lambda_handler
@metrics.log_metrics
def lambda_handler(event: dict, context: LambdaContext) -> dict:
    summary = validate_build(event["build_id"], store=runtime.store())
    metrics.add_metric(name="CritiquesAccepted", unit=MetricUnit.Count, value=summary.accepted)
    for reason, count in summary.rejected_by_reason.items():
        metrics.add_metric(name=f"Rejected_{reason}", unit=MetricUnit.Count, value=count)
    logger.info("validated", extra=summary.model_dump())
    return summary.model_dump()
