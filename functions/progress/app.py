"""Has every enqueued story of the build's current run been generated, failed or skipped?"""

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext

from coach import runtime
from coach.pipeline.progress import check_progress

logger = Logger()


def _queue_depth(url: str | None, *names: str) -> int | None:
    """The sum of the queue's message counts `names` (SQS's approximate attributes); None without a queue."""
    if not url:
        return None
    attrs = runtime.client("sqs").get_queue_attributes(QueueUrl=url, AttributeNames=list(names))["Attributes"]
    return sum(int(attrs.get(name, 0)) for name in names)


@logger.inject_lambda_context
def lambda_handler(event: dict, context: LambdaContext) -> dict:
    cfg = runtime.settings()
    progress = check_progress(
        event["build_id"],
        store=runtime.store(),
        dlq_depth=_queue_depth(cfg.story_dlq_url, "ApproximateNumberOfMessages"),
        queue_depth=_queue_depth(cfg.story_queue_url, "ApproximateNumberOfMessages",
                                 "ApproximateNumberOfMessagesNotVisible", "ApproximateNumberOfMessagesDelayed"),
        drain_confirm_s=cfg.queue_drain_confirm_seconds,
    )
    if progress.lost:
        logger.warning("stories lost from the queue recorded as failed", extra={"build_id": progress.build_id,
                                                                              "lost": progress.lost})
    logger.info("progress", extra=progress.model_dump())
    return progress.model_dump()
