"""The published fine-tuned model: one SSM parameter, with SSM's own version history as the record.

The parameter's value is the JSON the critique API reads: {"model", "prompt_version", "build_id",
"trained_at"}. Every publish and every rollback is a new version of the parameter, so the history needs
no second store and cannot drift from what the API serves. The version's description says which it was
("publish: ..." or "rollback: ..."), so a rollback can step back through published models without
counting earlier rollbacks as publications. SSM keeps the last 100 versions of a parameter; older ones
drop out of the list (the fine-tuned models themselves stay in the OpenAI account).

A value that is not such JSON (the placeholder a fresh stack starts with) means "no fine-tuned model":
the API serves the base model.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any, Literal

from botocore.exceptions import BotoCoreError, ClientError
from pydantic import BaseModel, ValidationError

from coach.domain.records import EvaluationSummary
from coach.errors import CoachError, ConfigError, UpstreamError

HISTORY_PAGE = 50  # SSM's maximum page size for GetParameterHistory


class RegistryError(CoachError):
    code = "model_registry_error"


class PublishedModel(BaseModel):
    model: str  # an OpenAI fine-tuned model id, or a Bedrock custom model deployment ARN
    prompt_version: str
    build_id: str
    trained_at: str
    provider: Literal["openai", "bedrock"] = "openai"  # records published before Bedrock carry none
    base_model: str | None = None
    retires_on: str | None = None  # YYYY-MM-DD, when the provider published a shutdown date
    scores: EvaluationSummary | None = None  # the evaluation it passed (or was promoted over)

    def value(self) -> str:
        return json.dumps(self.model_dump(exclude_none=True), separators=(",", ":"))


class RegistryEntry(BaseModel):
    """One version of the parameter."""

    version: int
    changed_at: str
    action: Literal["publish", "promote", "rollback", "other"]
    published: PublishedModel | None  # None: a placeholder, the base model is served
    description: str = ""


def parse_published(value: str | None) -> PublishedModel | None:
    """The published model in a parameter value, or None for a placeholder or unreadable value."""
    if not value:
        return None
    try:
        return PublishedModel.model_validate(json.loads(value))
    except (json.JSONDecodeError, ValidationError, TypeError):
        return None


def _iso(moment: Any) -> str:
    if isinstance(moment, datetime):
        return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return str(moment or "")


def _action(description: str) -> Literal["publish", "promote", "rollback", "other"]:
    head = description.split(":", 1)[0].strip().lower()
    return head if head in ("publish", "promote", "rollback") else "other"  # type: ignore[return-value]


def _aws_error(exc: Exception, parameter: str) -> CoachError:
    if isinstance(exc, ClientError):
        code = exc.response.get("Error", {}).get("Code", "ClientError")
        message = exc.response.get("Error", {}).get("Message", str(exc))
        if code in ("AccessDeniedException", "UnrecognizedClientException", "InvalidClientTokenId",
                    "ExpiredTokenException"):
            return ConfigError(f"AWS refused access to parameter {parameter}: {message}", code="aws_access_denied")
        return UpstreamError(f"SSM {code} on parameter {parameter}: {message}", code="ssm_error")
    name = type(exc).__name__
    if name in ("NoCredentialsError", "PartialCredentialsError"):
        return ConfigError("no AWS credentials: configure the default credential chain or pass --endpoint-url",
                           code="aws_credentials_missing")
    if name == "NoRegionError":
        return ConfigError("no AWS region: set AWS_DEFAULT_REGION or pass --region", code="aws_region_missing")
    return UpstreamError(f"cannot reach SSM for parameter {parameter}: {exc}", code="ssm_unreachable",
                         retryable=True)


class ModelRegistry:
    def __init__(self, ssm_client: Any, parameter: str) -> None:
        if not parameter:
            raise ConfigError("no model parameter: set COACH_MODEL_PARAMETER or pass --parameter",
                              code="missing_configuration")
        self.ssm = ssm_client
        self.parameter = parameter

    def current(self) -> PublishedModel | None:
        try:
            value = self.ssm.get_parameter(Name=self.parameter)["Parameter"]["Value"]
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") == "ParameterNotFound":
                return None
            raise _aws_error(exc, self.parameter) from None
        except BotoCoreError as exc:
            raise _aws_error(exc, self.parameter) from None
        return parse_published(value)

    def history(self) -> list[RegistryEntry]:
        """Every retained version, newest first."""
        entries: list[RegistryEntry] = []
        token: str | None = None
        try:
            while True:
                kwargs: dict[str, Any] = {"Name": self.parameter, "MaxResults": HISTORY_PAGE}
                if token:
                    kwargs["NextToken"] = token
                page = self.ssm.get_parameter_history(**kwargs)
                for item in page.get("Parameters", []):
                    description = item.get("Description") or ""
                    entries.append(RegistryEntry(
                        version=int(item["Version"]), changed_at=_iso(item.get("LastModifiedDate")),
                        action=_action(description), published=parse_published(item.get("Value")),
                        description=description,
                    ))
                token = page.get("NextToken")
                if not token:
                    break
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") == "ParameterNotFound":
                return []
            raise _aws_error(exc, self.parameter) from None
        except BotoCoreError as exc:
            raise _aws_error(exc, self.parameter) from None
        return sorted(entries, key=lambda e: -e.version)

    def published(self) -> list[RegistryEntry]:
        """Models in the order they were published (newest first), each once; rollbacks are not listed."""
        seen: set[str] = set()
        found: list[RegistryEntry] = []
        for entry in self.history():
            if entry.action == "rollback" or entry.published is None or entry.published.model in seen:
                continue
            seen.add(entry.published.model)
            found.append(entry)
        return found

    def _put(self, published: PublishedModel, description: str) -> int:
        try:
            answer = self.ssm.put_parameter(Name=self.parameter, Value=published.value(), Type="String",
                                            Overwrite=True, Description=description[:1024])
        except (ClientError, BotoCoreError) as exc:
            raise _aws_error(exc, self.parameter) from None
        return int(answer.get("Version", 0))

    def publish(self, published: PublishedModel) -> int | None:
        """Serve this model. Publishing the model already served writes nothing (a retried step)."""
        current = self.current()
        if current is not None and current.model == published.model:
            return None
        return self._put(published, f"publish: {published.model} from build {published.build_id}")

    def promote(self, published: PublishedModel, note: str) -> int:
        """Serve a model a person chose over the gate's refusal; the version's description says so and why."""
        return self._put(published, f"promote: {published.model} from build {published.build_id}, {note}")

    def rollback(self, *, to_model: str | None = None, steps: int | None = None) -> PublishedModel:
        """Serve an earlier published model: a named one, or the one `steps` publications before the current."""
        if to_model and steps:
            raise RegistryError("give either a model or a number of steps, not both", code="bad_rollback")
        published = self.published()
        if not published:
            raise RegistryError(f"no model has been published to {self.parameter}", code="no_published_model")
        current = self.current()
        if to_model:
            target = next((e.published for e in published if e.published and e.published.model == to_model), None)
            if target is None:
                known = ", ".join(e.published.model for e in published if e.published)
                raise RegistryError(f"'{to_model}' was never published to {self.parameter}; published: {known}",
                                    code="rollback_target_not_found")
        else:
            steps = 1 if steps is None else steps
            if steps < 1:
                raise RegistryError("--steps must be 1 or more", code="bad_rollback")
            models = [e.published.model for e in published if e.published]
            here = models.index(current.model) if current is not None and current.model in models else -1
            position = here + steps if here >= 0 else steps - 1
            if position >= len(models):
                raise RegistryError(
                    f"cannot go back {steps} step(s): only {len(models)} model(s) were published "
                    f"and the current one is number {here + 1} from the newest", code="rollback_target_not_found")
            target = published[position].published
        assert target is not None
        if current is not None and current.model == target.model:
            raise RegistryError(f"{target.model} is already the served model", code="already_current")
        previous = current.model if current else "the base model"
        self._put(target, f"rollback: to {target.model} from {previous}")
        return target
