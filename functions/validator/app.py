"""Judge every generated critique of a build; store a verdict (cleaned text, reasons, evidence) for each."""

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.utilities.typing import LambdaContext

from coach import runtime
from coach.observability import count
from coach.pipeline.validate import validate_build

logger = Logger()
tracer = Tracer()
metrics = Metrics()


@logger.inject_lambda_context
@tracer.capture_lambda_handler
@metrics.log_metrics
def lambda_handler(event: dict, context: LambdaContext) -> dict:
    summary = validate_build(event["build_id"], store=runtime.store())
    count(metrics, "CritiquesAccepted", summary.accepted)
    for reason, rejected in summary.rejected_by_reason.items():
        count(metrics, f"Rejected_{reason}", rejected)
    logger.info("validated", extra=summary.model_dump())
    return summary.model_dump()
