"""What OpenAI says about a model: its shutdown date (GET /v1/models/{id})."""

from __future__ import annotations

from datetime import date
from typing import Any

from aws_lambda_powertools import Logger

from coach.domain.retirement import parse_shutdown

logger = Logger(child=True)


def base_of(model: str) -> str | None:
    """The base model of a fine-tuned id ("ft:gpt-4o-mini-2024-07-18:org:suffix:id" -> "gpt-4o-mini-...")."""
    if model.startswith("ft:") and model.count(":") >= 2:
        return model.split(":")[1]
    return None


def shutdown_date(client: Any, model: str) -> date | None:
    """The model's shutdown date; for a fine-tune without one, its base model's. None when unknown.

    A lookup that fails is logged and treated as unknown: the date is a warning, not a reason to stop.
    """
    import openai

    for candidate in (model, base_of(model)):
        if not candidate:
            continue
        try:
            found = client.models.retrieve(candidate)
        except openai.OpenAIError as exc:
            logger.warning("cannot read the model's shutdown date", extra={"model": candidate, "error": str(exc)})
            continue
        extra = getattr(found, "model_extra", None) or {}
        when = parse_shutdown(getattr(found, "shutdown_date", None) or extra.get("shutdown_date"))
        if when is not None:
            return when
    return None
