"""Has every enqueued story of the build's current run been generated, failed or skipped?

One read of the run's tally and two of the queues' depths, whatever the build's size.
"""

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext

from coach import runtime
from coach.adapters.queue import WAITING, queue_depth
from coach.pipeline.progress import GenerationPace, check_progress
from coach.settings import Settings

logger = Logger()


def _queue_depth(url: str | None, *names: str) -> int | None:
    """None without a queue: the lost-message check is then skipped."""
    return queue_depth(runtime.client("sqs"), url, names) if url else None


def _pace(event: dict, cfg: Settings) -> GenerationPace:
    """The state machine sends its poll interval; the deployment's rate decides how long a run may take."""
    return GenerationPace(poll_seconds=float(event.get("poll_seconds") or cfg.generation_poll_seconds),
                          floor_checks=cfg.generation_max_checks, stories_per_minute=cfg.stories_per_minute)


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
        drain_confirm_s=cfg.queue_drain_confirm_seconds,
        pace=_pace(event, cfg),
    )
    if progress.lost:
        logger.warning("stories lost from the queue recorded as failed", extra={"build_id": progress.build_id,
                                                                              "lost": progress.lost})
    logger.info("progress", extra=progress.model_dump())
    return progress.model_dump()
