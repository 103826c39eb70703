"""Helpers for the critique API tests: raw HTTP calls, a sample story, the error-shape check."""

from __future__ import annotations

import http.client
import json
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit


@dataclass
class HttpReply:
    status: int
    headers: dict[str, str]  # lower-case names
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", errors="replace")


def http_call(base_url: str, method: str, path: str, body: bytes | str | dict | None = None, *,
              headers: dict[str, str] | None = None, timeout: float = 60.0) -> HttpReply:
    """One request with nothing added: the caller decides every header and byte of the body."""
    parts = urlsplit(base_url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=timeout)
    if isinstance(body, dict):
        data: bytes | None = json.dumps(body).encode()
        headers = {"Content-Type": "application/json", **(headers or {})}
    elif isinstance(body, str):
        data = body.encode("utf-8")
    else:
        data = body
    try:
        conn.request(method, path, body=data, headers=headers or {})
        response = conn.getresponse()
        payload = response.read()
        return HttpReply(response.status, {k.lower(): v for k, v in response.getheaders()}, payload)
    finally:
        conn.close()


def post_story(base_url: str, story: Any, *, title: Any = None, headers: dict[str, str] | None = None,
               **extra: Any) -> HttpReply:
    body: dict[str, Any] = {"story": story, **extra}
    if title is not None:
        body["title"] = title
    return http_call(base_url, "POST", "/critiques", body, headers=headers)


STORY = (
    "The lighthouse keeper counted the ships that did not come back. Forty-one, by her tally, since the "
    "winter her brother left on the Marigold and the sea took the harbour wall with it.\n\n"
    "\"You'll wear out the glass,\" the inspector said quietly, watching her polish the lens.\n\n"
    "She kept polishing it anyway. The light had to be clean. Somewhere past the shoals a boat might still "
    "be looking for it, and she would not be the reason it missed the turn."
)


def assert_error(reply, status: int, code: str) -> dict:
    assert reply.status == status, reply.text
    assert reply.headers["content-type"].startswith("application/json")
    body = reply.json()
    assert set(body) == {"error"}
    assert body["error"]["code"] == code
    assert body["error"]["message"] and "\n" not in body["error"]["message"]
    assert "Traceback" not in reply.text
    return body["error"]


