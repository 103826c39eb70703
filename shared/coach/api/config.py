"""The critique API's configuration, built from the deployment settings (coach.settings)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from coach.domain.prompt import DEFAULT_MAX_FEEDBACK_TOKENS, DEFAULT_MAX_STORY_TOKENS
from coach.errors import ConfigError, describe_validation_error
from coach.settings import (
    DEFAULT_API_COMPLETION_TIMEOUT_S,
    DEFAULT_MAX_STORY_CHARS,
    DEFAULT_MIN_STORY_WORDS,
    DEFAULT_MODEL_CACHE_SECONDS,
    Settings,
)

# JSON may escape every character of a story (\\uXXXX, 12 bytes for an emoji's surrogate pair), so the raw
# body may be this many times longer than the story limit before it is refused unread.
BODY_BYTES_PER_STORY_CHAR = 12
BODY_ALLOWANCE_BYTES = 64 * 1024


class ApiConfig(BaseModel):
    """Frozen, so a service built from one configuration can be cached and compared with the next."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    provider: str = "offline"
    model: str | None = None
    openai_base_url: str | None = None
    openai_secret: str | None = None
    model_parameter: str | None = None
    model_cache_seconds: float = Field(DEFAULT_MODEL_CACHE_SECONDS, ge=0)
    max_story_chars: int = Field(DEFAULT_MAX_STORY_CHARS, ge=1)
    min_story_words: int = Field(DEFAULT_MIN_STORY_WORDS, ge=1)
    max_story_tokens: int = Field(DEFAULT_MAX_STORY_TOKENS, ge=50)
    max_feedback_tokens: int = Field(DEFAULT_MAX_FEEDBACK_TOKENS, ge=50)
    completion_timeout: float = Field(DEFAULT_API_COMPLETION_TIMEOUT_S, gt=0)
    max_style_notes: int = Field(5, ge=0)

    @property
    def max_body_bytes(self) -> int:
        return self.max_story_chars * BODY_BYTES_PER_STORY_CHAR + BODY_ALLOWANCE_BYTES

    @classmethod
    def from_env(cls) -> ApiConfig:
        base = Settings.from_env()
        try:
            return cls(
                provider=base.provider,
                model=base.model,
                openai_base_url=base.openai_base_url,
                openai_secret=base.openai_secret,
                model_parameter=(base.model_parameter or "").strip() or None,
                model_cache_seconds=base.model_cache_seconds,
                max_story_chars=base.max_story_chars,
                min_story_words=base.min_story_words,
                max_story_tokens=base.max_story_tokens,
                max_feedback_tokens=base.max_feedback_tokens,
                completion_timeout=base.api_completion_timeout,
            )
        except ValueError as exc:  # pydantic's ValidationError is one too
            raise ConfigError(f"invalid critique API setting: {describe_validation_error(exc)}",
                              code="invalid_configuration") from None


PROVIDER_KEY_MISSING = "provider_key_missing"  # the server has no key for its model provider (not the client's)


def require_provider_key(config: ApiConfig) -> None:
    """Fail at start, not on the first request, when the openai provider has no key to use."""
    if config.provider == "openai" and not Settings.from_env().openai_api_key and not config.openai_secret:
        raise ConfigError("the openai provider needs an API key: set OPENAI_API_KEY (or COACH_OPENAI_SECRET), "
                          "or use --provider offline", code=PROVIDER_KEY_MISSING)


def api_key() -> str | None:
    """The key `coach serve` checks locally (in the cloud API Gateway checks keys and this is unset)."""
    return Settings.from_env().api_key
