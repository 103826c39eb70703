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
import re
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from itertools import pairwise
from typing import Any
from urllib.parse import parse_qsl, unquote

from botocore.exceptions import BotoCoreError, ClientError

from tests.fakes.loopback import LoopbackServer, ModelService, QuietHandler, Snapshot
from tests.fakes.openai_server import default_critique, estimate_tokens, jsonl_rows

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
    FoundationModel("amazon.nova-2-lite-v1:0", "Nova 2 Lite", "Amazon", ("us-east-1",)),
    FoundationModel("amazon.nova-2-lite-v1:0:256k", "Nova 2 Lite", "Amazon", ("us-east-1",), ("PROVISIONED",),
                    ("FINE_TUNING",)),
    FoundationModel("meta.llama3-1-8b-instruct-v1:0", "Llama 3.1 8B Instruct", "Meta", ("us-west-2",)),
    FoundationModel("meta.llama3-1-8b-instruct-v1:0:128k", "Llama 3.1 8B Instruct", "Meta", ("us-west-2",),
                    ("PROVISIONED",), ("FINE_TUNING",)),
    FoundationModel("meta.llama3-1-70b-instruct-v1:0:128k", "Llama 3.1 70B Instruct", "Meta", ("us-west-2",),
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


@dataclass(frozen=True)
class Call:
    """One control-plane request: the caller's region, URI labels, query string and JSON body."""

    region: str
    params: dict[str, str]
    query: dict[str, str]
    body: dict[str, Any]
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

    def steps(self, poll: bool = True) -> int:
        if self.seconds is not None:
            elapsed = time.monotonic() - self.since
            count = int(elapsed // self.seconds) if self.seconds > 0 else 1
            self.since += count * self.seconds
            return count
        if not poll:
            return 0
        self.polls += 1
        if self.polls < self.polls_needed:
            return 0
        self.polls = 0
        return 1


S3_URI = re.compile(r"s3://[a-z0-9][-.a-z0-9]{1,61}[a-z0-9](?:/[-!_*'().a-z0-9A-Z]+)*/?")
ROLE_ARN = re.compile(r"arn:aws(-[^:]+)?:iam::([0-9]{12})?:role/.+")
CONVERSATION_SCHEMA = "bedrock-conversation-2024"
NOVA_HYPERPARAMETERS = {"epochCount": (1, 5), "learningRate": (1e-6, 1e-4), "learningRateWarmupSteps": (0, 100)}
PHASES = ("validationDetails", "dataProcessingDetails", "trainingDetails")
BATCH_STATES = ("Submitted", "Validating", "Scheduled", "InProgress", "Completed")
BATCH_DONE = ("Completed", "Failed", "Stopped", "Expired", "PartiallyCompleted")


@dataclass
class CustomizationJob:
    arn: str
    region: str
    request: dict[str, Any]
    base: FoundationModel
    failure: str | None  # injected: the job fails in training with this message
    stepper: _Stepper
    created: float = field(default_factory=time.time)
    modified: float = field(default_factory=time.time)
    phase: int = 0  # index into PHASES; len(PHASES) once completed
    status: str = "InProgress"
    end: float | None = None
    failure_message: str | None = None
    output_model_arn: str | None = None
    metrics: dict[str, Any] = field(default_factory=dict)
    records: int | None = None  # training records counted from S3

    @property
    def name(self) -> str:
        return self.request["jobName"]

    @property
    def job_id(self) -> str:
        return self.arn.rsplit("/", 1)[1]

    def summary(self) -> dict[str, Any]:
        details = {}
        for index, key in enumerate(PHASES):
            status = "Completed" if index < self.phase else "NotStarted" if index > self.phase else self.status
            details[key] = {"status": status, "creationTime": iso(self.created),
                            "lastModifiedTime": iso(self.modified)}
        out = {
            "jobArn": self.arn, "baseModelArn": _foundation_arn(self.region, self.base.model_id),
            "jobName": self.name, "status": self.status, "statusDetails": details,
            "creationTime": iso(self.created), "lastModifiedTime": iso(self.modified),
            "customModelName": self.request["customModelName"],
            "customizationType": self.request.get("customizationType", "FINE_TUNING"),
        }
        if self.end is not None:
            out["endTime"] = iso(self.end)
        if self.output_model_arn:
            out["customModelArn"] = self.output_model_arn
        return out

    def as_json(self) -> dict[str, Any]:
        out = self.summary()
        request = self.request
        out.pop("customModelArn", None)
        out.update({
            "outputModelName": out.pop("customModelName"), "roleArn": request["roleArn"],
            "clientRequestToken": request.get("clientRequestToken"),
            "hyperParameters": request.get("hyperParameters") or {},
            "trainingDataConfig": request["trainingDataConfig"],
            "validationDataConfig": request.get("validationDataConfig") or {"validators": []},
            "outputDataConfig": request["outputDataConfig"], **self.metrics,
        })
        if self.output_model_arn:
            out["outputModelArn"] = self.output_model_arn
        if self.failure_message:
            out["failureMessage"] = self.failure_message
        return out


@dataclass
class CustomModel:
    arn: str
    name: str
    region: str
    job: CustomizationJob

    def as_json(self) -> dict[str, Any]:
        job = self.job.as_json()
        keys = ("jobName", "jobArn", "baseModelArn", "customizationType", "hyperParameters", "trainingDataConfig",
                "validationDataConfig", "outputDataConfig", "trainingMetrics", "validationMetrics")
        return {"modelArn": self.arn, "modelName": self.name, **{k: job[k] for k in keys if k in job},
                "creationTime": iso(self.job.end or self.job.created), "modelStatus": "Active"}


@dataclass
class Deployment:
    arn: str
    name: str
    region: str
    model_arn: str
    description: str | None
    failure: str | None
    stepper: _Stepper
    created: float = field(default_factory=time.time)
    modified: float = field(default_factory=time.time)
    status: str = "Creating"
    failure_message: str | None = None

    def as_json(self, *, summary: bool = False) -> dict[str, Any]:
        out = {"customModelDeploymentArn": self.arn, "modelArn": self.model_arn, "createdAt": iso(self.created),
               "status": self.status, "lastUpdatedAt": iso(self.modified),
               "customModelDeploymentName" if summary else "modelDeploymentName": self.name}
        if self.description and not summary:
            out["description"] = self.description
        if self.failure_message:
            out["failureMessage"] = self.failure_message
        return out


@dataclass
class BatchJob:
    arn: str
    region: str
    request: dict[str, Any]
    failure: str | None  # injected: the job fails validation with this message
    expires: bool  # injected: the job runs out of time half way through
    stepper: _Stepper
    created: float = field(default_factory=time.time)
    modified: float = field(default_factory=time.time)
    status: str = "Submitted"
    message: str | None = None
    end: float | None = None
    files: list[tuple[str, list[dict[str, Any]]]] = field(default_factory=list)  # (input file name, records)
    counts: dict[str, int] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return self.request["jobName"]

    def as_json(self) -> dict[str, Any]:
        request = self.request
        hours = request.get("timeoutDurationInHours") or 24
        out = {
            "jobArn": self.arn, "jobName": self.name, "modelId": request["modelId"],
            "clientRequestToken": request.get("clientRequestToken"), "roleArn": request["roleArn"],
            "status": self.status, "submitTime": iso(self.created), "lastModifiedTime": iso(self.modified),
            "inputDataConfig": request["inputDataConfig"], "outputDataConfig": request["outputDataConfig"],
            "timeoutDurationInHours": hours, "jobExpirationTime": iso(self.created + hours * 3600),
            **self.counts,
        }
        if self.message:
            out["message"] = self.message
        if self.end is not None:
            out["endTime"] = iso(self.end)
        return out


def _foundation_arn(region: str, model_id: str) -> str:
    return f"arn:aws:bedrock:{region}::foundation-model/{model_id}"


def _constraint(value: Any, member: str, pattern: re.Pattern[str]) -> None:
    """AWS's own wording for a member that fails its pattern (botocore checks only types and lengths)."""
    if not isinstance(value, str) or not pattern.fullmatch(value):
        raise BedrockError("ValidationException", f"1 validation error detected: Value '{value}' at '{member}' "
                           f"failed to satisfy constraint: Member must satisfy regular expression pattern: "
                           f"{pattern.pattern}")


def conversation_problem(line: str) -> str | None:
    """What is wrong with one bedrock-conversation-2024 training record, or None."""
    try:
        row = json.loads(line)
    except json.JSONDecodeError:
        return "not valid JSON"
    if not isinstance(row, dict):
        return "not a JSON object"
    if row.get("schemaVersion") != CONVERSATION_SCHEMA:
        return f"schemaVersion must be '{CONVERSATION_SCHEMA}'"
    system = row.get("system", [])
    if not isinstance(system, list) or not all(isinstance(b, dict) and isinstance(b.get("text"), str)
                                               for b in system):
        return 'system must be a list of {"text": ...} blocks'
    messages = row.get("messages")
    if not isinstance(messages, list) or len(messages) < 2:
        return "messages must hold at least a user turn and an assistant turn"
    for index, message in enumerate(messages):
        role = "user" if index % 2 == 0 else "assistant"
        if not isinstance(message, dict) or message.get("role") != role:
            return f"message {index + 1} must have role '{role}'"
        if not blocks_text(message.get("content")).strip():
            return f"message {index + 1} has no text content"
    return None if messages[-1].get("role") == "assistant" else "the last message must be the assistant's"


def _split_s3(uri: str) -> tuple[str, str]:
    bucket, _, key = uri.removeprefix("s3://").partition("/")
    return bucket, key


def _page(items: list[tuple[float, str, str, dict[str, Any]]], query: dict[str, str], key: str) -> dict[str, Any]:
    """A List* answer from (created, name, status, summary) rows: statusEquals, nameContains, sortOrder,
    maxResults and nextToken (an offset) as botocore sends them."""
    items = [i for i in items if query.get("statusEquals") in (None, i[2])
             and query.get("nameContains", "") in i[1]]
    items.sort(key=lambda i: i[0], reverse=query.get("sortOrder", "Descending") == "Descending")
    start, size = int(query.get("nextToken") or 0), int(query.get("maxResults") or 100)
    out: dict[str, Any] = {key: [i[3] for i in items[start: start + size]]}
    if start + size < len(items):
        out["nextToken"] = str(start + size)
    return out


_SETTINGS = frozenset({
    "region", "reply", "fault_rates", "fault_operations", "latency", "extra_models", "disabled_models",
    "max_output_tokens", "polls_per_state", "seconds_per_state", "customization_failure",
    "deployment_failure", "batch_record_error_rate", "batch_failure", "batch_expires", "batch_expire_next",
    "min_batch_records",
    "min_training_records", "s3_client_factory",
})


class FakeBedrockServer(LoopbackServer, ModelService):
    """Amazon Bedrock (runtime and control plane) on 127.0.0.1 in a background thread.

    Converse reply selection, first match wins: a scripted Reply at the head of the script, then the
    reply queue, then `reply` (a string or a callable of the request body), then `default_reply`. Random
    faults (`fault_rates`, e.g. {"ThrottlingException": 0.2}) apply to `fault_operations` (Converse by
    default); a scripted outcome (`push_script`) for an operation decides its next call before any random
    fault is drawn. Settings can be changed while it runs with `configure(...)`.
    """

    thread_name = "fake-bedrock"
    settings = _SETTINGS
    settings_label = "fake Bedrock"
    reply_type = Reply
    default_text = staticmethod(default_reply)

    @property
    def handler(self) -> type[QuietHandler]:
        return _Handler

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
        batch_expire_next: int = 0,
        min_batch_records: int = 100,
        min_training_records: int = 8,
        s3_client_factory: Callable[[], Any] | None = None,
    ) -> None:
        super().__init__()
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
        self.batch_expire_next = batch_expire_next  # only the next N jobs expire
        self.min_batch_records = min_batch_records
        self.min_training_records = min_training_records
        self.s3_client_factory = s3_client_factory

        self._init_service(seed=seed, replies=replies, usage_keys=("inputTokens", "outputTokens", "totalTokens"))
        self._scripts: dict[str, list[ScriptItem]] = {"Converse": list(script)}
        self._jobs: dict[str, CustomizationJob] = {}
        self._models: dict[str, CustomModel] = {}
        self._deployments: dict[str, Deployment] = {}
        self._batch_jobs: dict[str, BatchJob] = {}
        self._tokens: dict[tuple[str, str], tuple[str, Any]] = {}  # (kind, clientRequestToken) -> (params, it)

    # -- lifecycle -------------------------------------------------------------------------------------

    @property
    def endpoint_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    # -- configuration (configure, reseed and queue_replies come from ModelService) -------------------

    def _setting(self, name: str, value: Any) -> Any:
        return set(value) if name in ("extra_models", "disabled_models") else value

    def push_script(self, *items: ScriptItem, operation: str = "Converse") -> None:
        """Outcomes for the next calls of `operation`, in order: "ok"/200, an error code, a Fault or a Reply."""
        with self._lock:
            self._scripts.setdefault(operation, []).extend(items)

    # -- accounting (the request log and paid calls come from PaidCalls) ------------------------------

    def converse_requests(self) -> list[RequestLog]:
        return [r for r in self.requests if r.operation == "Converse"]

    def calls(self, operation: str) -> list[RequestLog]:
        return [r for r in self.requests if r.operation == operation]

    def status_counts(self, operation: str = "Converse") -> dict[int, int]:
        return dict(Counter(r.status for r in self.calls(operation)))

    def error_counts(self, operation: str = "Converse") -> dict[str, int]:
        return dict(Counter(r.error_code for r in self.calls(operation) if r.error_code))

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
        return self._draw_latency() if operation in self.fault_operations else 0.0

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
        with self._lock:
            deployment = self._deployments.get(arn)
        if deployment is None or deployment.region != region:
            raise BedrockError("ValidationException", INVALID_MODEL)
        if deployment.status == "Creating":
            raise BedrockError("ModelNotReadyException", "The custom model deployment is still being created. "
                                                         "Try again later.")
        if deployment.status != "Active":
            raise BedrockError("ValidationException", f"The custom model deployment is {deployment.status}.")

    # -- Converse --------------------------------------------------------------------------------------

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

    # -- control plane: shared pieces ------------------------------------------------------------------

    customization_jobs: Snapshot[dict[str, CustomizationJob]] = Snapshot("_jobs", dict)
    custom_models: Snapshot[dict[str, CustomModel]] = Snapshot("_models", dict)
    deployments: Snapshot[dict[str, Deployment]] = Snapshot("_deployments", dict)
    batch_jobs: Snapshot[dict[str, BatchJob]] = Snapshot("_batch_jobs", dict)

    def _stepper(self) -> _Stepper:
        return _Stepper(self.polls_per_state, self.seconds_per_state)

    def _replayed(self, kind: str, body: dict[str, Any], conflict: str) -> Any | None:
        """What an earlier call with this clientRequestToken created, if its parameters were the same."""
        token = body.get("clientRequestToken")
        seen = self._tokens.get((kind, token)) if token else None
        if seen is None:
            return None
        if seen[0] != _fingerprint(body):
            raise BedrockError(conflict, "The clientRequestToken was already used with different parameters.")
        return seen[1]

    def _remember(self, kind: str, body: dict[str, Any], created: Any) -> None:
        if body.get("clientRequestToken"):
            self._tokens[(kind, body["clientRequestToken"])] = (_fingerprint(body), created)

    @staticmethod
    def _find(items: dict[str, Any], identifier: str, region: str, what: str) -> Any:
        """A resource by ARN, name or ARN's id, in the caller's region."""
        for arn, item in items.items():
            if item.region == region and identifier in (arn, item.name, arn.rsplit("/", 1)[-1]):
                return item
        raise BedrockError("ResourceNotFoundException", f"The specified {what} '{identifier}' was not found.")

    def _read_jsonl(self, uri: str) -> list[tuple[str, str]]:
        """(file name, text) of the object at `uri`, or of every .jsonl object under it when it is a folder."""
        if self.s3_client_factory is None:
            raise BedrockError("ValidationException", "The fake Bedrock server was given no s3_client_factory.")
        s3 = self.s3_client_factory()
        bucket, key = _split_s3(uri)
        keys = [key] if key and not key.endswith("/") else [
            o["Key"] for o in s3.list_objects_v2(Bucket=bucket, Prefix=key).get("Contents", [])
            if o["Key"].endswith(".jsonl")]
        return [(k.rsplit("/", 1)[-1], s3.get_object(Bucket=bucket, Key=k)["Body"].read().decode("utf-8"))
                for k in keys]

    def _write_s3(self, folder_uri: str, name: str, text: str) -> None:
        bucket, prefix = _split_s3(folder_uri)
        key = "/".join(part for part in (prefix.strip("/"), name) if part)
        self.s3_client_factory().put_object(Bucket=bucket, Key=key, Body=text.encode("utf-8"))  # type: ignore[misc]

    # -- model customization jobs and custom models -----------------------------------------------------

    def _op_create_model_customization_job(self, call: Call) -> dict[str, Any]:
        with self._lock:
            replayed = self._replayed("customization", call.body, "ConflictException")
            if replayed is not None:
                return {"jobArn": replayed.arn}
            _constraint(call.body["roleArn"], "roleArn", ROLE_ARN)
            uris = [("trainingDataConfig.s3Uri", call.body["trainingDataConfig"].get("s3Uri")),
                    ("outputDataConfig.s3Uri", call.body["outputDataConfig"]["s3Uri"])]
            uris += [("validationDataConfig.validators.member.s3Uri", v["s3Uri"])
                     for v in (call.body.get("validationDataConfig") or {}).get("validators", [])]
            for member, uri in uris:
                _constraint(uri, member, S3_URI)
            base = self.foundation_model(call.body["baseModelIdentifier"], call.region)
            kind = call.body.get("customizationType", "FINE_TUNING")
            if kind not in base.customizations:
                raise BedrockError("ValidationException", f"The model {base.model_id} does not support {kind} "
                                                          f"customization in {call.region}.")
            if base.model_id.startswith("amazon.nova"):
                _check_nova_hyperparameters(call.body.get("hyperParameters") or {})
            mine = [j for j in self._jobs.values() if j.region == call.region]
            if any(j.name == call.body["jobName"] for j in mine):
                raise BedrockError("ValidationException", "The provided job name is currently in use.")
            if any(j.request["customModelName"] == call.body["customModelName"] for j in mine
                   if j.status in ("InProgress", "Stopping", "Completed")):
                raise BedrockError("ValidationException", "The provided custom model name is currently in use.")
            arn = f"arn:aws:bedrock:{call.region}:{ACCOUNT}:model-customization-job/{base.model_id}/{_short_id()}"
            job = CustomizationJob(arn, call.region, call.body, base, self.customization_failure, self._stepper())
            self._jobs[arn] = job
            self._remember("customization", call.body, job)
            return {"jobArn": arn}

    def _op_get_model_customization_job(self, call: Call) -> dict[str, Any]:
        with self._lock:
            job = self._find(self._jobs, call.params["jobIdentifier"], call.region, "model customization job")
            self._advance_job(job, poll=True)
            return job.as_json()

    def _op_list_model_customization_jobs(self, call: Call) -> dict[str, Any]:
        with self._lock:
            jobs = [j for j in self._jobs.values() if j.region == call.region]
            for job in jobs:
                self._advance_job(job, poll=False)
            rows = [(j.created, j.name, j.status, j.summary()) for j in jobs]
        return _page(rows, call.query, "modelCustomizationJobSummaries")

    def _op_stop_model_customization_job(self, call: Call) -> dict[str, Any]:
        with self._lock:
            job = self._find(self._jobs, call.params["jobIdentifier"], call.region, "model customization job")
            if job.status != "InProgress":
                raise BedrockError("ValidationException", f"The job is {job.status} and cannot be stopped.")
            job.status, job.modified = "Stopping", time.time()
        return {}

    def _op_get_custom_model(self, call: Call) -> dict[str, Any]:
        with self._lock:
            return self._find(self._models, call.params["modelIdentifier"], call.region, "custom model").as_json()

    def _op_get_foundation_model(self, call: Call) -> dict[str, Any]:
        found = self.foundation_model(call.params["modelIdentifier"], call.region)
        return {"modelDetails": {
            "modelArn": _foundation_arn(call.region, found.model_id), "modelId": found.model_id,
            "modelName": found.name, "providerName": found.provider, "inputModalities": ["TEXT"],
            "outputModalities": ["TEXT"], "responseStreamingSupported": True,
            "customizationsSupported": list(found.customizations), "inferenceTypesSupported": list(found.inference),
            "modelLifecycle": {"status": "ACTIVE"},
        }}

    def _advance_job(self, job: CustomizationJob, *, poll: bool) -> None:
        """Validation (reads the data from S3), data processing, training (injected failure), completion."""
        for _ in range(job.stepper.steps(poll)):
            job.modified = time.time()
            if job.status == "Stopping":
                job.status, job.end = "Stopped", time.time()
            if job.status != "InProgress":
                return
            problem = self._data_problem(job) if job.phase == 0 else job.failure if job.phase == 2 else None
            if problem:
                job.status, job.failure_message, job.end = "Failed", problem, time.time()
                return
            job.phase += 1
            if job.phase == len(PHASES):
                self._complete(job)

    def _data_problem(self, job: CustomizationJob) -> str | None:
        """Why the job's S3 data cannot train a model (naming the bad line), or None; unchecked without S3."""
        if self.s3_client_factory is None:
            return None
        validators = (job.request.get("validationDataConfig") or {}).get("validators", [])
        sources = [("training", job.request["trainingDataConfig"]["s3Uri"])]
        sources += [("validation", v["s3Uri"]) for v in validators]
        for label, uri in sources:
            try:
                files = self._read_jsonl(uri)
            except (ClientError, BotoCoreError) as err:
                return f"Amazon Bedrock could not read the {label} data at {uri}: {err}"
            count = 0
            for name, text in files:
                for number, line in enumerate(text.splitlines(), start=1):
                    if not line.strip():
                        continue
                    problem = conversation_problem(line)
                    if problem:
                        return f"Validation of the {label} data failed: {name} line {number}: {problem}."
                    count += 1
            if label == "training":
                job.records = count
                if count < self.min_training_records:
                    return (f"The training data has {count} records; at least {self.min_training_records} "
                            "are required.")
        return None

    def _complete(self, job: CustomizationJob) -> None:
        """The custom model exists; its metrics land under the output URI as Bedrock writes them."""
        job.status, job.end = "Completed", time.time()
        epochs = int(float((job.request.get("hyperParameters") or {}).get("epochCount", 2)))
        train_loss = round(1.6 / (1 + epochs), 4)
        validators = (job.request.get("validationDataConfig") or {}).get("validators", [])
        job.metrics = {"trainingMetrics": {"trainingLoss": train_loss}}
        if validators:
            job.metrics["validationMetrics"] = [{"validationLoss": train_loss + 0.08} for _ in validators]
        arn = f"arn:aws:bedrock:{job.region}:{ACCOUNT}:custom-model/{job.base.model_id}/{_short_id()}"
        job.output_model_arn = arn
        self._models[arn] = CustomModel(arn, job.request["customModelName"], job.region, job)
        if self.s3_client_factory is None:
            return
        folder = f"{job.request['outputDataConfig']['s3Uri'].rstrip('/')}/model-customization-job-{job.job_id}"
        steps = max(1, -(-(job.records or 8) // 8))  # steps per epoch at a batch of 8
        rows = ["step_number,epoch_number,training_loss,perplexity"]
        for step in range(steps * epochs):
            loss = round(2.2 / (1 + step / steps), 4)
            rows.append(f"{step},{step // steps},{loss},{round(2.718281828 ** loss, 4)}")
        self._write_s3(folder, "training_artifacts/step_wise_training_metrics.csv", "\n".join(rows) + "\n")
        if validators:
            rows = ["step_number,epoch_number,validation_loss,perplexity"]
            for epoch in range(epochs):
                loss = round(1.6 / (2 + epoch) + 0.08, 4)
                rows.append(f"{(epoch + 1) * steps - 1},{epoch},{loss},{round(2.718281828 ** loss, 4)}")
            self._write_s3(folder, "validation_artifacts/post_fine_tuning_validation/validation_metrics.csv",
                           "\n".join(rows) + "\n")

    # -- custom model deployments ----------------------------------------------------------------------

    def _op_create_custom_model_deployment(self, call: Call) -> dict[str, Any]:
        with self._lock:
            replayed = self._replayed("deployment", call.body, "ValidationException")
            if replayed is not None:
                return {"customModelDeploymentArn": replayed.arn}
            model = self._models.get(call.body["modelArn"])
            if model is None or model.region != call.region:
                raise BedrockError("ResourceNotFoundException", f"The custom model {call.body['modelArn']} was not "
                                                                "found.")
            if not model.job.base.on_demand_deployment:
                raise BedrockError("ValidationException", f"Custom models of {model.job.base.model_id} cannot be "
                                                          "deployed on demand; use Provisioned Throughput.")
            name = call.body["modelDeploymentName"]
            if any(d.name == name and d.region == call.region for d in self._deployments.values()):
                raise BedrockError("ValidationException", "The provided deployment name is currently in use.")
            arn = f"arn:aws:bedrock:{call.region}:{ACCOUNT}:custom-model-deployment/{_short_id()}"
            deployment = Deployment(arn, name, call.region, model.arn, call.body.get("description"),
                                    self.deployment_failure, self._stepper())
            self._deployments[arn] = deployment
            self._remember("deployment", call.body, deployment)
            return {"customModelDeploymentArn": arn}

    def _advance_deployment(self, deployment: Deployment, *, poll: bool) -> None:
        if deployment.status == "Creating" and deployment.stepper.steps(poll):
            deployment.modified = time.time()
            deployment.status = "Failed" if deployment.failure else "Active"
            deployment.failure_message = deployment.failure

    def _op_get_custom_model_deployment(self, call: Call) -> dict[str, Any]:
        with self._lock:
            deployment = self._find(self._deployments, call.params["customModelDeploymentIdentifier"], call.region,
                                    "custom model deployment")
            self._advance_deployment(deployment, poll=True)
            return deployment.as_json()

    def _op_list_custom_model_deployments(self, call: Call) -> dict[str, Any]:
        with self._lock:
            mine = [d for d in self._deployments.values() if d.region == call.region
                    and call.query.get("modelArnEquals") in (None, d.model_arn)]
            for deployment in mine:
                self._advance_deployment(deployment, poll=False)
            rows = [(d.created, d.name, d.status, d.as_json(summary=True)) for d in mine]
        return _page(rows, call.query, "modelDeploymentSummaries")

    def _op_delete_custom_model_deployment(self, call: Call) -> dict[str, Any]:
        with self._lock:
            deployment = self._find(self._deployments, call.params["customModelDeploymentIdentifier"], call.region,
                                    "custom model deployment")
            del self._deployments[deployment.arn]
        return {}

    # -- batch inference (model invocation jobs) -------------------------------------------------------

    def _op_create_model_invocation_job(self, call: Call) -> dict[str, Any]:
        with self._lock:
            replayed = self._replayed("batch", call.body, "ConflictException")
            if replayed is not None:
                return {"jobArn": replayed.arn}
            _constraint(call.body["roleArn"], "roleArn", ROLE_ARN)
            _constraint((call.body["inputDataConfig"].get("s3InputDataConfig") or {}).get("s3Uri"),
                        "inputDataConfig.s3InputDataConfig.s3Uri", S3_URI)
            _constraint((call.body["outputDataConfig"].get("s3OutputDataConfig") or {}).get("s3Uri"),
                        "outputDataConfig.s3OutputDataConfig.s3Uri", S3_URI)
            self._invocable(call.body["modelId"], call.region)
            if any(j.name == call.body["jobName"] and j.region == call.region for j in self._batch_jobs.values()):
                raise BedrockError("ValidationException", "The provided job name is currently in use.")
            arn = f"arn:aws:bedrock:{call.region}:{ACCOUNT}:model-invocation-job/{_short_id()}"
            expires = self.batch_expires or self.batch_expire_next > 0
            self.batch_expire_next = max(0, self.batch_expire_next - 1)
            job = BatchJob(arn, call.region, call.body, self.batch_failure, expires, self._stepper())
            self._batch_jobs[arn] = job
            self._remember("batch", call.body, job)
            return {"jobArn": arn}

    def _op_get_model_invocation_job(self, call: Call) -> dict[str, Any]:
        with self._lock:
            job = self._find(self._batch_jobs, call.params["jobIdentifier"], call.region, "model invocation job")
            self._advance_batch(job, poll=True)
            return job.as_json()

    def _op_list_model_invocation_jobs(self, call: Call) -> dict[str, Any]:
        with self._lock:
            mine = [j for j in self._batch_jobs.values() if j.region == call.region]
            for job in mine:
                self._advance_batch(job, poll=False)
            rows = [(j.created, j.name, j.status, j.as_json()) for j in mine]
        return _page(rows, call.query, "invocationJobSummaries")

    def _op_stop_model_invocation_job(self, call: Call) -> dict[str, Any]:
        with self._lock:
            job = self._find(self._batch_jobs, call.params["jobIdentifier"], call.region, "model invocation job")
            if job.status in (*BATCH_DONE, "Stopping"):
                raise BedrockError("ValidationException", f"The job is {job.status} and cannot be stopped.")
            job.status, job.modified = "Stopping", time.time()
        return {}

    def _advance_batch(self, job: BatchJob, *, poll: bool) -> None:
        """Submitted -> Validating -> Scheduled -> InProgress -> Completed (or Failed / Expired / Stopped)."""
        for _ in range(job.stepper.steps(poll)):
            job.modified = time.time()
            if job.status == "Stopping":
                job.status, job.end = "Stopped", time.time()
            if job.status in BATCH_DONE:
                return
            if job.status == "Validating":
                problem = job.failure or self._load_batch(job)
                if problem:
                    job.status, job.message, job.end = "Failed", problem, time.time()
                    return
            if job.status == "InProgress":
                self._run_batch(job)
                return
            job.status = BATCH_STATES[BATCH_STATES.index(job.status) + 1]

    def _load_batch(self, job: BatchJob) -> str | None:
        if job.request.get("modelInvocationType", "InvokeModel") != "Converse":
            # The fake answers Converse-shaped records only; an InvokeModel job's modelInput is the model's
            # own InvokeModel body, which differs per model.
            return "This test server runs only jobs created with modelInvocationType 'Converse'."
        uri = job.request["inputDataConfig"]["s3InputDataConfig"]["s3Uri"]
        try:
            files = self._read_jsonl(uri)
        except (ClientError, BotoCoreError, BedrockError) as err:
            return f"Amazon Bedrock could not read the input data at {uri}: {err}"
        for name, text in files:
            rows, not_json = jsonl_rows(text)
            records = []
            for number, row in rows:
                if not isinstance(row, dict) or not isinstance(row.get("modelInput"), dict):
                    return f"{name} line {number} has no modelInput object."
                row.setdefault("recordId", uuid.uuid4().hex[:11].upper())
                if not str(row["recordId"]).isalnum():
                    return f"{name} line {number}: recordId must be an alphanumeric string."
                records.append(row)
            if not_json is not None:
                return f"{name} line {not_json} is not valid JSON."
            job.files.append((name, records))
        total = sum(len(records) for _, records in job.files)
        if total < self.min_batch_records:
            return f"The input has {total} records; a batch inference job needs at least {self.min_batch_records}."
        job.counts = {"totalRecordCount": total, "processedRecordCount": 0, "successRecordCount": 0,
                      "errorRecordCount": 0}
        return None

    def _run_batch(self, job: BatchJob) -> None:
        """Answer every record (half of them when the job expires) and write `<input>.out` and the manifest."""
        folder = f"{job.request['outputDataConfig']['s3OutputDataConfig']['s3Uri'].rstrip('/')}/{job.arn[-12:]}"
        tokens = {"inputTokenCount": 0, "outputTokenCount": 0}
        for name, records in job.files:
            todo = records[: len(records) // 2] if job.expires else records
            lines = [json.dumps(self._batch_record(job, row, tokens)) for row in todo]
            self._write_s3(folder, f"{name}.out", "".join(line + "\n" for line in lines))
        self._write_s3(folder, "manifest.json.out", json.dumps({**job.counts, **tokens}))
        job.status, job.end = ("Expired" if job.expires else "Completed"), time.time()
        if job.expires:
            job.message = "The job did not finish within its timeout; unprocessed records were not run."

    def _batch_record(self, job: BatchJob, row: dict[str, Any], tokens: dict[str, int]) -> dict[str, Any]:
        record = {"recordId": row["recordId"], "modelInput": row["modelInput"]}
        job.counts["processedRecordCount"] += 1
        body = {**row["modelInput"], "modelId": job.request["modelId"]}
        try:
            if self.batch_record_error_rate and self._rng.random() < self.batch_record_error_rate:
                raise BedrockError("InternalServerException", "The model failed to process the record.")
            output = self.answer(body, job.region)
        except BedrockError as err:
            job.counts["errorRecordCount"] += 1
            record["error"] = {"errorCode": err.status, "errorMessage": err.message}
            return record
        job.counts["successRecordCount"] += 1
        tokens["inputTokenCount"] += output["usage"]["inputTokens"]
        tokens["outputTokenCount"] += output["usage"]["outputTokens"]
        self.count_success(user_text(body.get("messages") or []), +1)
        record["modelOutput"] = output
        return record


def _fingerprint(body: dict[str, Any]) -> str:
    return json.dumps({k: v for k, v in body.items() if k != "clientRequestToken"}, sort_keys=True)


def _check_nova_hyperparameters(hyper: dict[str, str]) -> None:
    for name, value in hyper.items():
        if name not in NOVA_HYPERPARAMETERS:
            raise BedrockError("ValidationException", f"The hyperparameter {name} is not supported by this model.")
        low, high = NOVA_HYPERPARAMETERS[name]
        try:
            number = float(value)
        except ValueError:
            number = float("nan")
        whole = name == "learningRate" or number.is_integer()
        if not (whole and low <= number <= high):
            raise BedrockError("ValidationException", f"The value '{value}' of hyperparameter {name} is not "
                                                      f"valid; it must be between {low:g} and {high:g}.")


# (method, path pattern, operation, success status); a {name} segment matches one URL-encoded segment.
ROUTES: tuple[tuple[str, str, str, int], ...] = (
    ("POST", "/model/{modelId}/converse", "Converse", 200),
    ("POST", "/model-customization-jobs", "CreateModelCustomizationJob", 201),
    ("GET", "/model-customization-jobs", "ListModelCustomizationJobs", 200),
    ("GET", "/model-customization-jobs/{jobIdentifier}", "GetModelCustomizationJob", 200),
    ("POST", "/model-customization-jobs/{jobIdentifier}/stop", "StopModelCustomizationJob", 200),
    ("GET", "/custom-models/{modelIdentifier}", "GetCustomModel", 200),
    ("GET", "/foundation-models/{modelIdentifier}", "GetFoundationModel", 200),
    ("POST", "/model-customization/custom-model-deployments", "CreateCustomModelDeployment", 202),
    ("GET", "/model-customization/custom-model-deployments", "ListCustomModelDeployments", 200),
    ("GET", "/model-customization/custom-model-deployments/{customModelDeploymentIdentifier}",
     "GetCustomModelDeployment", 200),
    ("DELETE", "/model-customization/custom-model-deployments/{customModelDeploymentIdentifier}",
     "DeleteCustomModelDeployment", 200),
    ("POST", "/model-invocation-job", "CreateModelInvocationJob", 200),
    ("GET", "/model-invocation-jobs", "ListModelInvocationJobs", 200),
    ("GET", "/model-invocation-job/{jobIdentifier}", "GetModelInvocationJob", 200),
    ("POST", "/model-invocation-job/{jobIdentifier}/stop", "StopModelInvocationJob", 200),
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


class _Handler(QuietHandler):
    fake: FakeBedrockServer
    server_version = "fake-bedrock/1.0"

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
        except Exception as err:  # an unexpected bug answers 500 instead of dropping the connection
            if not isinstance(err, BedrockError):
                err = BedrockError("InternalServerException", f"{type(err).__name__}: {err}")
            entry.status, entry.error_code = err.status, err.code
            fake._record(entry)
            self._send(err.status, {"message": err.message},
                       {"x-amzn-ErrorType": f"{err.code}:http://internal.amazon.com/coral/com.amazon.bedrock/"})
            return
        entry.status = status
        fake._record(entry)
        paid = operation == "Converse"
        fake.deliver_paid(entry.user_text if paid else None, lambda: self._send(status, payload, {}))

    def _call(self, operation: str, params: dict[str, str], query: dict[str, str], body: dict[str, Any],
              region: str, scripted: Reply | None) -> dict[str, Any]:
        if operation == "Converse":
            return self.fake.answer(body, region, scripted)
        method = getattr(self.fake, "_op_" + re.sub(r"(?<!^)(?=[A-Z])", "_", operation).lower())
        return method(Call(region, params, query, body))

    def _send(self, status: int, payload: dict[str, Any], headers: dict[str, str]) -> bool:
        data = json.dumps(payload).encode()
        return self._write(status, data, {"Content-Type": "application/json", "Content-Length": str(len(data)),
                                          "x-amzn-RequestId": str(uuid.uuid4()), **headers})


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
