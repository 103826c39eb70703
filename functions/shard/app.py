"""A Distributed Map child: one batch of a build's story keys -> verdicts and one dataset shard in S3.

The event is what Step Functions sends a child with an S3 ItemReader and an ItemBatcher:
{"Items": [{"Key": "builds/{id}/stories/{story}.json", "Size": ..., ...}, ...], "BatchInput": {"build_id", "run_id"}}.
A failure raises, so the map retries the batch and, past its tolerance, fails the build naming the batch.
"""

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.utilities.typing import LambdaContext

from coach import runtime
from coach.errors import InputError
from coach.observability import count
from coach.pipeline.shard import build_shard, story_ids_of

logger = Logger()
tracer = Tracer()
metrics = Metrics()


@logger.inject_lambda_context
@tracer.capture_lambda_handler
@metrics.log_metrics
def lambda_handler(event: dict, context: LambdaContext) -> dict:
    batch = event.get("BatchInput") or {}
    build_id, run_id = str(batch.get("build_id", "")), str(batch.get("run_id", ""))
    if not build_id or not run_id or not isinstance(event.get("Items"), list):
        raise InputError("bad_shard_event: expected Items and BatchInput.build_id / run_id", code="bad_shard_event")
    cfg = runtime.settings()
    summary = build_shard(build_id, run_id, story_ids_of(event["Items"], build_id), store=runtime.store(),
                          max_story_tokens=cfg.max_story_tokens)
    count(metrics, "CritiquesAccepted", summary.counts.accepted)
    count(metrics, "CritiquesRejected", summary.counts.rejected)
    count(metrics, "VerdictsJudgedAgain", summary.judged_now)
    for reason, n in summary.validation.get("by_reason", {}).items():
        count(metrics, f"Rejected_{reason}", n)
    logger.info("shard written", extra={"build_id": build_id, **summary.output()})
    return summary.output()
