"""Which model writes critiques: the published fine-tune, or the configured base model.

The fine-tune stage publishes {"model", "prompt_version", "build_id", "trained_at"} to an SSM parameter.
A fine-tuned model is served with exactly the compact layout it was trained on; before one is published
(no parameter, empty, or "none") the base model gets the full editor prompt. The decision is cached for
a short time so a request does not read SSM, and a parameter that cannot be read or parsed falls back to
the base model with a warning rather than failing the writer's request.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Literal

from aws_lambda_powertools import Logger

from coach.adapters.model_registry import PublishedModel
from coach.adapters.model_registry import parse_published as parse_registry_value
from coach.domain.prompt import COMPACT_PROMPT_VERSION, Layout
from coach.settings import Settings

logger = Logger(child=True)

UNPUBLISHED = ("", "none", "null")

ParameterReader = Callable[[str, float], Any]


@dataclass(frozen=True)
class ModelChoice:
    provider: str
    model: str | None
    layout: Layout
    source: Literal["published", "configured"]
    build_id: str | None = None
    note: str = ""
    retires_on: str | None = None  # the published model's shutdown date, when its provider gave one


def ssm_reader() -> ParameterReader:
    """A reader with its own Powertools SSM provider, made on first use.

    Its own provider (not the module-level default) so the boto3 client is created when the endpoint and
    credentials of this process are known: a local server pointed at an emulator must not reuse a client
    made earlier for another endpoint.
    """
    provider: Any = None
    registry_file = Settings.from_env().model_registry_file
    if registry_file:  # `coach serve` of a working folder whose local builds publish into a file
        from coach.local.parameter_file import ParameterFile

        parameters = ParameterFile(Path(registry_file))
        return lambda name, max_age: parameters.get_parameter(Name=name)["Parameter"]["Value"]

    def read(name: str, max_age: float) -> Any:
        nonlocal provider
        if provider is None:
            from aws_lambda_powertools.utilities.parameters import SSMProvider

            provider = SSMProvider()
        return provider.get(name, max_age=int(max_age))

    return read


def parse_published(raw: Any) -> PublishedModel | None:
    """The published model, or None for a placeholder. Raises ValueError for any other value.

    What counts as published is the model registry's definition (the record `coach models` writes and
    lists), so the API and the registry never disagree about which model is live.
    """
    if raw is None:
        return None
    text = raw.decode("utf-8") if isinstance(raw, bytes) else str(raw)
    if text.strip().lower() in UNPUBLISHED:
        return None
    published = parse_registry_value(text)
    if published is None:
        raise ValueError('the value is neither "none" nor a published-model record '
                         '{"model", "prompt_version", "build_id", "trained_at"}')
    if published.model.strip().lower() in UNPUBLISHED:
        return None
    return published


class ModelSelector:
    def __init__(
        self,
        *,
        parameter_name: str | None,
        base_provider: str,
        base_model: str | None,
        max_age: float,
        reader: ParameterReader | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.parameter_name = parameter_name
        self.base = ModelChoice(provider=base_provider, model=base_model, layout="full", source="configured")
        self.max_age = max_age
        self._reader = reader or ssm_reader()
        self._clock = clock
        self._lock = threading.Lock()
        self._cached: ModelChoice | None = None
        self._expires = 0.0

    def current(self) -> ModelChoice:
        if not self.parameter_name:
            return self.base
        with self._lock:
            now = self._clock()
            if self._cached is None or now >= self._expires:
                self._cached = self._choose()
                self._expires = now + self.max_age
            return self._cached

    def _choose(self) -> ModelChoice:
        name = self.parameter_name or ""
        try:
            published = parse_published(self._reader(name, self.max_age))
        except Exception as exc:  # not found, no permission, emulator down, malformed JSON: serve the base
            note = f"cannot use model parameter {name}: {type(exc).__name__}: {str(exc)[:200]}"
            if "ParameterNotFound" in f"{type(exc).__name__} {exc}":
                note = f"model parameter {name} does not exist"
            logger.warning("serving the base model", extra={"reason": note})
            return replace(self.base, note=note)
        if published is None:
            return self.base
        version = published.prompt_version
        if version != COMPACT_PROMPT_VERSION:
            # The served layout must be the one the model learned from; a different one degrades it silently.
            note = (f"published model {published.model} was trained on prompt {version}, but this "
                    f"service sends {COMPACT_PROMPT_VERSION}: serving the base model until a matching "
                    "model is published")
            logger.warning("serving the base model", extra={"reason": note})
            return replace(self.base, note=note)
        return ModelChoice(provider=published.provider, model=published.model.strip(), layout="compact",
                           source="published", build_id=published.build_id, retires_on=published.retires_on)
