"""Check a dataset build's input before anything runs; fail fast with a readable cause."""

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import ValidationError

from coach.domain.records import BuildRequest
from coach.errors import describe_validation_error
from coach.step_errors import InvalidBuildRequest

logger = Logger()


@logger.inject_lambda_context
def lambda_handler(event: dict, context: LambdaContext) -> dict:
    try:
        request = BuildRequest.model_validate(event)
    except ValidationError as exc:
        raise InvalidBuildRequest(f"invalid build request: {describe_validation_error(exc)}") from None
    logger.info("build request accepted", extra={"build_id": request.build_id, "source": request.source.kind})
    return request.model_dump(mode="json")
