"""Accepted critiques -> train/validation JSONL, rejected.jsonl and manifest.json in the build's prefix."""

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext

from coach import runtime
from coach.domain.records import BuildRequest
from coach.pipeline.assemble import DatasetInvalidError, DatasetTooSmallError, MixedModelsError, assemble
from coach.step_errors import DatasetInvalid, DatasetTooSmall

logger = Logger()


@logger.inject_lambda_context
def lambda_handler(event: dict, context: LambdaContext) -> dict:
    request = BuildRequest.model_validate(event["request"])
    try:
        result, manifest = assemble(request, store=runtime.store(), shards=event.get("shards"))
    except DatasetTooSmallError as exc:
        raise DatasetTooSmall(exc.message) from None
    except MixedModelsError as exc:
        raise DatasetInvalid(str(exc)) from None  # the cause starts with its code
    except DatasetInvalidError as exc:
        raise DatasetInvalid(exc.message) from None
    logger.info("assembled", extra={"build_id": request.build_id, "counts": manifest.counts.model_dump(),
                                    "cost": manifest.cost.model_dump()})
    return result.model_dump()
