"""Every failure of the critique API as one JSON shape: {"error": {"code", "message"}}.

Codes are stable (clients branch on them); messages are one line, say what to fix, and never carry a
stack trace, the request body or anything from the server's configuration.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from http import HTTPStatus
from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.event_handler import Response, content_types
from aws_lambda_powertools.event_handler.exceptions import NotFoundError
from aws_lambda_powertools.event_handler.openapi.exceptions import (
    RequestUnsupportedContentType,
    RequestValidationError,
)

from coach.api.models import ErrorResponse

logger = Logger(child=True)

MAX_MESSAGE_CHARS = 400


def error_body(code: str, message: str) -> dict[str, dict[str, str]]:
    one_line = " ".join(message.split())
    if len(one_line) > MAX_MESSAGE_CHARS:
        one_line = one_line[: MAX_MESSAGE_CHARS - 1] + "…"
    return {"error": {"code": code, "message": one_line}}


class ApiError(Exception):
    """An answer other than a critique: HTTP status, stable code, one-line message, extra headers."""

    def __init__(self, status: int, code: str, message: str, *,
                 headers: Mapping[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = int(status)
        self.code = code
        self.message = message
        self.headers = dict(headers or {})

    def __str__(self) -> str:
        return f"{self.status} {self.code}: {self.message}"

    def body(self) -> dict[str, dict[str, str]]:
        return error_body(self.code, self.message)

    def response(self) -> Response:
        """For the resolver's exception handlers."""
        return Response(status_code=self.status, content_type=content_types.APPLICATION_JSON,
                        body=self.body(), headers=self.headers)

    def proxy_response(self) -> dict[str, Any]:
        """An API Gateway proxy result, for answers given before the resolver runs."""
        headers = {"Content-Type": content_types.APPLICATION_JSON, **self.headers}
        return {"statusCode": self.status, "headers": headers,
                "multiValueHeaders": {k: [v] for k, v in headers.items()},
                "body": json.dumps(self.body(), separators=(",", ":")), "isBase64Encoded": False}


def retry_after_header(seconds: float | None, default: int = 1) -> dict[str, str]:
    """Retry-After in whole seconds (the header takes an integer), rounded up, at least one."""
    if seconds is None or not math.isfinite(seconds) or seconds <= 0:
        return {"Retry-After": str(default)}
    return {"Retry-After": str(max(1, math.ceil(seconds)))}


# ------------------------------------------------------------------ request validation -> 400 / 413

def _where(loc: Sequence[Any]) -> str:
    # Powertools prefixes body errors with "body"; the client thinks in field names.
    parts = [str(p) for p in loc if p != "body"]
    return ".".join(parts)


def from_validation_errors(errors: Sequence[Mapping[str, Any]]) -> ApiError:
    """The first problem decides the code; the message lists up to three, without echoing input."""
    if not errors:
        return ApiError(400, "invalid_request", "the request is invalid")
    first = errors[0]
    kind = str(first.get("type", ""))
    loc = tuple(first.get("loc", ()))
    if kind == "json_invalid":
        detail = (first.get("ctx") or {}).get("error") or "invalid JSON"
        position = next((p for p in loc if isinstance(p, int)), None)
        at = f" at character {position}" if position is not None else ""
        return ApiError(400, "malformed_json", f"the request body is not valid JSON ({detail}{at})")
    if kind in ("empty_story", "invalid_text"):
        return ApiError(400, kind, str(first.get("msg", kind)))
    if kind == "string_unicode":  # JSON escapes such as "\ud800" decode to half a surrogate pair
        return ApiError(400, "invalid_text", f"{_where(loc) or 'body'} contains an unpaired surrogate escape "
                        "(\\ud800-\\udfff), which is not text")
    if kind == "missing" and not _where(loc):
        return ApiError(400, "missing_body", 'send a JSON object such as {"story": "..."}')
    if kind in ("model_attributes_type", "dict_type", "model_type") and not _where(loc):
        return ApiError(400, "invalid_request",
                        'the request body must be a JSON object such as {"story": "..."}')
    parts = []
    for err in errors[:3]:
        where = _where(tuple(err.get("loc", ()))) or "body"
        msg = str(err.get("msg") or err.get("type") or "invalid")
        if err.get("type") == "extra_forbidden":
            msg = "unknown field (the API accepts story and title)"
        parts.append(f"{where}: {msg}")
    more = len(errors) - 3
    return ApiError(400, "invalid_request", "; ".join(parts) + (f"; and {more} more" if more > 0 else ""))


# ------------------------------------------------------------------ wiring into the resolver

def install(app: Any, allowed_methods: Mapping[str, Sequence[str]]) -> None:
    """Register the handlers that turn every failure into our error shape.

    `allowed_methods` maps each path to its methods, so a known path with the wrong method is a 405
    (with Allow) rather than a 404.
    """

    @app.exception_handler(ApiError)
    def _api_error(exc: ApiError) -> Response:
        if exc.status >= 500:
            logger.warning("critique request failed", extra={"status": exc.status, "code": exc.code})
        return exc.response()

    @app.exception_handler(RequestValidationError)
    def _invalid(exc: RequestValidationError) -> Response:
        return from_validation_errors(exc.errors()).response()

    @app.exception_handler(RequestUnsupportedContentType)
    def _media_type(exc: RequestUnsupportedContentType) -> Response:
        return unsupported_media_type("").response()

    @app.not_found
    def _not_found(exc: NotFoundError) -> Response:
        event = app.current_event
        methods = allowed_methods.get(event.path)
        if methods:
            allow = ", ".join(methods)
            return ApiError(405, "method_not_allowed", f"{event.http_method} is not allowed on {event.path}: "
                            f"use {allow}", headers={"Allow": allow}).response()
        return ApiError(404, "not_found", f"no such resource: {event.path[:100]}; see /swagger").response()

    @app.exception_handler(Exception)
    def _unexpected(exc: Exception) -> Response:
        # Logged with its stack for the operator; the client only learns that it was our fault.
        logger.exception("unexpected error in the critique API")
        return ApiError(500, "internal_error",
                        "the service failed unexpectedly; the error was logged").response()


def unsupported_media_type(given: str) -> ApiError:
    shown = f" (got '{given[:80]}')" if given else ""
    return ApiError(415, "unsupported_media_type",
                    f"send the request as JSON with Content-Type: application/json{shown}")


# ------------------------------------------------------------------ the OpenAPI description of errors

_DESCRIPTIONS: dict[int, str] = {
    400: "Invalid request: malformed JSON, empty story, wrong types, unknown fields, title too long.",
    401: "Missing API key (header `x-api-key`).",
    403: "Wrong API key.",
    404: "No such resource.",
    405: "Method not allowed on this resource.",
    413: "Story (or request body) over the size limit; the message names the limit.",
    415: "Content-Type is not application/json.",
    429: "The model provider is rate limiting requests; retry after the `Retry-After` header's seconds.",
    500: "Unexpected failure of the service (never caused by the request's content).",
    502: "The model failed: an upstream error, or a critique that twice failed the house standard.",
    503: "The model provider is unavailable or timed out; retry later.",
}


def documented(*statuses: int) -> dict[int, dict[str, Any]]:
    """Response entries for the route decorator: each status with the ErrorResponse schema."""
    out: dict[int, dict[str, Any]] = {}
    for status in statuses:
        entry: dict[str, Any] = {
            "description": _DESCRIPTIONS.get(status, HTTPStatus(status).phrase),
            "content": {content_types.APPLICATION_JSON: {"model": ErrorResponse}},
        }
        if status == 429:
            entry["headers"] = {"Retry-After": {"description": "Seconds to wait before retrying.",
                                                "schema": {"type": "integer"}}}
        out[status] = entry
    return out


# ------------------------------------------------------------------ the body parser

def parse_json_body(text: str) -> Any:
    """json.loads for request bodies: every failure is a JSONDecodeError, so it becomes a 400.

    The standard parser raises other errors for hostile input (RecursionError for deep nesting,
    ValueError for integers over 4,300 digits) and accepts NaN and Infinity, which are not JSON.
    """

    def reject_constant(name: str) -> Any:
        raise json.JSONDecodeError(f"{name} is not valid JSON", text, text.find(name))

    if text.startswith("\ufeff"):  # a byte order mark may precede JSON text (RFC 8259 lets parsers skip it)
        text = text[1:]
    try:
        return json.loads(text, parse_constant=reject_constant)
    except json.JSONDecodeError:
        raise
    except RecursionError:
        raise json.JSONDecodeError("nested too deeply", text, 0) from None
    except ValueError as exc:
        raise json.JSONDecodeError(str(exc).split(":")[0], text, 0) from None
