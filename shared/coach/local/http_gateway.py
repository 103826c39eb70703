"""A local stand-in for API Gateway (REST, Lambda proxy integration) in front of one handler.

Each HTTP request becomes the v1 proxy event API Gateway would send (resource, path, httpMethod,
headers and multiValueHeaders, query parameters, body with isBase64Encoded, requestContext), and the
handler's proxy result becomes the HTTP response. Bodies that are not UTF-8 are passed base64-encoded,
as API Gateway does for binary media types.

Requests are served by threads but reach the handler one at a time, like one warm Lambda container:
the Powertools resolver keeps the current event in class-level state, so two requests must never be
inside it together.
"""

from __future__ import annotations

import base64
import json
import sys
import threading
import time
import traceback
import uuid
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from coach.local.lambda_runtime import LambdaContext

ProxyHandler = Callable[[dict[str, Any], Any], dict[str, Any]]

# API Gateway's own payload limit.
MAX_PAYLOAD_BYTES = 10 * 1024 * 1024
# An oversized body up to this size is read and dropped before the 413; a bigger one is cut off.
DRAIN_LIMIT_BYTES = 64 * 1024 * 1024
METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS")


def _error(status: int, code: str, message: str) -> tuple[int, dict[str, str], bytes]:
    body = json.dumps({"error": {"code": code, "message": message}}).encode()
    return status, {"Content-Type": "application/json"}, body


class LocalApiGateway:
    """`with LocalApiGateway(handler) as gw: requests.post(gw.url + "/critiques", ...)`."""

    def __init__(
        self,
        handler: ProxyHandler,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        stage: str = "local",
        function_name: str = "coach-critique",
        timeout_s: float = 29.0,
        access_log: Callable[[str], None] | None = None,
    ) -> None:
        self.handler = handler
        self.stage = stage
        self.function_name = function_name
        self.timeout_s = timeout_s
        self.access_log = access_log
        self._invoke_lock = threading.Lock()
        bound = type("_BoundRequestHandler", (_RequestHandler,), {"gateway": self})
        self._httpd = _Server((host, port), bound)
        self._thread: threading.Thread | None = None

    # -- lifecycle --------------------------------------------------------------------------------------

    @property
    def host(self) -> str:
        return str(self._httpd.server_address[0])

    @property
    def port(self) -> int:
        return int(self._httpd.server_address[1])

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    def start(self) -> LocalApiGateway:
        if self._thread is None:
            self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.1},
                                            name="local-api-gateway", daemon=True)
            self._thread.start()
        return self

    def serve_forever(self) -> None:
        self._httpd.serve_forever(poll_interval=0.25)

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> LocalApiGateway:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- translation ------------------------------------------------------------------------------------

    def event_for(self, method: str, target: str, headers: list[tuple[str, str]], body: bytes,
                  source_ip: str) -> dict[str, Any]:
        parts = urlsplit(target)
        path = unquote(parts.path) or "/"
        multi_query = parse_qs(parts.query, keep_blank_values=True) if parts.query else {}
        multi_headers: dict[str, list[str]] = {}
        for name, value in headers:
            multi_headers.setdefault(name, []).append(value)
        single_headers = {name: values[-1] for name, values in multi_headers.items()}
        if body:
            try:
                text: str | None = body.decode("utf-8")
                encoded = False
            except UnicodeDecodeError:
                text, encoded = base64.b64encode(body).decode("ascii"), True
        else:
            text, encoded = None, False
        lower = {k.lower(): v for k, v in single_headers.items()}
        request_id = str(uuid.uuid4())
        return {
            "resource": path,
            "path": path,
            "httpMethod": method,
            "headers": single_headers or None,
            "multiValueHeaders": multi_headers or None,
            "queryStringParameters": {k: v[-1] for k, v in multi_query.items()} or None,
            "multiValueQueryStringParameters": multi_query or None,
            "pathParameters": None,
            "stageVariables": None,
            "body": text,
            "isBase64Encoded": encoded,
            "requestContext": {
                "accountId": "000000000000",
                "apiId": "local",
                "resourceId": "local",
                "resourcePath": path,
                "httpMethod": method,
                "path": path,  # no stage prefix locally, so the resolver computes an empty base path
                "stage": self.stage,
                "requestId": request_id,
                "extendedRequestId": request_id,
                "requestTimeEpoch": int(time.time() * 1000),
                "protocol": "HTTP/1.1",
                "domainName": lower.get("host", self.host),
                "identity": {
                    "sourceIp": source_ip,
                    "userAgent": lower.get("user-agent"),
                    "apiKey": lower.get("x-api-key"),
                    "accessKey": None, "accountId": None, "caller": None, "user": None, "userArn": None,
                    "cognitoIdentityId": None, "cognitoIdentityPoolId": None,
                    "cognitoAuthenticationType": None, "cognitoAuthenticationProvider": None,
                },
            },
        }

    def invoke(self, event: dict[str, Any]) -> tuple[int, dict[str, str], bytes]:
        context = LambdaContext(function_name=self.function_name, timeout_s=self.timeout_s,
                                aws_request_id=event["requestContext"]["requestId"])
        try:
            with self._invoke_lock:
                result = self.handler(event, context)
            return self.http_response(result)
        except Exception:
            # What API Gateway does when the function fails: a 502, with the cause only in the logs.
            traceback.print_exc(file=sys.stderr)
            return _error(502, "handler_failed", "the function failed; see the server's log")

    @staticmethod
    def http_response(result: Any) -> tuple[int, dict[str, str], bytes]:
        if not isinstance(result, dict) or not isinstance(result.get("statusCode"), int):
            raise ValueError("malformed Lambda proxy response: no integer statusCode")
        headers: dict[str, str] = {}
        for name, values in (result.get("multiValueHeaders") or {}).items():
            headers[name] = ", ".join(str(v) for v in values)
        for name, value in (result.get("headers") or {}).items():
            headers[name] = str(value)
        body = result.get("body") or ""
        data = base64.b64decode(body) if result.get("isBase64Encoded") else str(body).encode("utf-8")
        return int(result["statusCode"]), headers, data


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128  # the default backlog of 5 resets connections when many clients arrive at once


class _RequestHandler(BaseHTTPRequestHandler):
    gateway: LocalApiGateway
    protocol_version = "HTTP/1.1"  # keep-alive, so clients reuse connections
    # Headers and body go out in separate writes; with Nagle on, the body waits for the client's delayed ACK.
    disable_nagle_algorithm = True
    server_version = "coach-local-gateway"

    def _handle(self) -> None:
        gateway = self.gateway
        started = time.monotonic()
        status, headers, data = self._answer()
        self.send_response(status)
        sent = {k.lower() for k in headers}
        for name, value in headers.items():
            if name.lower() not in ("content-length", "connection", "transfer-encoding"):
                self.send_header(name, value)
        if "content-type" not in sent and data:
            self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)
        if gateway.access_log is not None:
            gateway.access_log(f'{self.command} {self.path[:200]} {status} {len(data)}B '
                               f"{(time.monotonic() - started) * 1000:.0f}ms")

    def _answer(self) -> tuple[int, dict[str, str], bytes]:
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            self.close_connection = True
            return _error(411, "length_required", "send the body with a Content-Length header, not chunked")
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            self.close_connection = True
            return _error(400, "bad_content_length", "the Content-Length header is not a number")
        if length < 0:
            self.close_connection = True
            return _error(400, "bad_content_length", "the Content-Length header is negative")
        if length > MAX_PAYLOAD_BYTES:
            self._discard(length)
            return _error(413, "request_too_large",
                          f"the request body is {length:,} bytes; API Gateway accepts at most "
                          f"{MAX_PAYLOAD_BYTES:,}")
        body = self.rfile.read(length) if length else b""
        event = self.gateway.event_for(self.command, self.path, list(self.headers.items()), body,
                                       self.client_address[0])
        return self.gateway.invoke(event)

    def _discard(self, length: int) -> None:
        """Read and drop an oversized body, so the client sees the 413 instead of a broken pipe."""
        self.close_connection = True  # whatever is left unread must not be parsed as the next request
        remaining = length if length <= DRAIN_LIMIT_BYTES else 0
        while remaining > 0:
            chunk = self.rfile.read(min(remaining, 1 << 20))
            if not chunk:
                break
            remaining -= len(chunk)

    def log_message(self, format: str, *args: Any) -> None:
        pass  # the gateway's access_log reports requests; http.server's stderr lines would duplicate it


for _method in METHODS:
    setattr(_RequestHandler, f"do_{_method}", _RequestHandler._handle)
