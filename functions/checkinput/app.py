"""Check a dataset build's input before anything runs; fail fast with a readable cause."""

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import ValidationError

from coach import runtime
from coach.adapters.bedrock import bedrock_region
from coach.adapters.completion import OPENAI_MODEL_REQUIRED
from coach.domain.bedrock_models import fine_tune_refusal
from coach.domain.build_defaults import DeploymentDefaults, FineTuningDisabled, with_defaults
from coach.domain.records import BuildRequest
from coach.errors import describe_validation_error
from coach.step_errors import InvalidBuildRequest

logger = Logger()


@logger.inject_lambda_context
def lambda_handler(event: dict, context: LambdaContext) -> dict:
    cfg = runtime.settings()
    defaults = DeploymentDefaults(teacher_provider=cfg.teacher_provider, teacher_model=cfg.teacher_model,
                                  fine_tune_backend=cfg.fine_tune_backend,
                                  fine_tune_base_model=cfg.fine_tune_base_model)
    try:
        request = BuildRequest.model_validate(with_defaults(event, defaults))
    except FineTuningDisabled as exc:
        raise InvalidBuildRequest(f"{exc.code}: {exc}") from None
    except ValidationError as exc:
        raise InvalidBuildRequest(f"invalid build request: {describe_validation_error(exc)}") from None
    if request.provider == "openai" and not request.model:
        raise InvalidBuildRequest(f"model_required: {OPENAI_MODEL_REQUIRED}")
    refusal = fine_tune_refusal(request.fine_tune, bedrock_region())
    if refusal is not None:  # refused before any story is paid for
        raise InvalidBuildRequest(f"{refusal.code}: {refusal.message}")
    logger.info("build request accepted", extra={"build_id": request.build_id, "source": request.source.kind})
    return request.model_dump(mode="json")
