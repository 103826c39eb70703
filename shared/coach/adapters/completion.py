"""Completion providers: the `openai` SDK against any OpenAI-compatible server, or the offline critic.

`OpenAIProvider` turns the SDK's own retries off and runs its own loop, so every attempt, wait and final
error is visible and testable: 408/409/429/5xx, timeouts and connection errors are retried with capped
exponential backoff and full jitter, honouring the server's Retry-After; other 4xx fail at once with a
stable code. What reaches the caller is either a `Completion` with text or a `coach.errors.UpstreamError`,
never an empty critique posing as feedback.
"""

from __future__ import annotations

import math
import random
import re
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Literal, Protocol, runtime_checkable
from urllib.parse import urlparse

from pydantic import BaseModel

from coach.adapters.retrying import AdaptRequest, RetryableAttempt, RetryingProvider
from coach.domain.prompt import DEFAULT_MAX_FEEDBACK_TOKENS
from coach.domain.records import Usage
from coach.domain.tokens import count_chat_tokens, count_tokens, estimate_tokens
from coach.errors import (
    ConfigError,
    InputError,
    PermanentUpstreamError,
    RateLimitedError,
    TransientUpstreamError,
)
from coach.settings import DEFAULT_COMPLETION_TIMEOUT_S, Settings

if TYPE_CHECKING:  # the SDK is imported where it is used: the offline provider never needs it
    import openai

# No default OpenAI model: every model a default could name here shuts down within months (gpt-4o and
# gpt-4.1 families on 2027-01-14), and an OpenAI-compatible server names its own models anyway.
OPENAI_MODEL_REQUIRED = (
    "the openai provider needs a model: pass --model or set COACH_MODEL to a current model of your server "
    "(OpenAI shuts down gpt-4o, gpt-4o-mini, gpt-4.1 and gpt-4.1-mini on 2027-01-14, so none is a default)")
RETRYABLE_STATUS = frozenset({408, 409, 429})
CONNECT_TIMEOUT = 10.0
# Parameters some servers or models refuse; on such a 400 the call is adapted once and sent again.
_TOKEN_PARAMS = ("max_tokens", "max_completion_tokens")
_DROPPABLE_PARAMS = ("temperature", "stop")


class Completion(BaseModel):
    """One critique reply. `usage` is everything billed for it (an empty reply that was retried included);
    `latency_ms` is the caller's wall time, retries and waits included."""

    text: str
    finish_reason: str
    model: str
    usage: Usage
    latency_ms: int
    attempts: int = 1
    request_id: str | None = None

    @property
    def truncated(self) -> bool:
        """The reply hit the token limit, so it may end mid-sentence."""
        return self.finish_reason == "length"


@runtime_checkable
class CompletionProvider(Protocol):
    name: Literal["offline", "openai", "bedrock"]
    model: str

    def complete(
        self,
        messages: list[dict[str, str]],
        *,
        max_tokens: int = DEFAULT_MAX_FEEDBACK_TOKENS,
        stop: list[str] | None = None,
        temperature: float = 0.7,
    ) -> Completion: ...


def _pooled_http_client(pool: int) -> Any:
    """The SDK's own HTTP client, keeping one connection alive per call in flight (its default keeps fewer)."""
    import httpx2 as http  # the SDK's own HTTP library (a dependency of the openai package)
    import openai

    return openai.DefaultHttpxClient(limits=http.Limits(max_connections=max(1, pool),
                                                        max_keepalive_connections=max(1, pool)))


class OpenAIProvider(RetryingProvider):
    name: Literal["openai"] = "openai"

    def __init__(
        self,
        model: str,
        *,
        api_key: str,
        base_url: str | None = None,
        timeout: float = DEFAULT_COMPLETION_TIMEOUT_S,
        max_retries: int = 4,
        backoff_base: float = 0.5,
        backoff_cap: float = 20.0,
        sleep: Callable[[float], None] = time.sleep,
        rng: random.Random | None = None,
        pool: int | None = None,
    ) -> None:
        super().__init__(max_retries=max_retries, backoff_base=backoff_base, backoff_cap=backoff_cap,
                         sleep=sleep, rng=rng)
        import openai

        self.model = model
        self.timeout = timeout
        self._client = openai.OpenAI(
            api_key=api_key,
            base_url=base_url,
            timeout=openai.Timeout(timeout, connect=min(CONNECT_TIMEOUT, timeout)),
            max_retries=0,  # our loop retries, so attempts and waits are counted in one place
            http_client=_pooled_http_client(pool) if pool else None,
        )
        # OpenAI's own endpoint wants max_completion_tokens (newer models refuse max_tokens); other
        # OpenAI-compatible servers widely understand only max_tokens.
        official = (urlparse(str(self._client.base_url)).hostname or "").endswith("api.openai.com")
        self._token_param = "max_completion_tokens" if official else "max_tokens"
        self._dropped: set[str] = set()

    @property
    def token_parameter(self) -> str:
        """The request field that carries max_tokens for this server: max_tokens or max_completion_tokens."""
        return self._token_param

    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> OpenAIProvider:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- one attempt ------------------------------------------------------------------------------------

    def _request(self, messages: list[dict[str, str]], *, max_tokens: int, stop: list[str] | None,
                temperature: float) -> dict[str, Any]:
        params: dict[str, Any] = {"model": self.model, "messages": messages, self._token_param: max_tokens}
        if "temperature" not in self._dropped:
            params["temperature"] = temperature
        if stop and "stop" not in self._dropped:
            params["stop"] = stop
        return params

    def _adapt(self, param: str | None) -> bool:
        if param == self._token_param:
            self._token_param = _TOKEN_PARAMS[1 - _TOKEN_PARAMS.index(param)]
            return True
        if param in _DROPPABLE_PARAMS and param not in self._dropped:
            self._dropped.add(param)
            return True
        return False

    def _attempt(self, params: dict[str, Any]) -> Completion:
        import openai

        try:
            response = self._client.chat.completions.create(**params)
        except openai.APITimeoutError:
            raise RetryableAttempt(TransientUpstreamError(
                f"the completion API did not answer within {self.timeout:g}s", code="upstream_timeout"
            ), None) from None
        except openai.APIConnectionError as err:
            cause = _one_line(str(err.__cause__ or err))
            raise RetryableAttempt(TransientUpstreamError(
                f"cannot reach the completion API at {self._client.base_url}: {cause}",
                code="upstream_unreachable",
            ), None) from None
        except openai.APIStatusError as err:
            raise self._status_failure(err) from None
        except openai.APIError as err:  # an answer the SDK could not read (a proxy's HTML page, say)
            raise RetryableAttempt(TransientUpstreamError(
                f"the completion API sent an unreadable answer: {_one_line(err.message)}",
                code="upstream_bad_response",
            ), None) from None
        return self._read(response, params["messages"])

    def _status_failure(self, err: openai.APIStatusError) -> Exception:
        status = err.status_code
        body = err.body if isinstance(err.body, dict) else {}
        upstream_code = str(body.get("code") or body.get("type") or "") or None
        detail = _one_line(str(body.get("message") or err.message))
        label = f"{status} {upstream_code}" if upstream_code else str(status)
        retry_after = parse_retry_after(err.response.headers)
        if status == 400 and upstream_code in ("unsupported_parameter", "unsupported_value") and (
                body.get("param") in (*_TOKEN_PARAMS, *_DROPPABLE_PARAMS)):
            return AdaptRequest(PermanentUpstreamError(
                f"the completion API refused the request ({label}): {detail}", code="upstream_bad_request",
                status=status,
            ), str(body.get("param")))
        if status == 429 and upstream_code == "insufficient_quota":
            # Waiting does not refill an empty account.
            return PermanentUpstreamError(
                f"the completion API account is out of quota ({label}): {detail}", code="upstream_quota",
                status=status,
            )
        if status in RETRYABLE_STATUS or status >= 500:
            kind = RateLimitedError if status == 429 else TransientUpstreamError
            return RetryableAttempt(kind(f"the completion API answered {label}: {detail}", status=status,
                               retry_after=retry_after), retry_after)
        return PermanentUpstreamError(
            f"the completion API rejected the request ({label}): {detail}",
            code=permanent_code(status, upstream_code), status=status,
        )

    def _read(self, response: Any, messages: list[dict[str, str]]) -> Completion:
        choices = getattr(response, "choices", None) or []
        choice = choices[0] if choices else None
        text = (choice.message.content or "") if choice is not None and choice.message is not None else ""
        finish = (choice.finish_reason if choice is not None else None) or "stop"
        usage = _usage_of(response, messages, text)
        if finish == "content_filter" and not text.strip():
            raise PermanentUpstreamError("the completion API withheld the reply (content filter)",
                                         code="upstream_content_policy")
        if not text.strip():
            if finish == "length":
                # The whole budget went before any visible text (a reasoning model, or a tiny max_tokens):
                # asking again with the same budget would pay for the same nothing.
                raise PermanentUpstreamError(
                    "the completion API used the whole token budget without writing a reply; raise max_tokens",
                    code="upstream_empty",
                )
            empty = TransientUpstreamError("the completion API returned an empty reply", code="upstream_empty")
            raise RetryableAttempt(empty, None, billed=usage)
        return Completion(
            text=text, finish_reason=finish, model=getattr(response, "model", None) or self.model,
            usage=usage, latency_ms=0, request_id=getattr(response, "_request_id", None),
        )

def permanent_code(status: int, upstream_code: str | None) -> str:
    """A stable coach code for a non-retryable upstream answer."""
    code = (upstream_code or "").lower()
    if "content_policy" in code or "content_filter" in code or code == "moderation_blocked":
        return "upstream_content_policy"
    if status == 401 or code in ("invalid_api_key", "invalid_organization"):
        return "upstream_auth"
    if status == 403:
        return "upstream_forbidden"
    if status == 404:
        return "upstream_model_not_found" if code == "model_not_found" else "upstream_not_found"
    if code == "context_length_exceeded":
        return "upstream_context_length"
    return "upstream_bad_request"


def parse_retry_after(headers: Any) -> float | None:
    """Seconds to wait from `retry-after-ms` or `Retry-After` (seconds or an HTTP date), else None."""
    if headers is None:
        return None
    millis = headers.get("retry-after-ms")
    if millis is not None:
        try:
            value = float(millis) / 1000
            if math.isfinite(value) and value >= 0:
                return value
        except ValueError:
            pass
    raw = headers.get("retry-after")
    if raw is None:
        return None
    try:
        value = float(raw)
        return value if math.isfinite(value) and value >= 0 else None
    except ValueError:
        pass
    from email.utils import parsedate_to_datetime

    try:
        when = parsedate_to_datetime(raw)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def _usage_of(response: Any, messages: list[dict[str, str]], text: str) -> Usage:
    usage = getattr(response, "usage", None)
    if usage is not None and getattr(usage, "total_tokens", None) is not None:
        prompt = int(usage.prompt_tokens or 0)
        completion = int(usage.completion_tokens or 0)
        return Usage(prompt_tokens=prompt, completion_tokens=completion,
                     total_tokens=int(usage.total_tokens or prompt + completion), estimated=False)
    prompt = count_chat_tokens(messages)
    completion = count_tokens(text)
    return Usage(prompt_tokens=prompt, completion_tokens=completion, total_tokens=prompt + completion,
                 estimated=True)


def _one_line(text: str, limit: int = 300) -> str:
    flat = re.sub(r"\s+", " ", text).strip()
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


# -- offline ----------------------------------------------------------------------------------------------


class OfflineProvider:
    """The embedded critic: deterministic, no network, no key, free. It names itself as the model."""

    name: Literal["offline"] = "offline"

    def __init__(self) -> None:
        from coach.domain.critic import OFFLINE_MODEL

        self.model: str = OFFLINE_MODEL

    def complete(
        self,
        messages: list[dict[str, str]],
        *,
        max_tokens: int = DEFAULT_MAX_FEEDBACK_TOKENS,
        stop: list[str] | None = None,
        temperature: float = 0.7,
    ) -> Completion:
        from coach.domain.critic import write_critique
        from coach.domain.prompt import extract_story

        started = time.monotonic()
        title, story = extract_story(messages, keep_truncation_notice=True)
        if not story.strip():
            raise InputError("the request has no story text to critique", code="empty_story")
        text = str(write_critique(story, title=title))
        finish = "stop"
        for marker in stop or []:
            if marker and marker in text:
                text = text[: text.index(marker)]
        if estimate_tokens(text) > max_tokens:
            text, finish = text[: max_tokens * 4], "length"
        prompt = estimate_tokens("".join(m.get("content", "") for m in messages))
        completion = estimate_tokens(text)
        return Completion(
            text=text, finish_reason=finish, model=self.model,
            usage=Usage(prompt_tokens=prompt, completion_tokens=completion, total_tokens=prompt + completion,
                        estimated=True),
            latency_ms=int((time.monotonic() - started) * 1000), attempts=1, request_id=None,
        )


# -- factory ----------------------------------------------------------------------------------------------


def make_provider(
    name: str,
    model: str | None = None,
    *,
    api_key: str | None = None,
    base_url: str | None = None,
    timeout: float | None = None,
    pool: int = 10,
) -> CompletionProvider:
    """A provider by name; what the call leaves out comes from the deployment settings. The model: `model`,
    COACH_MODEL, or the provider's default. openai: the key from `api_key` or OPENAI_API_KEY, the server from
    `base_url` or OPENAI_BASE_URL (default: OpenAI). bedrock: the AWS credential chain and region
    (COACH_BEDROCK_REGION or AWS_REGION); `pool` sizes the connection pool to the number of calls in flight."""
    chosen = (name or "").strip().lower()
    if chosen == "offline":
        return OfflineProvider()
    cfg = Settings.from_env()
    wait = timeout if timeout is not None else DEFAULT_COMPLETION_TIMEOUT_S
    if chosen == "openai":
        key = api_key or cfg.openai_api_key
        if not key:
            raise ConfigError("the openai provider needs an API key: set OPENAI_API_KEY or use provider offline")
        chosen_model = model or cfg.model
        if not chosen_model:
            raise ConfigError(OPENAI_MODEL_REQUIRED, code="model_required")
        return OpenAIProvider(chosen_model, api_key=key, base_url=base_url or cfg.openai_base_url or None,
                              timeout=wait, pool=pool)
    if chosen == "bedrock":
        from coach.adapters.bedrock import BedrockProvider
        from coach.domain.bedrock_models import DEFAULT_TEACHER_MODEL

        return BedrockProvider(model or cfg.model or DEFAULT_TEACHER_MODEL, timeout=wait, pool=pool)
    raise ConfigError(f"unknown provider '{name}': use offline, openai or bedrock", code="unknown_provider")
