"""Start, follow and publish a fine-tuning job (actions: start, status, publish)."""

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext

from coach import runtime
from coach.domain.records import BuildRequest
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
        status = finetune.status(event["job_id"], client_factory=runtime.openai_client)
        logger.info("fine-tune status", extra={"job_id": status.job_id, "status": status.status})
        return status.model_dump()
    if action == "publish":
        job = finetune.JobStatus.model_validate(event["job"])
        cfg = runtime.settings()
        cfg.require("model_parameter")
        return finetune.publish(event["build_id"], job, ssm_client=runtime.client("ssm"),
                                parameter=cfg.model_parameter or "")
    raise ValueError(f"unknown action {action!r}: use start, status or publish")
