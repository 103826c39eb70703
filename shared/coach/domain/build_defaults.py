"""A deployment's defaults for a BuildRequest that does not say: teacher provider and model, fine-tune
backend and base model (the template's TeacherProvider, TeacherModel, FineTuneBackend, FineTuneBaseModel).

A request's own choices always win; a console click with `{"build_id": ...}` gets the deployment's.
"""

from __future__ import annotations

import copy
from typing import Any

from pydantic import BaseModel


class DeploymentDefaults(BaseModel):
    teacher_provider: str | None = None
    teacher_model: str | None = None
    fine_tune_backend: str | None = None  # bedrock | openai | none
    fine_tune_base_model: str | None = None


class FineTuningDisabled(ValueError):
    code = "fine_tuning_disabled"


def with_defaults(event: dict[str, Any], defaults: DeploymentDefaults) -> dict[str, Any]:
    """The request with the deployment's defaults filled in where it is silent."""
    if not isinstance(event, dict):
        return event
    request = copy.deepcopy(event)
    if defaults.teacher_provider and "provider" not in request:
        request["provider"] = defaults.teacher_provider
        if defaults.teacher_model and "model" not in request and defaults.teacher_provider != "offline":
            request["model"] = defaults.teacher_model
    fine_tune = request.get("fine_tune")
    if not isinstance(fine_tune, dict):
        return request
    backend = defaults.fine_tune_backend
    if backend == "none":
        if fine_tune.get("enabled"):
            raise FineTuningDisabled("this deployment has fine-tuning turned off (FineTuneBackend none): "
                                     "set fine_tune.enabled to false, or redeploy with FineTuneBackend bedrock")
        return request
    if backend and "backend" not in fine_tune:
        fine_tune["backend"] = backend
    # The deployment's base model belongs to its backend: a request that picks the other backend keeps its own.
    if defaults.fine_tune_base_model and not fine_tune.get("base_model") and fine_tune.get("backend") == backend:
        fine_tune["base_model"] = defaults.fine_tune_base_model
    return request
