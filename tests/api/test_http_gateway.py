"""The local API Gateway: HTTP requests become REST proxy events, proxy results become HTTP responses."""

from __future__ import annotations

import base64
import json
import socket
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from coach.local.http_gateway import LocalApiGateway
from tests.api.api_support import http_call


class Recorder:
    """A handler that keeps the events it got and answers with a scripted proxy result."""

    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []
        self.contexts: list[Any] = []
        self.result: Any = {"statusCode": 200, "headers": {"Content-Type": "application/json"}, "body": "{}"}
        self.inside = 0
        self.overlaps = 0
        self._lock = threading.Lock()

    def __call__(self, event: dict[str, Any], context: Any) -> Any:
        with self._lock:
            self.inside += 1
            self.overlaps += self.inside > 1
        try:
            self.events.append(event)
            self.contexts.append(context)
            threading.Event().wait(0.01)
            if isinstance(self.result, Exception):
                raise self.result
            return self.result
        finally:
            with self._lock:
                self.inside -= 1


@pytest.fixture
def recorder() -> Recorder:
    return Recorder()


@pytest.fixture
def gateway(recorder: Recorder) -> Iterator[LocalApiGateway]:
    with LocalApiGateway(recorder) as running:
        yield running


def test_a_request_becomes_a_rest_proxy_event(gateway, recorder):
    http_call(gateway.url, "POST", "/critiques?lang=en&tag=a&tag=b", '{"story": "x"}',
              headers={"Content-Type": "application/json", "X-Api-Key": "k1", "User-Agent": "tests"})

    [event] = recorder.events
    assert event["resource"] == event["path"] == "/critiques"
    assert event["httpMethod"] == "POST"
    assert event["headers"]["X-Api-Key"] == "k1"
    assert event["multiValueHeaders"]["Content-Type"] == ["application/json"]
    assert event["queryStringParameters"] == {"lang": "en", "tag": "b"}
    assert event["multiValueQueryStringParameters"] == {"lang": ["en"], "tag": ["a", "b"]}
    assert event["body"] == '{"story": "x"}'
    assert event["isBase64Encoded"] is False
    context = event["requestContext"]
    assert context["requestId"] and context["stage"] == "local" and context["path"] == "/critiques"
    assert context["identity"]["sourceIp"] == "127.0.0.1"
    assert context["identity"]["userAgent"] == "tests"
    assert recorder.contexts[0].aws_request_id == context["requestId"]
    assert recorder.contexts[0].get_remaining_time_in_millis() > 0


def test_a_get_without_body_or_query_has_nulls_like_api_gateway(gateway, recorder):
    http_call(gateway.url, "GET", "/health")
    [event] = recorder.events
    assert event["body"] is None
    assert event["queryStringParameters"] is None
    assert event["multiValueQueryStringParameters"] is None


def test_a_body_that_is_not_utf8_is_passed_base64_encoded(gateway, recorder):
    raw = b"\xff\xfe\x00binary"
    http_call(gateway.url, "POST", "/critiques", raw, headers={"Content-Type": "application/octet-stream"})
    [event] = recorder.events
    assert event["isBase64Encoded"] is True
    assert base64.b64decode(event["body"]) == raw


def test_the_proxy_result_becomes_the_http_response(gateway, recorder):
    recorder.result = {"statusCode": 429, "headers": {"Content-Type": "application/json", "Retry-After": "3"},
                       "multiValueHeaders": {"X-Trace": ["a", "b"]}, "body": '{"error": 1}'}
    reply = http_call(gateway.url, "GET", "/x")
    assert reply.status == 429
    assert reply.headers["retry-after"] == "3"
    assert reply.headers["x-trace"] == "a, b"
    assert reply.json() == {"error": 1}


def test_a_base64_result_is_decoded(gateway, recorder):
    recorder.result = {"statusCode": 200, "headers": {"Content-Type": "image/png"},
                       "body": base64.b64encode(b"\x89PNG").decode(), "isBase64Encoded": True}
    assert http_call(gateway.url, "GET", "/x").body == b"\x89PNG"


@pytest.mark.parametrize("result", [RuntimeError("boom"), {"body": "no status"}, "not a dict"],
                         ids=["raises", "no_status", "not_a_dict"])
def test_a_failing_function_is_a_502_like_api_gateway(gateway, recorder, result):
    recorder.result = result
    reply = http_call(gateway.url, "GET", "/x")
    assert reply.status == 502
    assert reply.json()["error"]["code"] == "handler_failed"
    assert "Traceback" not in reply.text and "boom" not in reply.text
    assert http_call(gateway.url, "GET", "/x").status == 502  # the server is still up


def test_a_body_over_10_mb_is_413_without_reaching_the_function(gateway, recorder):
    reply = http_call(gateway.url, "POST", "/critiques", b"a" * (10 * 1024 * 1024 + 1),
                      headers={"Content-Type": "application/json"})
    assert reply.status == 413
    assert reply.json()["error"]["code"] == "request_too_large"
    assert recorder.events == []


def test_a_chunked_body_is_411(gateway, recorder):
    with socket.create_connection((gateway.host, gateway.port), timeout=10) as sock:
        sock.sendall(b"POST /critiques HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
                     b"Content-Type: application/json\r\n\r\n2\r\n{}\r\n0\r\n\r\n")
        head = sock.recv(4096).decode()
    assert head.startswith("HTTP/1.1 411")
    assert recorder.events == []


def test_requests_reach_the_function_one_at_a_time(gateway, recorder):
    threads = [threading.Thread(target=http_call, args=(gateway.url, "GET", f"/n{i}")) for i in range(12)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(recorder.events) == 12
    assert recorder.overlaps == 0


def test_one_connection_carries_several_requests(gateway, recorder):
    import http.client

    conn = http.client.HTTPConnection(gateway.host, gateway.port, timeout=10)
    try:
        for _ in range(3):
            conn.request("POST", "/critiques", body=json.dumps({"a": 1}),
                         headers={"Content-Type": "application/json"})
            response = conn.getresponse()
            assert response.status == 200
            response.read()
    finally:
        conn.close()
    assert len(recorder.events) == 3
