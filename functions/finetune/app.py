"""Start, follow and publish a fine-tuning job.

Events (the state machine's task inputs):
  {"action": "start", "request": BuildRequest}                 -> {"status", "job_id", "reason", ...}
  {"action": "status", "job_id": ..., "build_id": optional}    -> {"job_id", "status", "fine_tuned_model",
                                                                    "trained_tokens", "error", ...}
  {"action": "publish", "build_id": ..., "job": <status result>} -> {"parameter", "model", ...}
`status` is one of validating_files, queued, running, succeeded, failed, cancelled; the state machine
publishes on succeeded, fails on failed/cancelled (with `error.code` and `error.message`), else waits.
"""

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext

from coach import runtime
from coach.domain.records import BuildRequest
from coach.errors import InputError
from coach.pipeline import finetune

logger = Logger()


@logger.inject_lambda_context
def lambda_handler(event: dict, context: LambdaContext) -> dict:
    action = event.get("action")
    if action == "start":
        request = BuildRequest.model_validate(event["request"])
        result = finetune.start(request, store=runtime.store(), client_factory=runtime.openai_client)
        logger.info("fine-tune start", extra=result.model_dump())
        return result.model_dump()
    if action == "status":
        status = finetune.status(event["job_id"], client_factory=runtime.openai_client, store=runtime.store(),
                                 build_id=event.get("build_id"))
        logger.info("fine-tune status", extra={"job_id": status.job_id, "status": status.status,
                                               "openai_status": status.openai_status})
        return status.model_dump(mode="json")
    if action == "publish":
        job = finetune.JobStatus.model_validate(event["job"])
        cfg = runtime.settings()
        cfg.require("model_parameter")
        published = finetune.publish(event["build_id"], job, ssm_client=runtime.client("ssm"),
                                     parameter=cfg.model_parameter or "", store=runtime.store())
        logger.info("fine-tune published", extra=published)
        return published
    raise InputError(f"unknown action {action!r}: use start, status or publish", code="unknown_action")
