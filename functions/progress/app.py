"""Has every enqueued story of the build's current run been generated, failed or skipped?

One read of the run's tally and two of the queues' depths, whatever the build's size.
"""

import os

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext

from coach import runtime
from coach.pipeline.progress import DEFAULT_DRAIN_CONFIRM_S, GenerationPace, check_progress

logger = Logger()
WAITING = ("ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible", "ApproximateNumberOfMessagesDelayed")


def _queue_depth(url: str | None, *names: str) -> int | None:
    """The sum of the queue's approximate counts named; None when the queue is not configured."""
    if not url:
        return None
    attrs = runtime.client("sqs").get_queue_attributes(QueueUrl=url, AttributeNames=list(names))["Attributes"]
    return sum(int(attrs.get(name, 0)) for name in names)


def _pace(event: dict) -> GenerationPace:
    """The state machine sends its poll interval; the deployment's rate decides how long a run may take."""
    rate = os.environ.get("COACH_STORIES_PER_MINUTE", "").strip()
    return GenerationPace(
        poll_seconds=float(event.get("poll_seconds") or os.environ.get("COACH_GENERATION_POLL_SECONDS") or 30),
        floor_checks=int(os.environ.get("COACH_GENERATION_MAX_CHECKS", "240") or 240),
        stories_per_minute=float(rate) if rate else None,
    )


@logger.inject_lambda_context
def lambda_handler(event: dict, context: LambdaContext) -> dict:
    cfg = runtime.settings()
    enqueued = event.get("enqueued")
    progress = check_progress(
        event["build_id"],
        store=runtime.store(),
        tally=runtime.run_tally(),
        run_id=event.get("run_id"),
        enqueued=None if enqueued is None else int(enqueued),
        dlq_depth=_queue_depth(cfg.story_dlq_url, "ApproximateNumberOfMessages"),
        queue_depth=_queue_depth(cfg.story_queue_url, *WAITING),
        drain_confirm_s=float(os.environ.get("COACH_QUEUE_DRAIN_CONFIRM_SECONDS", DEFAULT_DRAIN_CONFIRM_S)),
        pace=_pace(event),
    )
    if progress.lost:
        logger.warning("stories lost from the queue recorded as failed", extra={"build_id": progress.build_id,
                                                                              "lost": progress.lost})
    logger.info("progress", extra=progress.model_dump())
    return progress.model_dump()
