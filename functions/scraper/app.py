"""Collect a build's stories, store them in S3 and put one message per story on the queue."""

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.utilities.typing import LambdaContext

from coach import runtime
from coach.adapters.secrets import reddit_credentials
from coach.domain.records import BuildRequest
from coach.errors import CoachError
from coach.observability import count
from coach.pipeline.scrape import NoStoriesError, scrape
from coach.step_errors import NoStories, SourceFailed

logger = Logger()
tracer = Tracer()
metrics = Metrics()


def _source_kwargs(request: BuildRequest) -> dict:
    if request.source.kind == "reddit":
        from coach.adapters.reddit import make_reddit

        return {"reddit": make_reddit(reddit_credentials(runtime.settings().reddit_secret))}
    if request.source.kind == "s3":
        return {"s3_client": runtime.client("s3")}
    return {}


@logger.inject_lambda_context
@tracer.capture_lambda_handler
@metrics.log_metrics
def lambda_handler(event: dict, context: LambdaContext) -> dict:
    request = BuildRequest.model_validate(event.get("request", event))
    try:
        result = scrape(request, store=runtime.store(), queue=runtime.story_queue(), **_source_kwargs(request))
    except NoStoriesError as exc:
        raise NoStories(exc.message) from None
    except CoachError as exc:
        raise SourceFailed(f"{exc.code}: {exc.message}") from None
    count(metrics, "StoriesScraped", result.stories)
    count(metrics, "StoriesEnqueued", result.enqueued)
    for warning in result.warnings:
        logger.warning(warning)
    logger.info("scraped", extra={"build_id": request.build_id, "stories": result.stories,
                                  "enqueued": result.enqueued, "reused": result.reused})
    return result.model_dump(mode="json", exclude={"enqueued_ids"})
