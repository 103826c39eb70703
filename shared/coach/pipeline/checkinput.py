"""Check-input stage: a build request with the deployment's defaults filled in, or a coded refusal.

Refusals (InvalidBuildRequest, "code: message") come before any story is read or paid for: an invalid
request, fine-tuning turned off for the deployment, an openai teacher without a model, a fine-tune base
model that cannot be trained or served here.
"""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError

from coach.adapters.completion import OPENAI_MODEL_REQUIRED
from coach.domain.bedrock_models import fine_tune_refusal
from coach.domain.build_defaults import DeploymentDefaults, FineTuningDisabled, with_defaults
from coach.domain.records import BuildRequest
from coach.errors import describe_validation_error
from coach.settings import Settings
from coach.step_errors import InvalidBuildRequest


def check_request(event: Any, settings: Settings, region: str) -> BuildRequest:
    defaults = DeploymentDefaults(teacher_provider=settings.teacher_provider, teacher_model=settings.teacher_model,
                                  fine_tune_backend=settings.fine_tune_backend,
                                  fine_tune_base_model=settings.fine_tune_base_model)
    try:
        request = BuildRequest.model_validate(with_defaults(event, defaults))
    except FineTuningDisabled as exc:
        raise InvalidBuildRequest(f"{exc.code}: {exc}") from None
    except ValidationError as exc:
        raise InvalidBuildRequest(f"invalid build request: {describe_validation_error(exc)}") from None
    if request.provider == "openai" and not request.model:
        raise InvalidBuildRequest(f"model_required: {OPENAI_MODEL_REQUIRED}")
    refusal = fine_tune_refusal(request.fine_tune, region)
    if refusal is not None:
        raise InvalidBuildRequest(f"{refusal.code}: {refusal.message}")
    return request
