"""Has every enqueued story of the build's current run been generated, failed or skipped?"""

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext

from coach import runtime
from coach.pipeline.progress import check_progress

logger = Logger()


def _dlq_depth() -> int | None:
    url = runtime.settings().story_dlq_url
    if not url:
        return None
    attrs = runtime.client("sqs").get_queue_attributes(
        QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages"])["Attributes"]
    return int(attrs.get("ApproximateNumberOfMessages", 0))


@logger.inject_lambda_context
def lambda_handler(event: dict, context: LambdaContext) -> dict:
    progress = check_progress(event["build_id"], store=runtime.store(), dlq_depth=_dlq_depth())
    logger.info("progress", extra=progress.model_dump())
    return progress.model_dump()
