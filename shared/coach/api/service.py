"""One critique request end to end: limits, model choice, prompt, provider call, output guard, retry.

The service is built from an `ApiConfig` and cached per configuration, so a warm Lambda reuses its
provider connections and model-choice cache, and a local server picks up a changed environment.
Upstream failures become API errors a client can act on: 429 with Retry-After, 503 when the provider is
down or slow, 502 when it refuses or when its critique fails the house standard twice.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable
from typing import Any

from aws_lambda_powertools import Logger

from coach.adapters.secrets import openai_api_key
from coach.api.config import PROVIDER_KEY_MISSING, ApiConfig
from coach.api.errors import ApiError, retry_after_header
from coach.api.guard import Review, review
from coach.api.model_choice import ModelChoice, ModelSelector
from coach.api.models import CritiqueRequest, CritiqueResponse, StyleNote
from coach.domain.critic import analyse_style
from coach.domain.prompt import END_MARKER, build_messages, extract_story
from coach.domain.records import Usage
from coach.domain.retirement import parse_shutdown, retirement_notice
from coach.errors import (
    CoachError,
    ConfigError,
    InputError,
    PermanentUpstreamError,
    RateLimitedError,
    TransientUpstreamError,
    UpstreamError,
)
from coach.settings import Settings

logger = Logger(child=True)

ProviderFactory = Callable[[ApiConfig, ModelChoice], Any]

# API Gateway answers 504 after 29 s; a second attempt starts only if it can finish well before that.
REQUEST_BUDGET_S = 26.0
# The style notes come from the offline analysis; its cost grows with length, and the first part of a
# very long story says as much about its habits as the whole.
STYLE_SAMPLE_CHARS = 30_000
# Words for the minimum-length check: runs of letters, except that Chinese and Japanese characters
# (written without spaces) count one each.
_IDEOGRAPHS = "\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"
_WORD = re.compile(rf"[{_IDEOGRAPHS}]|[^\W\d_{_IDEOGRAPHS}]+(?:['’-][^\W\d_{_IDEOGRAPHS}]+)*")


def default_provider_factory(config: ApiConfig, choice: ModelChoice) -> Any:
    from coach.adapters.completion import OPENAI_MODEL_REQUIRED, OpenAIProvider, make_provider

    if choice.provider == "bedrock":
        from coach.adapters.bedrock import BedrockProvider
        from coach.domain.bedrock_models import DEFAULT_TEACHER_MODEL

        # As for openai below: no retries inside the provider while a client waits.
        return BedrockProvider(choice.model or DEFAULT_TEACHER_MODEL, timeout=config.completion_timeout,
                               max_retries=0)
    if choice.provider != "openai":
        return make_provider(choice.provider, choice.model)
    key = openai_api_key(config.openai_secret, Settings.from_env().openai_api_key)
    if not key:
        raise ConfigError("the openai provider needs an API key: set OPENAI_API_KEY or COACH_OPENAI_SECRET",
                          code=PROVIDER_KEY_MISSING)
    # No retries inside the provider: a client is waiting, so a 429 or a 5xx goes straight back to it
    # (with Retry-After), and the one retry this service makes is for a critique that fails the guard.
    if not choice.model:
        raise ConfigError(OPENAI_MODEL_REQUIRED, code="model_required")
    return OpenAIProvider(choice.model, api_key=key, base_url=config.openai_base_url,
                          timeout=config.completion_timeout, max_retries=0)


class CritiqueService:
    def __init__(self, config: ApiConfig, *, provider_factory: ProviderFactory = default_provider_factory,
                 selector: ModelSelector | None = None) -> None:
        self.config = config
        self.selector = selector or ModelSelector(
            parameter_name=config.model_parameter, base_provider=config.provider, base_model=config.model,
            max_age=config.model_cache_seconds,
        )
        self._factory = provider_factory
        self._providers: dict[ModelChoice, Any] = {}
        self._lock = threading.Lock()

    # -- the request --------------------------------------------------------------------------------

    def critique(self, request: CritiqueRequest) -> CritiqueResponse:
        started = time.monotonic()
        self.check_limits(request.story)
        choice = self.selector.current()
        prompt = build_messages(request.story, request.title or "", layout=choice.layout,
                                max_story_tokens=self.config.max_story_tokens)
        _, story_sent = extract_story(prompt.messages)
        provider = self.provider(choice)

        usage = Usage()
        outcome: Review | None = None
        model = choice.model or getattr(provider, "model", "") or choice.provider
        attempts = 0
        for attempt in (1, 2):
            attempt_started = time.monotonic()
            completion = self._complete(provider, prompt.messages)
            attempts = attempt
            usage = usage + completion.usage
            model = completion.model or model
            outcome = review(completion.text, story=story_sent, finish_reason=completion.finish_reason)
            if outcome.accepted:
                break
            logger.warning("critique rejected by the output guard",
                           extra={"attempt": attempt, "reasons": outcome.reasons, "model": model})
            one_attempt = time.monotonic() - attempt_started
            if time.monotonic() - started + one_attempt > REQUEST_BUDGET_S:
                break  # another attempt like this one would outlast API Gateway's patience
        assert outcome is not None
        if not outcome.accepted:
            reasons = ", ".join(outcome.reasons) or "unknown"
            raise ApiError(502, "critique_rejected",
                           f"the model's critique did not meet the house standard after {attempts} "
                           f"attempt(s) ({reasons}); please try again")

        logger.info("critique served", extra={
            "model": model, "source": choice.source, "attempts": attempts, "truncated": prompt.truncated,
            "trimmed_loop": outcome.trimmed_loop, "story_chars": len(request.story),
            "latency_ms": int((time.monotonic() - started) * 1000), "total_tokens": usage.total_tokens,
        })
        return CritiqueResponse(
            critique=outcome.text, model=model, prompt_version=prompt.prompt_version,
            truncated=prompt.truncated, usage=usage, style=self.style_notes(request.story),
        )

    def warnings(self) -> list[str]:
        """What /health tells an operator: the served model retires soon, or the published one is not used."""
        choice = self.selector.current()
        found = [choice.note] if choice.note else []
        notice = retirement_notice(choice.model or "", parse_shutdown(choice.retires_on))
        if notice is not None:
            found.append(notice.message)
        return found

    def check_limits(self, story: str) -> None:
        limit = self.config.max_story_chars
        if len(story) > limit:
            raise ApiError(413, "story_too_large",
                           f"the story is {len(story):,} characters; the limit is {limit:,} characters")
        words = sum(1 for _ in _WORD.finditer(story))
        if words < self.config.min_story_words:
            raise ApiError(400, "story_too_short",
                           f"the story has {words} word(s); send at least {self.config.min_story_words} "
                           "words of prose to critique")

    def style_notes(self, story: str) -> list[StyleNote]:
        if self.config.max_style_notes == 0:
            return []
        report = analyse_style(story[:STYLE_SAMPLE_CHARS])
        return [StyleNote(code=n.code, message=n.message, examples=list(n.examples))
                for n in report.notes[: self.config.max_style_notes]]

    # -- the provider -------------------------------------------------------------------------------

    def provider(self, choice: ModelChoice) -> Any:
        with self._lock:
            found = self._providers.get(choice)
            if found is None:
                try:
                    found = self._factory(self.config, choice)
                except CoachError as exc:
                    raise _service_error(exc) from None
                self._providers[choice] = found
            return found

    def _complete(self, provider: Any, messages: list[dict[str, str]]) -> Any:
        try:
            return provider.complete(messages, max_tokens=self.config.max_feedback_tokens, stop=[END_MARKER])
        except RateLimitedError as exc:
            raise ApiError(429, "upstream_rate_limited",
                           "the model provider is rate limiting requests; "
                           "retry after the Retry-After seconds",
                           headers=retry_after_header(exc.retry_after)) from None
        except TransientUpstreamError as exc:
            headers = retry_after_header(exc.retry_after) if exc.retry_after else {}
            raise ApiError(503, exc.code or "upstream_unavailable",
                           f"the model provider is unavailable: {exc.message}", headers=headers) from None
        except PermanentUpstreamError as exc:
            raise ApiError(502, exc.code or "upstream_rejected",
                           f"the model provider refused the request: {exc.message}") from None
        except UpstreamError as exc:
            raise ApiError(502, exc.code or "upstream_error",
                           f"the model provider failed: {exc.message}") from None
        except InputError as exc:
            raise ApiError(400, exc.code, exc.message) from None
        except CoachError as exc:
            raise _service_error(exc) from None


def _service_error(exc: CoachError) -> ApiError:
    """Configuration and other server-side problems: the client cannot fix them, so they are 5xx. The
    details (setting and variable names) go to the log for the operator, not to the client."""
    logger.error("critique service misconfigured", extra={"code": exc.code, "error": exc.message})
    return ApiError(500, exc.code, "the critique service is misconfigured and cannot answer; its operator "
                    "has the cause in the service's log")


# -- process-wide instance ------------------------------------------------------------------------------

_lock = threading.Lock()
_current: CritiqueService | None = None
_factory: ProviderFactory = default_provider_factory


def current() -> CritiqueService:
    """The service for the current environment; rebuilt only when the configuration changes."""
    global _current
    config = ApiConfig.from_env()
    with _lock:
        if _current is None or _current.config != config:
            _current = CritiqueService(config, provider_factory=_factory)
        return _current


def use_provider_factory(factory: ProviderFactory | None) -> None:
    """Replace how providers are made (benchmarks, embedding); None restores the default."""
    global _factory, _current
    with _lock:
        _factory = factory or default_provider_factory
        _current = None


def reset() -> None:
    """Forget the cached service, its providers and its model choice."""
    global _current
    with _lock:
        _current = None
