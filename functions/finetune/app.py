"""Start, follow, deploy and publish a fine-tune, on Amazon Bedrock or OpenAI.

Events (the state machine's task inputs):
  {"action": "start", "request": BuildRequest}          -> {"status", "job_id", "reason", ...}
  {"action": "status", "job_id", "build_id", "backend"}  -> JobStatus: validating_files, queued, running,
        trained (Bedrock: ready to deploy), succeeded, failed, cancelled; failures carry error.code/message
  {"action": "deploy", "job": JobStatus}                 -> JobStatus of the Bedrock deployment: deploying,
        succeeded (fine_tuned_model = the deployment ARN) or failed
  {"action": "deployment_status", "job": JobStatus}      -> the same, read again
  {"action": "publish", "build_id", "job": JobStatus}    -> {"parameter", "model", ...}
"""

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext

from coach import runtime
from coach.adapters.bedrock import bedrock_region
from coach.domain.records import BuildRequest
from coach.errors import InputError
from coach.pipeline import finetune, finetune_bedrock

logger = Logger()


def _start(event: dict) -> dict:
    request = BuildRequest.model_validate(event["request"])
    if request.fine_tune.backend == "bedrock":
        cfg = runtime.settings()
        result = finetune_bedrock.start(request, store=runtime.store(), bedrock=runtime.bedrock(),
                                        bucket=cfg.bucket or "", role_arn=cfg.bedrock_role_arn,
                                        region=bedrock_region())
    else:
        result = finetune.start(request, store=runtime.store(), client_factory=runtime.openai_client)
    logger.info("fine-tune start", extra=result.model_dump())
    return result.model_dump()


def _status(event: dict) -> dict:
    if event.get("backend") == "bedrock":
        status = finetune_bedrock.job_status(event["job_id"], store=runtime.store(), bedrock=runtime.bedrock(),
                                             build_id=event.get("build_id"))
    else:
        status = finetune.status(event["job_id"], client_factory=runtime.openai_client, store=runtime.store(),
                                 build_id=event.get("build_id"))
    logger.info("fine-tune status", extra={"job_id": status.job_id, "status": status.status,
                                           "provider_status": status.openai_status})
    return status.model_dump(mode="json")


def _deployment(event: dict, *, create: bool) -> dict:
    job = finetune.JobStatus.model_validate(event["job"])
    step = finetune_bedrock.deploy if create else finetune_bedrock.deployment_status
    result = step(job, store=runtime.store(), bedrock=runtime.bedrock())
    logger.info("deployment", extra={"deployment_arn": result.deployment_arn, "status": result.status})
    return result.model_dump(mode="json")


def _publish(event: dict) -> dict:
    job = finetune.JobStatus.model_validate(event["job"])
    cfg = runtime.settings()
    cfg.require("model_parameter")
    published = finetune.publish(event["build_id"], job, ssm_client=runtime.client("ssm"),
                                 parameter=cfg.model_parameter or "", store=runtime.store())
    logger.info("fine-tune published", extra=published)
    return published


@logger.inject_lambda_context
def lambda_handler(event: dict, context: LambdaContext) -> dict:
    action = event.get("action")
    if action == "start":
        return _start(event)
    if action == "status":
        return _status(event)
    if action in ("deploy", "deployment_status"):
        return _deployment(event, create=action == "deploy")
    if action == "publish":
        return _publish(event)
    raise InputError(f"unknown action {action!r}: use start, status, deploy, deployment_status or publish",
                     code="unknown_action")
