"""Deployment settings: the one place the environment is read (the same names in Lambda and locally).

Every value is parsed and checked once per distinct environment: a warm Lambda's never changes, while tests
and the CLI change it between calls. A bad value fails at its first use with one line and the code
`bad_setting`; a blank value counts as unset. The domain reads no environment: it takes these values as
arguments, or, where a caller leaves them out, asks `price_table_setting()` / `estimate_tokens_only()`.
"""

from __future__ import annotations

import functools
import os
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from coach.domain.finetune_data import DEFAULT_SIMILARITY
from coach.domain.prompt import DEFAULT_MAX_FEEDBACK_TOKENS, DEFAULT_MAX_STORY_TOKENS
from coach.errors import ConfigError

# Defaults named once; modules that take these values as arguments import them from here.
DEFAULT_MODEL_PARAMETER = "/coach/critique-model"  # the emulated stack's and local registry's SSM parameter
DEFAULT_COMPLETION_TIMEOUT_S = 60.0
# OpenAI's files, uploads (in parts), batches and fine-tuning jobs: a request each, never a model's answer.
OPENAI_CONTROL_TIMEOUT_S = 60.0
# A drained queue is confirmed by a second look this long after the first (SQS counts are approximate).
DEFAULT_QUEUE_DRAIN_CONFIRM_S = 60.0
# The critique API's own limits.
DEFAULT_MAX_STORY_CHARS = 100_000
DEFAULT_MODEL_CACHE_SECONDS = 60.0
# Below this there is nothing for an editor to say (and a model asked anyway tends to invent a story).
DEFAULT_MIN_STORY_WORDS = 10
# API Gateway gives up on an integration after 29 s; leave room for one retry of a rejected draft.
DEFAULT_API_COMPLETION_TIMEOUT_S = 12.0

BAD_SETTING = "bad_setting"
_SECRETS = ("OPENAI_API_KEY", "COACH_API_KEY")  # never echoed in an error


def _env(name: str, default: Any = None, **checks: Any) -> Any:
    return Field(default, validation_alias=name, **checks)


class Settings(BaseModel):
    """Frozen: one parsed environment is shared by every caller that reads the same one."""

    model_config = ConfigDict(frozen=True, populate_by_name=True, extra="ignore")

    bucket: str | None = _env("COACH_BUCKET")
    story_queue_url: str | None = _env("COACH_STORY_QUEUE_URL")
    story_dlq_url: str | None = _env("COACH_STORY_DLQ_URL")
    idempotency_table: str | None = _env("COACH_IDEMPOTENCY_TABLE")
    model_parameter: str | None = _env("COACH_MODEL_PARAMETER")
    openai_secret: str | None = _env("COACH_OPENAI_SECRET")
    reddit_secret: str | None = _env("COACH_REDDIT_SECRET")
    openai_base_url: str | None = _env("OPENAI_BASE_URL")
    # Locally the key itself; in the cloud it comes from the secret named by openai_secret.
    openai_api_key: str | None = Field(None, validation_alias="OPENAI_API_KEY", repr=False)
    bedrock_role_arn: str | None = _env("COACH_BEDROCK_ROLE_ARN")  # assumed by a Bedrock customization job
    bedrock_batch_role_arn: str | None = _env("COACH_BEDROCK_BATCH_ROLE_ARN")  # ... by a batch inference job
    # Bedrock's per-job record quotas (adjustable per account): a smaller batch goes synchronously.
    batch_min_records: int = _env("COACH_BATCH_MIN_RECORDS", 100, ge=1)
    batch_max_records: int = _env("COACH_BATCH_MAX_RECORDS", 50_000, ge=1)
    # A deployment's defaults for build requests that do not say (see coach.domain.build_defaults).
    teacher_provider: str | None = _env("COACH_TEACHER_PROVIDER")
    teacher_model: str | None = _env("COACH_TEACHER_MODEL")
    fine_tune_backend: str | None = _env("COACH_FINE_TUNE_BACKEND")
    fine_tune_base_model: str | None = _env("COACH_FINE_TUNE_BASE_MODEL")
    provider: str = _env("COACH_PROVIDER", "offline")
    model: str | None = _env("COACH_MODEL")
    max_receive_count: int = _env("COACH_MAX_RECEIVE_COUNT", 3, ge=1)
    completion_timeout: float = _env("COACH_COMPLETION_TIMEOUT", DEFAULT_COMPLETION_TIMEOUT_S, gt=0)
    max_story_tokens: int = _env("COACH_MAX_STORY_TOKENS", DEFAULT_MAX_STORY_TOKENS, ge=1)
    max_feedback_tokens: int = _env("COACH_MAX_FEEDBACK_TOKENS", DEFAULT_MAX_FEEDBACK_TOKENS, ge=1)
    # Connections a provider keeps open: at least the number of critiques in flight at once.
    http_pool: int = _env("COACH_HTTP_POOL", 10, ge=1)
    eval_gate: str | None = _env("COACH_EVAL_GATE")  # JSON: the default promotion gate (a request may set its own)
    # A fine-tuning file larger than this goes to OpenAI's Uploads API in parts of this size (OpenAI's maximum).
    upload_part_bytes: int = _env("COACH_UPLOAD_PART_BYTES", 64 * 1024 * 1024, ge=1)
    # Generation's time limit grows with the run: the provider's rate, the state machine's poll, the floor.
    stories_per_minute: float | None = _env("COACH_STORIES_PER_MINUTE", gt=0)
    generation_poll_seconds: float = _env("COACH_GENERATION_POLL_SECONDS", 30.0, gt=0)
    generation_max_checks: int = _env("COACH_GENERATION_MAX_CHECKS", 240, ge=1)
    # Prices and token counts (read by coach.domain.pricing and coach.domain.tokens through the functions below).
    price_table: str | None = _env("COACH_PRICE_TABLE")  # JSON, or a path to it, over the default prices
    tokenizer: Literal["tiktoken", "estimate"] = _env("COACH_TOKENIZER", "tiktoken")
    # Dataset assembly: None means the base model's known limit / the price table's training price.
    example_token_limit: int | None = _env("COACH_EXAMPLE_TOKEN_LIMIT", gt=0)
    training_price_per_million: float | None = _env("COACH_TRAINING_PRICE_PER_MILLION", gt=0)
    dedupe_similarity: float = _env("COACH_DEDUPE_SIMILARITY", DEFAULT_SIMILARITY, gt=0, le=1)
    queue_drain_confirm_seconds: float = _env("COACH_QUEUE_DRAIN_CONFIRM_SECONDS", DEFAULT_QUEUE_DRAIN_CONFIRM_S,
                                              ge=0)
    # The critique API (checked again, with its limits, by coach.api.config.ApiConfig).
    model_cache_seconds: float = _env("COACH_MODEL_CACHE_SECONDS", DEFAULT_MODEL_CACHE_SECONDS)
    max_story_chars: int = _env("COACH_MAX_STORY_CHARS", DEFAULT_MAX_STORY_CHARS)
    min_story_words: int = _env("COACH_MIN_STORY_WORDS", DEFAULT_MIN_STORY_WORDS)
    api_completion_timeout: float = _env("COACH_API_COMPLETION_TIMEOUT", DEFAULT_API_COMPLETION_TIMEOUT_S)
    api_key: str | None = Field(None, validation_alias="COACH_API_KEY", repr=False)  # `coach serve` checks it
    model_registry_file: str | None = _env("COACH_MODEL_REGISTRY_FILE")  # `coach serve` of local builds
    functions_dir: str | None = _env("COACH_FUNCTIONS_DIR")  # the local runtime's handlers

    @field_validator("tokenizer", mode="before")
    @classmethod
    def _lower(cls, value: Any) -> Any:
        return value.strip().lower() if isinstance(value, str) else value

    @classmethod
    def from_env(cls) -> Settings:
        return _parse(tuple((name, os.environ.get(name)) for name in ENV_NAMES))

    @classmethod
    def env_name(cls, field: str) -> str:
        alias = cls.model_fields[field].validation_alias
        return alias if isinstance(alias, str) else field.upper()

    def require(self, *names: str) -> None:
        missing = [n for n in names if not getattr(self, n)]
        if missing:
            env_names = ", ".join(self.env_name(n) for n in missing)
            raise ConfigError(f"missing configuration: set {env_names}", code="missing_configuration")


ENV_NAMES = tuple(Settings.env_name(field) for field in Settings.model_fields)


@functools.lru_cache(maxsize=32)
def _parse(values: tuple[tuple[str, str | None], ...]) -> Settings:
    given = {name: value for name, value in values if value is not None and value.strip()}
    try:
        return Settings.model_validate(given)
    except ValidationError as exc:
        raise ConfigError(_describe(exc), code=BAD_SETTING) from None


def _describe(exc: ValidationError) -> str:
    """One line: 'COACH_HTTP_POOL='many' is not valid: Input should be a valid integer, ...'."""
    parts = []
    for err in exc.errors():
        name = ".".join(str(p) for p in err.get("loc", ())) or "setting"
        shown = "" if name in _SECRETS else f"={str(err.get('input'))[:80]!r}"
        parts.append(f"{name}{shown} is not valid: {err.get('msg', 'invalid')}")
    return "; ".join(parts)


def price_table_setting() -> str:
    """COACH_PRICE_TABLE's text ('' when unset): the prices coach.domain.pricing.price_table() applies."""
    return Settings.from_env().price_table or ""


def estimate_tokens_only() -> bool:
    """COACH_TOKENIZER=estimate: count tokens as chars/4 even where tiktoken's encoding could load."""
    return Settings.from_env().tokenizer == "estimate"
