"""The retry loop every network provider shares: capped exponential backoff with full jitter.

A provider implements one attempt (`_attempt`) and raises `RetryableAttempt` for a failure worth trying
again; the loop counts attempts, honours the server's Retry-After, adds up tokens billed for failed
attempts, and on the last one raises the provider's own coded error with when to try again.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from typing import Any

from coach.domain.prompt import DEFAULT_MAX_FEEDBACK_TOKENS
from coach.domain.records import Usage
from coach.errors import ConfigError, UpstreamError

RETRY_AFTER_CAP = 60.0


class RetryableAttempt(Exception):
    """One failed attempt that may be retried: the error to raise if it is the last, the server's wait,
    and any tokens the failed attempt was still billed for (an empty reply costs money too)."""

    def __init__(self, error: UpstreamError, retry_after: float | None, billed: Usage | None = None) -> None:
        super().__init__(str(error))
        self.error = error
        self.retry_after = retry_after
        self.billed = billed or Usage()


class AdaptRequest(Exception):
    """The server refused one request parameter: adapt the request and send it again (not a failure)."""

    def __init__(self, error: UpstreamError, param: str) -> None:
        super().__init__(str(error))
        self.error = error
        self.param = param


class RetryingProvider:
    """Base of the network providers. Subclasses set `model` and implement `_attempt(request)`."""

    model: str

    def __init__(self, *, max_retries: int, backoff_base: float, backoff_cap: float,
                 sleep: Callable[[float], None] = time.sleep, rng: random.Random | None = None) -> None:
        if max_retries < 0:
            raise ConfigError("max_retries must be 0 or more")
        self.max_retries = max_retries
        self.backoff_base = backoff_base
        self.backoff_cap = backoff_cap
        self._sleep = sleep
        self._rng = rng or random.Random()

    def backoff(self, attempt: int) -> float:
        """Full jitter: uniform in [0, min(cap, base * 2^(attempt-1))]."""
        ceiling = min(self.backoff_cap, self.backoff_base * 2 ** (attempt - 1))
        return self._rng.uniform(0, ceiling)

    def complete(self, messages: list[dict[str, str]], *, max_tokens: int = DEFAULT_MAX_FEEDBACK_TOKENS,
                 stop: list[str] | None = None, temperature: float = 0.7) -> Any:
        started = time.monotonic()
        billed = Usage()
        attempt = 0
        adaptations = 0
        while True:
            attempt += 1
            request = self._request(messages, max_tokens=max_tokens, stop=stop, temperature=temperature)
            try:
                completion = self._attempt(request)
            except RetryableAttempt as failure:
                billed = billed + failure.billed
                if attempt > self.max_retries:
                    raise self._exhausted(failure, attempt) from None
                self._sleep(self._wait(failure.retry_after, attempt))
                continue
            except AdaptRequest as refused:
                # Adapting the request is not a retry of a failure, but it is an attempt; allow two.
                adaptations += 1
                if adaptations > 2 or not self._adapt(refused.param):
                    raise refused.error from None
                continue
            usage = billed + completion.usage if billed.total_tokens else completion.usage
            return completion.model_copy(update={
                "usage": usage, "attempts": attempt,
                "latency_ms": int((time.monotonic() - started) * 1000),
            })

    # -- what a provider supplies ---------------------------------------------------------------------

    def _request(self, messages: list[dict[str, str]], *, max_tokens: int, stop: list[str] | None,
                 temperature: float) -> dict[str, Any]:
        raise NotImplementedError

    def _attempt(self, request: dict[str, Any]) -> Any:
        raise NotImplementedError

    def _adapt(self, param: str | None) -> bool:
        return False

    # -- waits and final errors ------------------------------------------------------------------------

    def _wait(self, retry_after: float | None, attempt: int) -> float:
        if retry_after is not None and retry_after >= 0:
            return min(retry_after, RETRY_AFTER_CAP)
        return self.backoff(attempt)

    def _exhausted(self, failure: RetryableAttempt, attempts: int) -> UpstreamError:
        error = failure.error
        error.message = f"{error.message} (gave up after {attempts} attempts)"
        error.args = (error.message,)
        # Tell the caller (e.g. the queue's visibility timeout) when trying again makes sense.
        error.retry_after = (min(failure.retry_after, RETRY_AFTER_CAP) if failure.retry_after is not None
                             else min(self.backoff_cap, self.backoff_base * 2 ** attempts))
        error.attempts = attempts  # type: ignore[attr-defined]
        return error
