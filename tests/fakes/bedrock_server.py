"""A small Amazon Bedrock HTTP server for tests, spoken to by the real boto3 clients.

One server answers both `bedrock-runtime` (Converse) and the `bedrock` control plane (model customization
jobs, custom models, custom model deployments, foundation models, batch inference jobs): their paths do
not overlap. Point a client at it with `endpoint_url=server.endpoint_url`, or set
`AWS_ENDPOINT_URL_BEDROCK_RUNTIME` / `AWS_ENDPOINT_URL_BEDROCK` to it. Paths, shapes, status codes and
error codes follow botocore's service models (REST-JSON: an error is its HTTP status, an
`x-amzn-ErrorType` header and a JSON `{"message": ...}` body, so botocore raises a ClientError whose
`Error.Code` is the exception name).

The region of each call is read from the SigV4 credential scope, so a client made for us-west-2 sees the
us-west-2 model catalog. Faults are injected on purpose (random rates per error code, scripted per-call
outcomes, latency), every request is logged, and successful model answers are counted per distinct user
message so a test can assert that a story was paid for exactly once.

    with FakeBedrockServer() as server:
        runtime = boto3.client("bedrock-runtime", endpoint_url=server.endpoint_url, region_name="us-east-1")
        ...
"""

from __future__ import annotations

import json
import random
import re
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from itertools import pairwise
from typing import Any
from urllib.parse import parse_qsl, unquote

from tests.fakes.openai_server import default_critique, estimate_tokens

ACCOUNT = "123456789012"
INVALID_MODEL = "The provided model identifier is invalid."
NO_ACCESS = "You don't have access to the model with the specified model ID."

# Every error the fake answers: code -> (HTTP status from botocore's models, default message).
ERRORS: dict[str, tuple[int, str]] = {
    "ValidationException": (400, "Input validation failed. Check your request parameters and retry."),
    "ConflictException": (400, "The request conflicts with the current state of the resource."),
    "ServiceQuotaExceededException": (400, "The number of requests exceeds the service quota."),
    "AccessDeniedException": (403, NO_ACCESS),
    "ResourceNotFoundException": (404, "The specified resource ARN was not found."),
    "ModelTimeoutException": (408, "Model has timed out in processing the request. Try your request again."),
    "ModelErrorException": (424, "The model returned an error while processing the request."),
    "ThrottlingException": (429, "Too many requests, please wait before trying again."),
    "ModelNotReadyException": (429, "The model is not ready to serve inference requests. Try again later."),
    "InternalServerException": (500, "The server encountered an internal error. Try again later."),
    "ServiceUnavailableException": (503, "The service is temporarily unavailable. Try again later."),
}
RETRYABLE = frozenset({
    "ThrottlingException", "ModelNotReadyException", "ServiceUnavailableException", "ModelTimeoutException",
    "InternalServerException",
})


@dataclass(frozen=True)
class FoundationModel:
    """A catalog entry. `regions` are where the id answers; a `:NNNk` id is the fine-tunable variant."""

    model_id: str
    name: str
    provider: str
    regions: tuple[str, ...]
    inference: tuple[str, ...] = ("ON_DEMAND",)
    customizations: tuple[str, ...] = ()
    on_demand_deployment: bool = False  # a custom model of it can be served by a custom model deployment


_TUNABLE = ("FINE_TUNING", "DISTILLATION")
CATALOG: tuple[FoundationModel, ...] = (
    FoundationModel("amazon.nova-micro-v1:0", "Nova Micro", "Amazon", ("us-east-1",)),
    FoundationModel("amazon.nova-lite-v1:0", "Nova Lite", "Amazon", ("us-east-1",)),
    FoundationModel("amazon.nova-pro-v1:0", "Nova Pro", "Amazon", ("us-east-1",)),
    FoundationModel("amazon.nova-micro-v1:0:128k", "Nova Micro", "Amazon", ("us-east-1",), ("PROVISIONED",),
                    _TUNABLE, on_demand_deployment=True),
    FoundationModel("amazon.nova-lite-v1:0:300k", "Nova Lite", "Amazon", ("us-east-1",), ("PROVISIONED",),
                    _TUNABLE, on_demand_deployment=True),
    FoundationModel("amazon.nova-pro-v1:0:300k", "Nova Pro", "Amazon", ("us-east-1",), ("PROVISIONED",),
                    _TUNABLE, on_demand_deployment=True),
    FoundationModel("meta.llama3-1-8b-instruct-v1:0", "Llama 3.1 8B Instruct", "Meta", ("us-west-2",)),
    FoundationModel("meta.llama3-1-8b-instruct-v1:0:128k", "Llama 3.1 8B Instruct", "Meta", ("us-west-2",),
                    ("PROVISIONED",), ("FINE_TUNING",)),
    FoundationModel("anthropic.claude-3-haiku-20240307-v1:0", "Claude 3 Haiku", "Anthropic",
                    ("us-east-1", "us-west-2")),
    FoundationModel("anthropic.claude-3-haiku-20240307-v1:0:200k", "Claude 3 Haiku", "Anthropic",
                    ("us-west-2",), ("PROVISIONED",), ("FINE_TUNING",)),
)
# Cross-region inference profile prefixes and the region names each one serves from.
PROFILE_GEOGRAPHIES = {"us": "us-", "eu": "eu-", "apac": "ap-", "global": ""}


@dataclass(frozen=True)
class Reply:
    """A scripted Converse answer."""

    text: str
    stop_reason: str = "end_turn"


@dataclass(frozen=True)
class Fault:
    """A scripted error answer; the status comes from ERRORS unless given."""

    code: str
    message: str | None = None
    status: int | None = None


ScriptItem = int | str | Fault | Reply
ReplyFn = Callable[[dict[str, Any]], str]  # receives the Converse request body (with "modelId")


@dataclass
class RequestLog:
    operation: str
    method: str
    path: str
    status: int
    region: str
    error_code: str | None = None
    model_id: str | None = None
    system: str | None = None  # the system blocks' text, joined by newlines
    messages: list[dict[str, Any]] | None = None
    inference_config: dict[str, Any] | None = None
    body: dict[str, Any] = field(default_factory=dict)
    at: float = field(default_factory=time.time)

    @property
    def user_text(self) -> str:
        return user_text(self.messages or [])


class BedrockError(Exception):
    def __init__(self, code: str, message: str | None = None, status: int | None = None) -> None:
        default_status, default_message = ERRORS.get(code, (400, "Error."))
        super().__init__(message or default_message)
        self.code = code
        self.message = message or default_message
        self.status = status or default_status


def blocks_text(blocks: Any) -> str:
    """The text of a list of content blocks ({"text": ...}); other block kinds are skipped."""
    if not isinstance(blocks, list):
        return ""
    return "".join(b["text"] for b in blocks if isinstance(b, dict) and isinstance(b.get("text"), str))


def user_text(messages: list[dict[str, Any]]) -> str:
    return "\n".join(blocks_text(m.get("content")) for m in messages
                     if isinstance(m, dict) and m.get("role") == "user")


def default_reply(body: dict[str, Any]) -> str:
    """An editor critique of the story between the STORY delimiters of the last user message."""
    messages = [{"role": m.get("role"), "content": blocks_text(m.get("content"))}
                for m in body.get("messages") or [] if isinstance(m, dict)]
    return default_critique(messages)


def iso(timestamp: float) -> str:
    return datetime.fromtimestamp(timestamp, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _short_id() -> str:
    return uuid.uuid4().hex[:12]


def _region_from_auth(authorization: str, fallback: str) -> str:
    match = re.search(r"Credential=[^/]+/\d{8}/([a-z0-9-]+)/", authorization or "")
    return match.group(1) if match else fallback


def check_conversation(body: dict[str, Any]) -> None:
    """The conversation rules Converse enforces before any model runs."""
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages or not all(isinstance(m, dict) for m in messages):
        raise BedrockError("ValidationException", "The messages field is required and must not be empty.")
    if messages[0].get("role") != "user":
        raise BedrockError("ValidationException", "A conversation must start with a user message. Try again "
                                                  "with a conversation that starts with a user message.")
    for before, after in pairwise(messages):
        if before.get("role") == after.get("role"):
            raise BedrockError("ValidationException", "A conversation must alternate between user and "
                                                      "assistant roles. Try again.")
    for message in messages:
        if not blocks_text(message.get("content")).strip():
            raise BedrockError("ValidationException", "The content field in the Message object is empty. Add "
                                                      "a ContentBlock object to the content field and try again.")


def shape_answer(text: str, stop_reason: str, config: dict[str, Any]) -> tuple[str, str]:
    """Apply stopSequences (earliest match wins) and then maxTokens (chars/4 tokens) to a model's text."""
    cuts = [text.find(s) for s in config.get("stopSequences") or [] if s and s in text]
    if cuts:
        text, stop_reason = text[: min(cuts)], "stop_sequence"
    limit = config.get("maxTokens")
    if isinstance(limit, int) and limit > 0 and estimate_tokens(text) > limit:
        text, stop_reason = text[: limit * 4], "max_tokens"
    return text, stop_reason


class _Stepper:
    """How a resource moves through its states: one step per Get call, or one per `seconds` of time."""

    def __init__(self, polls: int, seconds: float | None) -> None:
        self.polls_needed, self.seconds = max(1, polls), seconds
        self.polls, self.since = 0, time.monotonic()

    def steps(self) -> int:
        if self.seconds is not None:
            elapsed = time.monotonic() - self.since
            count = int(elapsed // self.seconds) if self.seconds > 0 else 1
            self.since += count * self.seconds
            return count
        self.polls += 1
        if self.polls < self.polls_needed:
            return 0
        self.polls = 0
        return 1


_SETTINGS = frozenset({
    "region", "reply", "fault_rates", "fault_operations", "latency", "extra_models", "disabled_models",
    "max_output_tokens", "polls_per_state", "seconds_per_state", "customization_failure",
    "deployment_failure", "batch_record_error_rate", "batch_failure", "batch_expires", "min_batch_records",
    "min_training_records", "s3_client_factory",
})


class FakeBedrockServer:
    """Amazon Bedrock (runtime and control plane) on 127.0.0.1 in a background thread.

    Converse reply selection, first match wins: a scripted Reply at the head of the script, then the
    reply queue, then `reply` (a string or a callable of the request body), then `default_reply`. Random
    faults (`fault_rates`, e.g. {"ThrottlingException": 0.2}) apply to `fault_operations` (Converse by
    default); a scripted outcome (`push_script`) for an operation decides its next call before any random
    fault is drawn. Settings can be changed while it runs with `configure(...)`.
    """

    def __init__(
        self,
        *,
        region: str = "us-east-1",
        reply: str | ReplyFn | None = None,
        replies: Iterable[str | Reply] = (),
        script: Iterable[ScriptItem] = (),
        fault_rates: dict[str, float] | None = None,
        fault_operations: Iterable[str] = ("Converse",),
        latency: float | tuple[float, float] = 0.0,
        seed: int = 0,
        catalog: Iterable[FoundationModel] = CATALOG,
        extra_models: Iterable[str] = (),
        disabled_models: Iterable[str] = (),
        max_output_tokens: int = 10_000,
        polls_per_state: int = 1,
        seconds_per_state: float | None = None,
        customization_failure: str | None = None,
        deployment_failure: str | None = None,
        batch_record_error_rate: float = 0.0,
        batch_failure: str | None = None,
        batch_expires: bool = False,
        min_batch_records: int = 100,
        min_training_records: int = 8,
        s3_client_factory: Callable[[], Any] | None = None,
    ) -> None:
        self.region = region  # used when a call carries no SigV4 credential scope
        self.reply = reply
        self.fault_rates = dict(fault_rates or {})
        self.fault_operations = tuple(fault_operations)
        self.latency = latency
        self.catalog = {m.model_id: m for m in catalog}
        self.extra_models = set(extra_models)  # answer in every region, like a registered test model
        self.disabled_models = set(disabled_models)  # model access not granted: AccessDeniedException
        self.max_output_tokens = max_output_tokens
        self.polls_per_state = polls_per_state
        self.seconds_per_state = seconds_per_state
        self.customization_failure = customization_failure
        self.deployment_failure = deployment_failure
        self.batch_record_error_rate = batch_record_error_rate
        self.batch_failure = batch_failure
        self.batch_expires = batch_expires
        self.min_batch_records = min_batch_records
        self.min_training_records = min_training_records
        self.s3_client_factory = s3_client_factory

        self._lock = threading.RLock()
        self._rng = random.Random(seed)
        self._scripts: dict[str, list[ScriptItem]] = {"Converse": list(script)}
        self._replies: list[str | Reply] = list(replies)
        self._log: list[RequestLog] = []
        self._successes: Counter[str] = Counter()
        self._usage = {"inputTokens": 0, "outputTokens": 0, "totalTokens": 0}
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()

    # -- lifecycle -------------------------------------------------------------------------------------

    def start(self) -> FakeBedrockServer:
        if self._httpd is not None:
            return self
        handler = type("_BoundHandler", (_Handler,), {"fake": self})
        self._httpd = _Server(("127.0.0.1", 0), handler)
        self._stop.clear()
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05},
                                        name="fake-bedrock", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> FakeBedrockServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def endpoint_url(self) -> str:
        if self._httpd is None:
            raise RuntimeError("the fake Bedrock server is not running")
        return f"http://127.0.0.1:{self._httpd.server_address[1]}"

    # -- configuration ---------------------------------------------------------------------------------

    def configure(self, **changes: Any) -> None:
        """Change settings at runtime, e.g. `configure(fault_rates={}, latency=0.01)`."""
        with self._lock:
            for name, value in changes.items():
                if name not in _SETTINGS:
                    raise AttributeError(f"unknown fake Bedrock setting '{name}'")
                setattr(self, name, set(value) if name in ("extra_models", "disabled_models") else value)

    def reseed(self, seed: int) -> None:
        with self._lock:
            self._rng = random.Random(seed)

    def push_script(self, *items: ScriptItem, operation: str = "Converse") -> None:
        """Outcomes for the next calls of `operation`, in order: "ok"/200, an error code, a Fault or a Reply."""
        with self._lock:
            self._scripts.setdefault(operation, []).extend(items)

    def queue_replies(self, *replies: str | Reply) -> None:
        with self._lock:
            self._replies.extend(replies)

    # -- accounting ------------------------------------------------------------------------------------

    @property
    def requests(self) -> list[RequestLog]:
        with self._lock:
            return list(self._log)

    def converse_requests(self) -> list[RequestLog]:
        return [r for r in self.requests if r.operation == "Converse"]

    def calls(self, operation: str) -> list[RequestLog]:
        return [r for r in self.requests if r.operation == operation]

    @property
    def success_counts(self) -> dict[str, int]:
        """Successful model answers (Converse calls and batch records) per distinct user-message text."""
        with self._lock:
            return dict(self._successes)

    def successes_containing(self, fragment: str) -> int:
        with self._lock:
            return sum(n for text, n in self._successes.items() if fragment in text)

    @property
    def total_successes(self) -> int:
        with self._lock:
            return sum(self._successes.values())

    @property
    def usage_totals(self) -> dict[str, int]:
        with self._lock:
            return dict(self._usage)

    def status_counts(self, operation: str = "Converse") -> dict[int, int]:
        return dict(Counter(r.status for r in self.calls(operation)))

    def error_counts(self, operation: str = "Converse") -> dict[str, int]:
        return dict(Counter(r.error_code for r in self.calls(operation) if r.error_code))

    def _record(self, entry: RequestLog) -> None:
        with self._lock:
            self._log.append(entry)

    def count_success(self, text: str, delta: int) -> None:
        with self._lock:
            self._successes[text] += delta
            if self._successes[text] <= 0:
                del self._successes[text]

    # -- faults ----------------------------------------------------------------------------------------

    def _draw(self, operation: str) -> ScriptItem | None:
        """The scripted or random outcome of this call; None means answer normally."""
        with self._lock:
            script = self._scripts.get(operation)
            if script:
                return script.pop(0)
            if operation not in self.fault_operations or not self.fault_rates:
                return None
            roll, edge = self._rng.random(), 0.0
            for code, rate in sorted(self.fault_rates.items()):
                edge += rate
                if roll < edge:
                    return code
            return None

    @staticmethod
    def _outcome(item: ScriptItem | None) -> Reply | None:
        """Raise for an error outcome; return a scripted Reply; None for a normal answer."""
        if item is None or item in (200, "ok"):
            return None
        if isinstance(item, Reply):
            return item
        if isinstance(item, str):
            item = Fault(item)
        if isinstance(item, int):
            code = next((c for c, (status, _) in ERRORS.items() if status == item), "InternalServerException")
            item = Fault(code, status=item)
        if not isinstance(item, Fault):
            raise ValueError(f"unknown script item {item!r}")
        raise BedrockError(item.code, item.message, item.status)

    def _latency(self, operation: str) -> float:
        if operation not in self.fault_operations:
            return 0.0
        with self._lock:
            latency = self.latency
            return self._rng.uniform(*latency) if isinstance(latency, tuple) else float(latency or 0.0)

    # -- models ----------------------------------------------------------------------------------------

    def foundation_model(self, identifier: str, region: str) -> FoundationModel:
        """The catalog entry for an id or foundation-model ARN offered in `region`, or ValidationException."""
        model_id = identifier.rpartition("foundation-model/")[2] if identifier.startswith("arn:") else identifier
        found = self.catalog.get(model_id)
        if found is None or region not in found.regions:
            raise BedrockError("ValidationException", INVALID_MODEL)
        return found

    def _invocable(self, model_id: str, region: str) -> None:
        """Raise unless `model_id` can answer on-demand inference in `region`."""
        if model_id in self.disabled_models:
            raise BedrockError("AccessDeniedException", NO_ACCESS)
        if model_id in self.extra_models:
            return
        if ":custom-model-deployment/" in model_id:
            self._deployment_for_inference(model_id, region)
            return
        prefix, _, rest = model_id.partition(".")
        if prefix in PROFILE_GEOGRAPHIES and "." in rest:  # a cross-region inference profile
            base = self.catalog.get(rest)
            if base is None or "ON_DEMAND" not in base.inference or not region.startswith(
                    PROFILE_GEOGRAPHIES[prefix]) or not any(
                    r.startswith(PROFILE_GEOGRAPHIES[prefix]) for r in base.regions):
                raise BedrockError("ValidationException", INVALID_MODEL)
            if rest in self.disabled_models:
                raise BedrockError("AccessDeniedException", NO_ACCESS)
            return
        found = self.foundation_model(model_id, region)
        if "ON_DEMAND" not in found.inference:
            raise BedrockError("ValidationException", f"Invocation of model ID {found.model_id} with on-demand "
                                                      "throughput isn't supported.")

    def _deployment_for_inference(self, arn: str, region: str) -> None:
        raise BedrockError("ValidationException", INVALID_MODEL)

    # -- Converse --------------------------------------------------------------------------------------

    def _pick_reply(self, body: dict[str, Any], scripted: Reply | None) -> Reply:
        if scripted is not None:
            return scripted
        with self._lock:
            if self._replies:
                queued = self._replies.pop(0)
                return queued if isinstance(queued, Reply) else Reply(queued)
            reply = self.reply
        if callable(reply):
            return Reply(reply(body))
        return Reply(reply) if isinstance(reply, str) else Reply(default_reply(body))

    def answer(self, body: dict[str, Any], region: str, scripted: Reply | None = None) -> dict[str, Any]:
        """A Converse response body for a request body that carries its "modelId"."""
        started = time.monotonic()
        self._invocable(str(body.get("modelId") or ""), region)
        check_conversation(body)
        config = body.get("inferenceConfig") or {}
        limit = config.get("maxTokens")
        if isinstance(limit, int) and limit > self.max_output_tokens:
            raise BedrockError("ValidationException", f"The maximum tokens you requested exceeds the model "
                                                      f"limit of {self.max_output_tokens}. Try again with a "
                                                      "maximum tokens value that is lower than the limit.")
        chosen = self._pick_reply(body, scripted)
        text, stop_reason = shape_answer(chosen.text, chosen.stop_reason, config)
        prompt = blocks_text(body.get("system")) + "".join(
            blocks_text(m.get("content")) for m in body.get("messages") or [])
        usage = {"inputTokens": estimate_tokens(prompt), "outputTokens": estimate_tokens(text)}
        usage["totalTokens"] = usage["inputTokens"] + usage["outputTokens"]
        with self._lock:
            for key, value in usage.items():
                self._usage[key] += value
        return {
            "output": {"message": {"role": "assistant", "content": [{"text": text}]}},
            "stopReason": stop_reason, "usage": usage,
            "metrics": {"latencyMs": int((time.monotonic() - started) * 1000)},
        }


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    request_queue_size = 128  # the default 5 resets connections when tests fire many calls at once


# (method, path pattern, operation, success status); a {name} segment matches one URL-encoded segment.
ROUTES: tuple[tuple[str, str, str, int], ...] = (
    ("POST", "/model/{modelId}/converse", "Converse", 200),
)


def _match(method: str, path: str) -> tuple[str, int, dict[str, str]] | None:
    segments = path.strip("/").split("/")
    for route_method, pattern, operation, status in ROUTES:
        parts = pattern.strip("/").split("/")
        if route_method != method or len(parts) != len(segments):
            continue
        params: dict[str, str] = {}
        for part, segment in zip(parts, segments, strict=True):
            if part.startswith("{"):
                params[part[1:-1]] = unquote(segment)
            elif part != segment:
                break
        else:
            return operation, status, params
    return None


class _Handler(BaseHTTPRequestHandler):
    fake: FakeBedrockServer
    server_version = "fake-bedrock/1.0"

    def log_message(self, format: str, *args: Any) -> None:  # quiet: the fake keeps its own log
        return

    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_POST(self) -> None:
        self._dispatch("POST")

    def do_DELETE(self) -> None:
        self._dispatch("DELETE")

    def _dispatch(self, method: str) -> None:
        fake = self.fake
        raw_path, _, query_string = self.path.partition("?")
        query = dict(parse_qsl(query_string))
        raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        region = _region_from_auth(self.headers.get("Authorization") or "", fake.region)
        matched = _match(method, raw_path)
        operation = matched[0] if matched else "Unknown"
        entry = RequestLog(operation, method, raw_path, 200, region)
        try:
            if matched is None:
                raise BedrockError("UnknownOperationException", f"Unknown operation {method} {raw_path}", 404)
            _, status, params = matched
            body = _json_body(raw)
            entry.body = body
            if operation == "Converse":
                body["modelId"] = params["modelId"]
                _describe_converse(entry, body)
            scripted = fake._outcome(fake._draw(operation))
            latency = fake._latency(operation)
            if latency > 0:
                fake._stop.wait(latency)
            payload = self._call(operation, params, query, body, region, scripted)
        except BedrockError as err:
            entry.status, entry.error_code = err.status, err.code
            fake._record(entry)
            self._send(err.status, {"message": err.message}, {"x-amzn-ErrorType": err.code})
            return
        entry.status = status
        fake._record(entry)
        paid = operation == "Converse"
        if paid:  # counted before the answer is written, so a client that has read it sees the count
            fake.count_success(entry.user_text, +1)
        if not self._send(status, payload, {}) and paid:
            fake.count_success(entry.user_text, -1)

    def _call(self, operation: str, params: dict[str, str], query: dict[str, str], body: dict[str, Any],
              region: str, scripted: Reply | None) -> dict[str, Any]:
        if operation == "Converse":
            return self.fake.answer(body, region, scripted)
        raise BedrockError("UnknownOperationException", f"Unknown operation {operation}", 404)

    def _send(self, status: int, payload: dict[str, Any], headers: dict[str, str]) -> bool:
        data = json.dumps(payload).encode()
        try:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.send_header("x-amzn-RequestId", str(uuid.uuid4()))
            for name, value in headers.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(data)
            self.wfile.flush()
            return True
        except (BrokenPipeError, ConnectionResetError):  # the client gave up (timeout): nothing delivered
            return False


def _json_body(raw: bytes) -> dict[str, Any]:
    if not raw:
        return {}
    try:
        body = json.loads(raw)
    except json.JSONDecodeError:
        raise BedrockError("ValidationException", "The request body is not valid JSON.") from None
    if not isinstance(body, dict):
        raise BedrockError("ValidationException", "The request body must be a JSON object.")
    return body


def _describe_converse(entry: RequestLog, body: dict[str, Any]) -> None:
    """Fill the log entry before any fault, so failed calls are identifiable too."""
    entry.model_id = body.get("modelId")
    entry.system = "\n".join(b["text"] for b in body.get("system") or []
                             if isinstance(b, dict) and isinstance(b.get("text"), str))
    messages = body.get("messages")
    entry.messages = messages if isinstance(messages, list) else None
    entry.inference_config = body.get("inferenceConfig")
