"""Checks made before the resolver runs: API key, media type, body size and encoding.

They come first because the resolver validates the body before any route code or middleware sees the
request: a client without a key must get 401, not a verdict on its JSON, and a body that is not UTF-8
must get a 400 rather than fail inside the JSON parser.
"""

from __future__ import annotations

import base64
import binascii
import hmac
from collections.abc import Callable, Mapping
from typing import Any

from coach.api.errors import ApiError, unsupported_media_type

CRITIQUE_PATH = "/critiques"


def _header(event: Mapping[str, Any], name: str) -> str | None:
    headers = event.get("headers") or {}
    wanted = name.lower()
    for key, value in headers.items():
        if str(key).lower() == wanted and value is not None:
            return str(value)
    return None


def _is_critique_request(event: Mapping[str, Any]) -> bool:
    route = event.get("resource") or event.get("path")
    return str(event.get("httpMethod", "")).upper() == "POST" and route == CRITIQUE_PATH


def check_api_key(event: Mapping[str, Any], expected: str | None) -> None:
    if not expected:
        return
    given = _header(event, "x-api-key")
    if given is None or not given.strip():
        raise ApiError(401, "missing_api_key", "send your API key in the x-api-key header")
    if not hmac.compare_digest(given.strip().encode(), expected.encode()):
        raise ApiError(403, "invalid_api_key", "the API key in x-api-key is not valid")


def check_media_type(event: Mapping[str, Any]) -> None:
    raw = (_header(event, "content-type") or "").strip()
    media_type, _, params = raw.partition(";")
    if media_type.strip().lower() != "application/json":
        raise unsupported_media_type(raw)
    for param in params.split(";"):
        key, _, value = param.partition("=")
        if key.strip().lower() == "charset" and value.strip().strip('"').lower() not in ("utf-8", "utf8"):
            raise ApiError(415, "unsupported_charset",
                           f"send the JSON body as UTF-8 (got charset {value.strip()[:40]})")


def decoded_body(event: Mapping[str, Any], max_bytes: int) -> str | None:
    """The body as text: base64 undone, size checked, UTF-8 checked."""
    body = event.get("body")
    if body is None:
        return None
    if event.get("isBase64Encoded"):
        try:
            raw = base64.b64decode(body, validate=True)
        except (binascii.Error, ValueError):
            raise ApiError(400, "invalid_encoding", "the request body is not valid base64") from None
    else:
        raw = body.encode("utf-8", errors="surrogatepass") if isinstance(body, str) else bytes(body)
    if len(raw) > max_bytes:
        raise ApiError(413, "request_too_large",
                       f"the request body is {len(raw):,} bytes; the limit is {max_bytes:,} bytes")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ApiError(400, "invalid_encoding",
                       f"the request body is not valid UTF-8 (byte {exc.start}): send UTF-8 text") from None


def admit(event: Mapping[str, Any], *, api_key: str | None, max_body_bytes: int) -> dict[str, Any]:
    """The event to resolve (with a text body), or an ApiError for the client.

    Only POST /critiques is gated: /health and /swagger stay open, like the cloud deployment where API
    Gateway asks for the key on POST /critiques alone.
    """
    if not _is_critique_request(event):
        return dict(event)
    check_api_key(event, api_key)
    check_media_type(event)
    text = decoded_body(event, max_body_bytes)
    return {**_with_canonical_media_type(event), "body": text, "isBase64Encoded": False}


def _with_canonical_media_type(event: Mapping[str, Any]) -> dict[str, Any]:
    # Media types are case-insensitive, but the resolver's body parser compares "application/json" as is.
    out = dict(event)
    for field in ("headers", "multiValueHeaders"):
        headers = event.get(field)
        if not headers:
            continue
        rewritten = {}
        for name, value in headers.items():
            if str(name).lower() == "content-type":
                value = [_canonical(v) for v in value] if isinstance(value, list) else _canonical(value)
            rewritten[name] = value
        out[field] = rewritten
    return out


def _canonical(value: Any) -> str:
    media_type, sep, params = str(value).partition(";")
    return media_type.strip().lower() + (sep + params if sep else "")


def handle(resolve: Callable[[dict[str, Any], Any], dict[str, Any]], event: Mapping[str, Any],
           context: Any, *, api_key: str | None, max_body_bytes: int) -> dict[str, Any]:
    """Gate, then resolve. Anything the gate refuses is answered in the API's error shape."""
    try:
        admitted = admit(event, api_key=api_key, max_body_bytes=max_body_bytes)
    except ApiError as exc:
        return exc.proxy_response()
    return resolve(admitted, context)
