"""Check a dataset build's input before anything runs; fail fast with a readable cause."""

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext

from coach import runtime
from coach.adapters.bedrock import bedrock_region
from coach.pipeline.checkinput import check_request

logger = Logger()


@logger.inject_lambda_context
def lambda_handler(event: dict, context: LambdaContext) -> dict:
    request = check_request(event, runtime.settings(), bedrock_region())
    logger.info("build request accepted", extra={"build_id": request.build_id, "source": request.source.kind})
    return request.model_dump(mode="json")
