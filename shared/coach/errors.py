"""Errors with stable codes.

Every failure a user can cause or meet has a code that stays the same across releases, so scripts,
the state machine's Fail cause and API clients can branch on it. Messages are one line and say the fix.
"""

from __future__ import annotations


class CoachError(Exception):
    """Base error: a stable `code` and a one-line, human `message`."""

    code = "coach_error"

    def __init__(self, message: str, *, code: str | None = None) -> None:
        super().__init__(message)
        if code:
            self.code = code
        self.message = message

    def __str__(self) -> str:
        return f"{self.code}: {self.message}"


class InputError(CoachError):
    """The caller gave something unusable (bad path, bad option, bad request)."""

    code = "bad_input"


class SourceError(CoachError):
    """A story source cannot be read (missing directory, empty, bad credentials, banned subreddit)."""

    code = "source_error"


class ConfigError(CoachError):
    """Configuration is missing or inconsistent (no API key for the openai provider, unknown provider)."""

    code = "config_error"


class UpstreamError(CoachError):
    """The completion or fine-tuning API failed."""

    code = "upstream_error"
    retryable = False

    def __init__(self, message: str, *, code: str | None = None, status: int | None = None,
                 retry_after: float | None = None, retryable: bool | None = None) -> None:
        super().__init__(message, code=code)
        self.status = status
        self.retry_after = retry_after
        if retryable is not None:
            self.retryable = retryable


class RateLimitedError(UpstreamError):
    """The upstream API said 429 and retries did not get through."""

    code = "upstream_rate_limited"
    retryable = True


class TransientUpstreamError(UpstreamError):
    """5xx, timeouts, connection errors: worth retrying later (the message goes back to the queue)."""

    code = "upstream_unavailable"
    retryable = True


class PermanentUpstreamError(UpstreamError):
    """400/401/403/404/content policy: retrying cannot help; the story fails with this reason."""

    code = "upstream_rejected"
    retryable = False


class BudgetExceededError(CoachError):
    """The build's budget does not allow another paid call."""

    code = "budget_exceeded"


def describe_validation_error(exc: Exception, *, limit: int = 3) -> str:
    """One line from a pydantic ValidationError: 'field.path: problem; ...'."""
    errors = getattr(exc, "errors", None)
    if not callable(errors):
        return str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    parts = []
    for err in errors()[:limit]:
        where = ".".join(str(p) for p in err.get("loc", ())) or "input"
        parts.append(f"{where}: {err.get('msg', 'invalid')}")
    more = len(errors()) - limit
    return "; ".join(parts) + (f"; and {more} more" if more > 0 else "")
