"""A small OpenAI-compatible HTTP server for tests.

It speaks enough of the API for the real `openai` SDK: chat completions, files, uploads (a large file sent in
parts, reassembled on completion into a file like any other), fine-tuning jobs (with events and
checkpoints), models, and the Batch API (batches that move validating -> in_progress ->
finalizing -> completed | expired | failed, or cancelling -> cancelled, one state per retrieve, with output
and error files in OpenAI's documented line shapes; `batch_error_rate` puts that share of requests in the
error file, `batch_expire_next` makes the next N batches expire half way, `batch_failure` fails validation).
Faults are injected on purpose so retry, timeout and idempotency code can be tested without a network:
random 429/500 answers, latency, stalls that outlast a client timeout, and scripted per-call outcomes for
deterministic tests. Every request is logged, and successful completions (synchronous or in a batch) are
counted per distinct user message so a test can assert that a story was paid for exactly once.

A stall never answers (the connection is dropped when `stall_seconds` end), so it is not counted as paid.
Latency longer than the client's timeout is different: the answer is still written late and counted,
as the real API still bills a reply nobody read.

    with FakeOpenAIServer(api_key="sk-test") as server:
        client = openai.OpenAI(base_url=server.base_url, api_key="sk-test")
        ...
"""

from __future__ import annotations

import hashlib
import json
import math
import re
import socket
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from tests.fakes.loopback import LoopbackServer, ModelService, QuietHandler, Snapshot

ReplyFn = Callable[[list[dict[str, Any]]], str]

STORY_START = "=== STORY ==="
STORY_END = "=== END STORY ==="
JOB_STATES = ("validating_files", "queued", "running", "succeeded")
TERMINAL_STATES = ("succeeded", "failed", "cancelled")
DEFAULT_MODELS = (
    "gpt-4o-mini", "gpt-4o-mini-2024-07-18", "gpt-4o", "gpt-4.1", "gpt-4.1-mini", "gpt-4.1-nano",
)
# OpenAI's published shutdown dates (deprecations page, December 2026); a fine-tune shuts down with its base.
DEFAULT_SHUTDOWN_DATES = {model: "2027-01-14" for model in DEFAULT_MODELS if not model.startswith("gpt-4.1-nano")}
# What OpenAI answers an organisation without fine-tuning access (its standard error shape).
FINE_TUNING_UNAVAILABLE = "Fine-tuning is not available for your organization."

# What OpenAI answers for each status when nothing more specific is scripted: (type, code, message).
_DEFAULT_ERRORS: dict[int, tuple[str, str | None, str]] = {
    400: ("invalid_request_error", None, "Invalid request."),
    401: ("invalid_request_error", "invalid_api_key", "Incorrect API key provided."),
    403: ("invalid_request_error", "unsupported_country_region_territory", "Country, region, or territory "
          "not supported."),
    404: ("invalid_request_error", "model_not_found", "The model does not exist or you do not have access "
          "to it."),
    408: ("timeout", None, "Request timed out."),
    409: ("invalid_request_error", None, "Conflict with a concurrent request."),
    422: ("invalid_request_error", None, "Unprocessable request."),
    429: ("requests", "rate_limit_exceeded", "Rate limit reached for requests. Please try again later."),
    500: ("server_error", None, "The server had an error while processing your request. Sorry about that!"),
    502: ("server_error", None, "Bad gateway."),
    503: ("server_error", None, "The engine is currently overloaded, please try again later."),
}


@dataclass(frozen=True)
class Reply:
    """A scripted chat reply. `usage=False` leaves usage out of the response (some servers do)."""

    text: str
    finish_reason: str = "stop"
    usage: bool = True


@dataclass(frozen=True)
class Fault:
    """A scripted error answer (or a stall when `stall` is true)."""

    status: int = 500
    code: str | None = None
    message: str | None = None
    type: str | None = None
    param: str | None = None
    retry_after: float | None = None
    stall: bool = False


CONTENT_POLICY = Fault(
    400, code="content_policy_violation", type="invalid_request_error",
    message="Your request was rejected as a result of our safety system.",
)
INSUFFICIENT_QUOTA = Fault(
    429, code="insufficient_quota", type="insufficient_quota",
    message="You exceeded your current quota, please check your plan and billing details.",
)
STALL = Fault(0, stall=True)

ScriptItem = int | str | Fault | Reply


@dataclass(frozen=True)
class FineTuneFailure:
    """Makes every new job end in `failed` with this error once it reaches `at_state`."""

    code: str = "invalid_training_file"
    message: str = "The job failed due to an invalid training file."
    param: str | None = "training_file"
    at_state: str = "validating_files"


@dataclass
class RequestLog:
    method: str
    path: str
    status: int  # 0 when the call stalled and was dropped without an answer
    model: str | None = None
    messages_hash: str | None = None
    user_content: str | None = None
    params: dict[str, Any] = field(default_factory=dict)  # the JSON body's other fields (model, stop, ...)
    at: float = field(default_factory=time.time)


@dataclass
class UploadedFile:
    id: str
    filename: str
    purpose: str
    content: bytes
    created_at: int

    def as_json(self) -> dict[str, Any]:
        return {
            "id": self.id, "object": "file", "bytes": len(self.content), "created_at": self.created_at,
            "filename": self.filename, "purpose": self.purpose, "status": "processed",
            "status_details": None, "expires_at": None,
        }

    @property
    def text(self) -> str:
        return self.content.decode("utf-8", errors="replace")


UPLOAD_MAX_BYTES = 8 * 1024**3  # OpenAI: an Upload holds at most 8 GB
UPLOAD_PART_MAX_BYTES = 64 * 1024**2  # and each Part at most 64 MB
UPLOAD_SECONDS = 3600  # an Upload expires an hour after it is created
FILE_PURPOSES = ("fine-tune", "batch", "batch_output", "assistants", "vision", "user_data", "evals")
JSONL_PURPOSES = ("fine-tune", "batch")  # these take JSONL only


@dataclass
class FakeUpload:
    id: str
    filename: str
    purpose: str
    bytes: int
    mime_type: str
    created_at: int
    status: str = "pending"
    parts: dict[str, bytes] = field(default_factory=dict)  # part id -> bytes, in the order received (kept
    # after completion so a test can see how the file was sent; dropped on cancel)
    file: UploadedFile | None = None
    completed_part_ids: list[str] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        return {
            "id": self.id, "object": "upload", "bytes": self.bytes, "created_at": self.created_at,
            "filename": self.filename, "purpose": self.purpose, "status": self.status,
            "expires_at": self.created_at + UPLOAD_SECONDS, "file": self.file.as_json() if self.file else None,
        }


@dataclass
class FineTuneJob:
    id: str
    model: str
    training_file: str
    validation_file: str | None
    suffix: str | None
    seed: int
    metadata: dict[str, str] | None
    method: dict[str, Any]
    n_epochs: int
    batch_size: int
    learning_rate_multiplier: float
    training_tokens: int  # one pass over the training file
    examples: int
    failure: FineTuneFailure | None
    polls_per_state: dict[str, int]
    created_at: int
    status: str = "validating_files"
    polls_in_state: int = 0
    error: dict[str, Any] | None = None
    fine_tuned_model: str | None = None
    trained_tokens: int | None = None
    finished_at: int | None = None
    events: list[dict[str, Any]] = field(default_factory=list)
    checkpoints: list[dict[str, Any]] = field(default_factory=list)
    result_files: list[str] = field(default_factory=list)
    request_body: dict[str, Any] = field(default_factory=dict)

    def as_json(self) -> dict[str, Any]:
        hyper = {
            "n_epochs": self.n_epochs, "batch_size": self.batch_size,
            "learning_rate_multiplier": self.learning_rate_multiplier,
        }
        method = dict(self.method or {"type": "supervised"})
        if method.get("type") == "supervised":
            method["supervised"] = {"hyperparameters": hyper}
        running = self.status in ("queued", "running")
        return {
            "id": self.id, "object": "fine_tuning.job", "created_at": self.created_at,
            "error": self.error, "fine_tuned_model": self.fine_tuned_model, "finished_at": self.finished_at,
            "hyperparameters": hyper, "model": self.model, "organization_id": "org-coach",
            "result_files": list(self.result_files), "seed": self.seed, "status": self.status,
            "trained_tokens": self.trained_tokens, "training_file": self.training_file,
            "validation_file": self.validation_file, "integrations": [], "metadata": self.metadata,
            "method": method, "user_provided_suffix": self.suffix,
            "estimated_finish": self.created_at + 600 if running else None,
        }


class _HttpError(Exception):
    def __init__(self, status: int, message: str, *, code: str | None = None, type: str | None = None,
                 param: str | None = None, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.body = error_body(status, message=message, code=code, type=type, param=param)
        self.headers = headers or {}


class _Dropped(Exception):
    """The call stalled: answer nothing and close the connection."""


def error_body(status: int, *, message: str | None = None, code: str | None = None, type: str | None = None,
               param: str | None = None) -> dict[str, Any]:
    default_type, default_code, default_message = _DEFAULT_ERRORS.get(
        status, ("server_error" if status >= 500 else "invalid_request_error", None, "Error.")
    )
    return {"error": {
        "message": message or default_message, "type": type or default_type, "param": param,
        "code": code if code is not None else default_code,
    }}


def estimate_tokens(text: str) -> int:
    return math.ceil(len(text) / 4) if text else 0


def story_from_messages(messages: list[dict[str, Any]]) -> str:
    """The story between the STORY delimiters of the last user message, or that whole message."""
    user = next((_content_text(m) for m in reversed(messages) if m.get("role") == "user"), "")
    start, end = user.find(STORY_START), user.rfind(STORY_END)
    if start < 0 or end < start:
        return user.strip()
    inner = user[start + len(STORY_START): end].strip()
    if inner.startswith("Title:"):
        inner = inner.partition("\n")[2].strip()
    return inner


def default_critique(messages: list[dict[str, Any]]) -> str:
    """A plausible editor critique: second person, two paragraphs, praise first and last, a short quote."""
    story = story_from_messages(messages)
    words = re.findall(r"[A-Za-z][A-Za-z'’-]*", story.split("\n", 1)[0]) or ["the", "opening"]
    quote = " ".join(words[:6])
    return (
        f"Your opening, \"{quote}\", pulls me into the scene at once, and you keep the early pacing tight by "
        "trusting short, concrete sentences. The dialogue is where your voice is strongest: you let the "
        "characters talk past each other, and the tension lives in what they leave unsaid. Where the story "
        "loses force is the middle stretch, where you tell me what your narrator feels instead of showing "
        "it; try cutting the sentence that names the fear and give me one physical detail, a hand that "
        "will not stay still or a glance toward the door, so the reader does the work.\n\n"
        "Your word choice is at its best when it is plain and specific, and the closing image lands because "
        "you let it stand without explanation. Keep that restraint as you revise the middle, and the quieter "
        "moments will hit as hard as your ending does."
    )


def _content_text(message: dict[str, Any]) -> str:
    content = message.get("content")
    if isinstance(content, str):
        return content
    if isinstance(content, list):  # content parts
        return "".join(part.get("text", "") for part in content if isinstance(part, dict))
    return ""


def default_epochs(examples: int) -> int:
    """OpenAI's documented default: 3, raised for tiny files and lowered for huge ones."""
    if examples <= 0:
        return 3
    if examples * 3 < 100:
        return min(25, 100 // examples)
    if examples * 3 > 25_000:
        return max(1, 25_000 // examples)
    return 3


def unused_base_url() -> str:
    """A base URL on a loopback port nobody listens on: connections are refused."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/v1"


def _new_id(prefix: str, length: int = 24) -> str:
    return prefix + uuid.uuid4().hex[:length]


_SETTINGS = frozenset({
    "api_key", "reply", "failure_rate", "rate_limit_share", "retry_after", "latency", "stall_rate",
    "stall_seconds", "fault_paths", "models", "strict_models", "fine_tune_polls_per_state",
    "fine_tune_failure", "min_training_examples", "shutdown_dates", "fine_tuning_available", "replies_by_model",
    "batch_polls_per_state", "batch_error_rate", "batch_expire_next", "batch_failure",
})
BATCH_FLOW = ("validating", "in_progress", "finalizing")
BATCH_DONE = ("completed", "failed", "expired", "cancelled")
BATCH_EXPIRED = "This request could not be executed before the completion window expired."


@dataclass
class FakeBatch:
    id: str
    input_file_id: str
    endpoint: str
    completion_window: str
    metadata: dict[str, Any] | None
    expires: bool  # injected: runs out of its completion window half way
    created_at: int = field(default_factory=lambda: int(time.time()))
    status: str = "validating"
    polls: int = 0
    output_file_id: str | None = None
    error_file_id: str | None = None
    errors: list[dict[str, Any]] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=lambda: {"total": 0, "completed": 0, "failed": 0})
    times: dict[str, int] = field(default_factory=dict)

    def as_json(self) -> dict[str, Any]:
        at = {f"{name}_at": self.times.get(name) for name in (
            "in_progress", "finalizing", "completed", "failed", "expired", "cancelling", "cancelled")}
        return {
            "id": self.id, "object": "batch", "endpoint": self.endpoint,
            "errors": {"object": "list", "data": self.errors} if self.errors else None,
            "input_file_id": self.input_file_id, "completion_window": self.completion_window,
            "status": self.status, "output_file_id": self.output_file_id, "error_file_id": self.error_file_id,
            "created_at": self.created_at, "expires_at": self.created_at + 24 * 3600, **at,
            "request_counts": dict(self.counts), "metadata": self.metadata,
        }


class FakeOpenAIServer(LoopbackServer, ModelService):
    """An OpenAI-compatible server on 127.0.0.1 in a background thread.

    Reply selection for chat completions, first match wins: a scripted Reply at the head of the script,
    then the reply queue, then `replies_by_model[model]` (so several fake models can answer side by side),
    then `reply` (a string or a callable of the messages), then `default_critique`.
    Faults apply to the paths in `fault_paths` (chat completions by default); a non-empty script decides
    the next call's outcome before any random fault is drawn. All settings can be changed while it runs,
    with `configure(...)` or by assigning the attribute.
    """

    thread_name = "fake-openai"
    settings = _SETTINGS
    settings_label = "fake server"
    reply_type = Reply
    default_text = staticmethod(default_critique)

    @property
    def handler(self) -> type[QuietHandler]:
        return _Handler

    def __init__(
        self,
        *,
        api_key: str | None = None,
        reply: str | ReplyFn | None = None,
        replies: Iterable[str | Reply] = (),
        script: Iterable[ScriptItem] = (),
        failure_rate: float = 0.0,
        rate_limit_share: float = 0.5,
        retry_after: float | None = 1.0,
        latency: float | tuple[float, float] = 0.0,
        stall_rate: float = 0.0,
        stall_seconds: float = 5.0,
        seed: int = 0,
        fault_paths: Iterable[str] = ("/v1/chat/completions",),
        models: Iterable[str] = DEFAULT_MODELS,
        strict_models: bool = False,
        fine_tune_polls_per_state: int | dict[str, int] = 1,
        fine_tune_failure: FineTuneFailure | None = None,
        min_training_examples: int = 10,
        shutdown_dates: dict[str, str | None] | None = None,
        fine_tuning_available: bool = True,
        replies_by_model: dict[str, str | ReplyFn] | None = None,
        batch_polls_per_state: int = 1,
        batch_error_rate: float = 0.0,
        batch_expire_next: int = 0,
        batch_failure: str | None = None,
    ) -> None:
        super().__init__()
        self.api_key = api_key
        self.reply = reply
        self.failure_rate = failure_rate
        self.rate_limit_share = rate_limit_share  # fraction of random failures answered 429 (rest: 500)
        self.retry_after = retry_after
        self.latency = latency
        self.stall_rate = stall_rate
        self.stall_seconds = stall_seconds
        self.fault_paths = tuple(fault_paths)
        self.models = list(models)
        self.strict_models = strict_models
        self.fine_tune_polls_per_state = fine_tune_polls_per_state
        self.fine_tune_failure = fine_tune_failure
        self.min_training_examples = min_training_examples
        self.shutdown_dates = dict(DEFAULT_SHUTDOWN_DATES if shutdown_dates is None else shutdown_dates)
        self.fine_tuning_available = fine_tuning_available
        self.replies_by_model = dict(replies_by_model or {})
        self.batch_polls_per_state = batch_polls_per_state
        self.batch_error_rate = batch_error_rate
        self.batch_expire_next = batch_expire_next
        self.batch_failure = batch_failure
        self._batches: dict[str, FakeBatch] = {}

        self._init_service(seed=seed, replies=replies,
                           usage_keys=("prompt_tokens", "completion_tokens", "total_tokens"))
        self._script: list[ScriptItem] = list(script)
        self._files: dict[str, UploadedFile] = {}
        self._uploads: dict[str, FakeUpload] = {}
        self._jobs: dict[str, FineTuneJob] = {}

    # -- lifecycle -------------------------------------------------------------------------------------

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    # -- configuration (configure, reseed and queue_replies come from ModelService) -------------------

    def push_script(self, *items: ScriptItem) -> None:
        """Outcomes for the next calls, in order: 200, an error status, "stall", a Fault or a Reply."""
        with self._lock:
            self._script.extend(items)

    # -- accounting (the request log and paid calls come from PaidCalls) ------------------------------

    def chat_requests(self) -> list[RequestLog]:
        return [r for r in self.requests if r.path.endswith("/chat/completions")]

    def status_counts(self, path_suffix: str = "/chat/completions") -> dict[int, int]:
        return dict(Counter(r.status for r in self.requests if r.path.endswith(path_suffix)))

    files: Snapshot[dict[str, UploadedFile]] = Snapshot("_files", dict)

    def file_content(self, file_id: str) -> str:
        with self._lock:
            return self._files[file_id].text

    jobs: Snapshot[dict[str, FineTuneJob]] = Snapshot("_jobs", dict)

    # -- request handling (called from handler threads) -----------------------------------------------

    def _check_auth(self, headers: Any) -> None:
        if self.api_key is None:
            return
        auth = headers.get("Authorization") or ""
        if not auth.startswith("Bearer ") or not auth[7:].strip():
            raise _HttpError(401, "You didn't provide an API key. You need to provide your API key in an "
                                  "Authorization header using Bearer auth.", code=None)
        given = auth[7:].strip()
        if given != self.api_key:
            masked = given[:3] + "*" * 4 + given[-4:] if len(given) > 8 else "****"
            raise _HttpError(401, f"Incorrect API key provided: {masked}.", code="invalid_api_key")

    def _draw_fault(self, path: str) -> ScriptItem | None:
        """The scripted or random outcome of this call; None means answer normally."""
        if not any(path.startswith(p) for p in self.fault_paths):
            return None
        with self._lock:
            if self._script:
                return self._script.pop(0)
            if self.stall_rate and self._rng.random() < self.stall_rate:
                return STALL
            if self.failure_rate and self._rng.random() < self.failure_rate:
                return 429 if self._rng.random() < self.rate_limit_share else 500
            return None

    def _apply_fault(self, item: ScriptItem | None) -> Reply | None:
        """Raise for an error or stall outcome; return a scripted Reply; None for a normal answer."""
        if item is None or item == 200 or item == "ok":
            return None
        if isinstance(item, Reply):
            return item
        if item == "stall":
            item = STALL
        if item == "content_policy":
            item = CONTENT_POLICY
        if isinstance(item, int):
            item = Fault(item)
        if not isinstance(item, Fault):
            raise ValueError(f"unknown script item {item!r}")
        if item.stall:
            raise _Dropped
        headers: dict[str, str] = {}
        retry_after = item.retry_after if item.retry_after is not None else self.retry_after
        if item.status == 429 and retry_after is not None and item.code != "insufficient_quota":
            headers["retry-after"] = f"{retry_after:g}"
            headers["retry-after-ms"] = str(int(retry_after * 1000))
        raise _HttpError(item.status, item.message or "", code=item.code, type=item.type, param=item.param,
                         headers=headers)

    def _reply_setting(self, model: str) -> str | ReplyFn | None:
        return self.replies_by_model.get(model, self.reply)

    def chat_completion(self, body: dict[str, Any], scripted: Reply | None) -> dict[str, Any]:
        messages = body.get("messages")
        model = body.get("model")
        if not isinstance(model, str) or not model:
            raise _HttpError(400, "you must provide a model parameter", param="model")
        if not isinstance(messages, list) or not messages:
            raise _HttpError(400, "'messages' must be a non-empty array", param="messages")
        if self.strict_models and model not in self.model_ids():
            raise _HttpError(404, f"The model `{model}` does not exist or you do not have access to it.",
                             code="model_not_found", param="model")
        chosen = self._pick_reply(messages, scripted, model)
        text, finish = chosen.text, chosen.finish_reason
        for stop in _as_list(body.get("stop")):
            if stop and stop in text:
                text, finish = text[: text.index(stop)], "stop"
        limit = body.get("max_completion_tokens") or body.get("max_tokens")
        if isinstance(limit, int) and limit > 0 and estimate_tokens(text) > limit:
            text, finish = text[: limit * 4], "length"
        prompt_tokens = sum(3 + estimate_tokens(_content_text(m)) for m in messages) + 3
        completion_tokens = estimate_tokens(text)
        usage = {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
                 "total_tokens": prompt_tokens + completion_tokens}
        response: dict[str, Any] = {
            "id": _new_id("chatcmpl-"), "object": "chat.completion", "created": int(time.time()),
            "model": model, "system_fingerprint": "fp_fake",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": text, "refusal": None},
                         "logprobs": None, "finish_reason": finish}],
        }
        if chosen.usage:
            response["usage"] = usage
        with self._lock:
            for key, value in usage.items():
                self._usage[key] += value
        return response

    def model_object(self, model: str) -> dict[str, Any]:
        """A model as GET /v1/models lists it, with `shutdown_date` (a fine-tune inherits its base's)."""
        base = model.split(":")[1] if model.startswith("ft:") and model.count(":") >= 2 else model
        shutdown = self.shutdown_dates.get(model, self.shutdown_dates.get(base))
        return {"id": model, "object": "model", "created": 1_700_000_000,
                "owned_by": "user-coach" if model.startswith("ft:") else "system", "shutdown_date": shutdown}

    def model_ids(self) -> list[str]:
        with self._lock:
            tuned = [j.fine_tuned_model for j in self._jobs.values() if j.fine_tuned_model]
            return list(dict.fromkeys([*self.models, *tuned]))

    # -- files -----------------------------------------------------------------------------------------

    def upload_file(self, filename: str, purpose: str, content: bytes) -> UploadedFile:
        if purpose not in FILE_PURPOSES:
            raise _HttpError(400, f"'{purpose}' is not one of {list(FILE_PURPOSES)} - 'purpose'", param="purpose")
        uploaded = UploadedFile(_new_id("file-"), filename or "upload", purpose, content, int(time.time()))
        with self._lock:
            self._files[uploaded.id] = uploaded
        return uploaded

    def get_file(self, file_id: str) -> UploadedFile:
        with self._lock:
            found = self._files.get(file_id)
        if found is None:
            raise _HttpError(404, f"No such File object: {file_id}", param="id", code=None)
        return found

    # -- uploads (a file in parts) ---------------------------------------------------------------------

    uploads: Snapshot[dict[str, FakeUpload]] = Snapshot("_uploads", dict)

    def create_upload(self, body: dict[str, Any]) -> FakeUpload:
        for name in ("bytes", "filename", "mime_type", "purpose"):
            if name not in body:
                raise _HttpError(400, f"Missing required parameter: '{name}'.", param=name,
                                 code="missing_required_parameter")
        size, purpose, mime_type = body["bytes"], body["purpose"], body["mime_type"]
        if not isinstance(size, int) or isinstance(size, bool) or not 0 < size <= UPLOAD_MAX_BYTES:
            raise _HttpError(400, f"bytes must be an integer between 1 and {UPLOAD_MAX_BYTES}.", param="bytes")
        if purpose not in FILE_PURPOSES:
            raise _HttpError(400, f"'{purpose}' is not one of {list(FILE_PURPOSES)} - 'purpose'", param="purpose")
        if purpose in JSONL_PURPOSES and mime_type != "application/jsonl":
            raise _HttpError(400, f"Invalid mime type {mime_type!r} for purpose '{purpose}': expected "
                                  "'application/jsonl'.", param="mime_type")
        upload = FakeUpload(_new_id("upload_"), str(body["filename"]), purpose, size, str(mime_type),
                            int(time.time()))
        with self._lock:
            self._uploads[upload.id] = upload
        return upload

    def _pending_upload(self, upload_id: str) -> FakeUpload:
        upload = self._uploads.get(upload_id)
        if upload is None:
            raise _HttpError(404, f"No such Upload object: {upload_id}", param="upload_id", code=None)
        if upload.status != "pending":
            raise _HttpError(400, f"Upload {upload_id} is {upload.status}: it takes no more parts.",
                             param="upload_id")
        return upload

    def add_upload_part(self, upload_id: str, data: bytes) -> dict[str, Any]:
        if len(data) > UPLOAD_PART_MAX_BYTES:
            raise _HttpError(400, f"A part may be at most {UPLOAD_PART_MAX_BYTES} bytes; got {len(data)}.",
                             param="data")
        with self._lock:
            upload = self._pending_upload(upload_id)
            if sum(map(len, upload.parts.values())) + len(data) > upload.bytes:
                raise _HttpError(400, f"The parts exceed the Upload's {upload.bytes} bytes.", param="data")
            part_id = _new_id("part_")
            upload.parts[part_id] = data
        return {"id": part_id, "object": "upload.part", "created_at": int(time.time()), "upload_id": upload_id}

    def complete_upload(self, upload_id: str, body: dict[str, Any]) -> FakeUpload:
        part_ids = body.get("part_ids")
        if not isinstance(part_ids, list) or not all(isinstance(p, str) for p in part_ids):
            raise _HttpError(400, "Missing required parameter: 'part_ids'.", param="part_ids",
                             code="missing_required_parameter")
        with self._lock:
            upload = self._pending_upload(upload_id)
            unknown = [p for p in part_ids if p not in upload.parts]
            if unknown or len(set(part_ids)) != len(part_ids):
                raise _HttpError(400, f"Invalid part_ids for Upload {upload_id}: {unknown or 'repeated'}.",
                                 param="part_ids")
            content = b"".join(upload.parts[p] for p in part_ids)  # in the order given, not as received
            if len(content) != upload.bytes:
                raise _HttpError(400, f"The number of bytes uploaded ({len(content)}) does not match the number "
                                      f"of bytes expected ({upload.bytes}).", param="part_ids")
            md5 = body.get("md5")
            if md5 and hashlib.md5(content).hexdigest() != md5:
                raise _HttpError(400, "The md5 checksum does not match the bytes uploaded.", param="md5")
            upload.file = self.upload_file(upload.filename, upload.purpose, content)
            upload.status, upload.completed_part_ids = "completed", list(part_ids)
            return upload

    def cancel_upload(self, upload_id: str) -> FakeUpload:
        with self._lock:
            upload = self._pending_upload(upload_id)
            upload.status, upload.parts = "cancelled", {}
            return upload

    # -- batches ---------------------------------------------------------------------------------------

    batches: Snapshot[dict[str, FakeBatch]] = Snapshot("_batches", dict)

    def create_batch(self, body: dict[str, Any]) -> FakeBatch:
        with self._lock:
            file_id = body.get("input_file_id")
            file = self._files.get(file_id) if isinstance(file_id, str) else None
        if file is None:
            raise _HttpError(400, f"invalid input_file_id: {file_id}", param="input_file_id")
        if file.purpose != "batch":
            raise _HttpError(400, f"The input file {file.id} must have purpose 'batch'.", param="input_file_id")
        if body.get("endpoint") not in ("/v1/chat/completions", "/v1/responses", "/v1/embeddings"):
            raise _HttpError(400, f"Invalid endpoint: {body.get('endpoint')!r}.", param="endpoint")
        if body.get("completion_window") != "24h":
            raise _HttpError(400, "completion_window must be '24h'.", param="completion_window")
        metadata = body.get("metadata")
        with self._lock:
            expires = self.batch_expire_next > 0
            self.batch_expire_next -= 1 if expires else 0
            batch = FakeBatch(_new_id("batch_"), file.id, body["endpoint"], "24h", metadata, expires)
            self._batches[batch.id] = batch
        return batch

    def get_batch(self, batch_id: str, *, advance: bool) -> FakeBatch:
        with self._lock:
            batch = self._batches.get(batch_id)
            if batch is None:
                raise _HttpError(404, f"No batch found with id '{batch_id}'.", code=None)
            if advance and batch.status not in BATCH_DONE:
                batch.polls += 1
                if batch.polls >= self.batch_polls_per_state:
                    batch.polls = 0
                    self._advance_batch(batch)
            return batch

    def cancel_batch(self, batch_id: str) -> FakeBatch:
        with self._lock:
            batch = self.get_batch(batch_id, advance=False)
            if batch.status in BATCH_DONE or batch.status == "cancelling":
                raise _HttpError(400, f"Cannot cancel a batch with status '{batch.status}'.", code=None)
            batch.status, batch.times["cancelling"] = "cancelling", int(time.time())
            return batch

    def _advance_batch(self, batch: FakeBatch) -> None:
        now = int(time.time())
        if batch.status == "cancelling":
            batch.status, batch.times["cancelled"] = "cancelled", now
        elif batch.status == "validating":
            problem = self.batch_failure or self._batch_problem(batch)
            if problem:
                batch.errors = [{"code": "invalid_request", "message": problem, "param": None, "line": None}]
                batch.status, batch.times["failed"] = "failed", now
            else:
                batch.status, batch.times["in_progress"] = "in_progress", now
        elif batch.status == "in_progress":
            batch.status, batch.times["finalizing"] = "finalizing", now
        elif batch.status == "finalizing":
            self._run_batch(batch)
            done = "expired" if batch.expires else "completed"
            batch.status, batch.times[done] = done, now

    def _batch_problem(self, batch: FakeBatch) -> str | None:
        seen: set[str] = set()
        lines = [line for line in self._files[batch.input_file_id].text.splitlines() if line.strip()]
        for number, line in enumerate(lines, start=1):
            try:
                row = json.loads(line)
            except json.JSONDecodeError:
                return f"Line {number}: the line is not valid JSON."
            custom_id = row.get("custom_id") if isinstance(row, dict) else None
            if not isinstance(custom_id, str) or not custom_id:
                return f"Line {number}: custom_id is required."
            if custom_id in seen:
                return f"Line {number}: the custom_id '{custom_id}' is a duplicate."
            seen.add(custom_id)
            if row.get("method") != "POST" or row.get("url") != batch.endpoint:
                return f"Line {number}: the request must POST to the batch's endpoint {batch.endpoint}."
        batch.counts["total"] = len(lines)
        return None if lines else "The input file is empty."

    def _run_batch(self, batch: FakeBatch) -> None:
        """Answer the requests (the first half when the batch expires); write the output and error files."""
        rows = [json.loads(line) for line in self._files[batch.input_file_id].text.splitlines() if line.strip()]
        cutoff = len(rows) // 2 if batch.expires else len(rows)
        output: list[str] = []
        errors: list[str] = []
        for index, row in enumerate(rows):
            line_id = _new_id("batch_req_")
            if index >= cutoff:
                errors.append(json.dumps({"id": line_id, "custom_id": row["custom_id"], "response": None,
                                          "error": {"code": "batch_expired", "message": BATCH_EXPIRED}}))
                batch.counts["failed"] += 1
                continue
            if self.batch_error_rate and self._rng.random() < self.batch_error_rate:
                body = error_body(500, message="The server had an error processing your request.",
                                  type="server_error")
                errors.append(json.dumps({"id": line_id, "custom_id": row["custom_id"], "response": {
                    "status_code": 500, "request_id": _new_id("req_", 32), "body": body}, "error": None}))
                batch.counts["failed"] += 1
                continue
            try:
                completion = self.chat_completion(row.get("body") or {}, None)
            except _HttpError as err:
                errors.append(json.dumps({"id": line_id, "custom_id": row["custom_id"], "response": {
                    "status_code": err.status, "request_id": _new_id("req_", 32), "body": err.body},
                    "error": None}))
                batch.counts["failed"] += 1
                continue
            messages = (row.get("body") or {}).get("messages") or []
            self.count_success("\n".join(_content_text(m) for m in messages if m.get("role") == "user"), +1)
            output.append(json.dumps({"id": line_id, "custom_id": row["custom_id"], "response": {
                "status_code": 200, "request_id": _new_id("req_", 32), "body": completion}, "error": None}))
            batch.counts["completed"] += 1
        if output:
            batch.output_file_id = self.upload_file(f"{batch.id}_output.jsonl", "batch_output",
                                                    "".join(line + "\n" for line in output).encode()).id
        if errors:
            batch.error_file_id = self.upload_file(f"{batch.id}_error.jsonl", "batch_output",
                                                   "".join(line + "\n" for line in errors).encode()).id

    # -- fine-tuning -----------------------------------------------------------------------------------

    def create_job(self, body: dict[str, Any]) -> FineTuneJob:
        model = body.get("model")
        if not isinstance(model, str) or not model:
            raise _HttpError(400, "Missing required parameter: 'model'.", param="model",
                             code="missing_required_parameter")
        training_id = body.get("training_file")
        if not isinstance(training_id, str):
            raise _HttpError(400, "Missing required parameter: 'training_file'.", param="training_file",
                             code="missing_required_parameter")
        training = self.get_file_or_400(training_id, "training_file")
        validation_id = body.get("validation_file")
        if validation_id is not None:
            self.get_file_or_400(validation_id, "validation_file")
        suffix = body.get("suffix")
        if suffix is not None and (not isinstance(suffix, str) or len(suffix) > 64):
            raise _HttpError(400, "suffix must be a string of at most 64 characters", param="suffix")
        method = body.get("method") or {"type": "supervised", "supervised": {}}
        hyper = dict(body.get("hyperparameters") or {})
        hyper.update(((method.get("supervised") or {}).get("hyperparameters")) or {})

        examples, tokens, problem = inspect_training_jsonl(training.text)
        failure = self.fine_tune_failure
        if problem is not None:
            failure = FineTuneFailure(message=f"The job failed due to an invalid training file. {problem}")
        elif examples < self.min_training_examples:
            failure = FineTuneFailure(message=f"Training file has {examples} example(s), but must have at "
                                              f"least {self.min_training_examples} examples.")
        n_epochs = hyper.get("n_epochs")
        epochs = n_epochs if isinstance(n_epochs, int) else default_epochs(examples)
        batch = hyper.get("batch_size")
        lr = hyper.get("learning_rate_multiplier")
        polls = self.fine_tune_polls_per_state
        per_state = dict(polls) if isinstance(polls, dict) else {s: int(polls) for s in JOB_STATES}
        job = FineTuneJob(
            id=_new_id("ftjob-"), model=model, training_file=training_id, validation_file=validation_id,
            suffix=suffix, seed=int(body.get("seed") or 42), metadata=body.get("metadata"), method=method,
            n_epochs=epochs, batch_size=batch if isinstance(batch, int) else max(1, min(8, examples // 10)),
            learning_rate_multiplier=float(lr) if isinstance(lr, int | float) else 1.8,
            training_tokens=tokens, examples=examples, failure=failure, polls_per_state=per_state,
            created_at=int(time.time()), request_body=body,
        )
        self._event(job, "info", f"Validating training file: {training_id}")
        with self._lock:
            self._jobs[job.id] = job
        return job

    def get_file_or_400(self, file_id: Any, param: str) -> UploadedFile:
        with self._lock:
            found = self._files.get(file_id) if isinstance(file_id, str) else None
        if found is None:
            raise _HttpError(400, f"invalid {param}: {file_id}", param=param, code=f"invalid_{param}")
        if found.purpose != "fine-tune":
            raise _HttpError(400, f"File {file_id} has purpose '{found.purpose}', expected 'fine-tune'.",
                             param=param, code=f"invalid_{param}")
        return found

    def get_job(self, job_id: str, *, advance: bool) -> FineTuneJob:
        with self._lock:
            job = self._jobs.get(job_id)
            if job is None:
                raise _HttpError(404, f"Could not find fine tune job: {job_id}", param="fine_tuning_job_id",
                                 code="fine_tune_job_not_found")
            if advance:
                self._advance(job)
            return job

    def _advance(self, job: FineTuneJob) -> None:
        """One poll's worth of progress: each state lasts `polls_per_state` polls, then moves on."""
        if job.status in TERMINAL_STATES:
            return
        job.polls_in_state += 1
        if job.polls_in_state < job.polls_per_state.get(job.status, 1):
            return
        if job.failure is not None and job.status == job.failure.at_state:
            self._fail(job, job.failure)
            return
        following = JOB_STATES[JOB_STATES.index(job.status) + 1]
        job.status, job.polls_in_state = following, 0
        if following == "queued":
            self._event(job, "info", "Files validated, moving job to queued state")
        elif following == "running":
            self._event(job, "info", "Fine-tuning job started")
        elif following == "succeeded":
            self._succeed(job)

    def _fail(self, job: FineTuneJob, failure: FineTuneFailure) -> None:
        job.status = "failed"
        job.finished_at = int(time.time())
        job.error = {"code": failure.code, "message": failure.message, "param": failure.param}
        self._event(job, "error", failure.message)

    def _succeed(self, job: FineTuneJob) -> None:
        short = job.id.removeprefix("ftjob-")[:8]
        job.fine_tuned_model = f"ft:{job.model}:coach:{job.suffix or 'model'}:{short}"
        job.trained_tokens = job.training_tokens * job.n_epochs
        job.finished_at = int(time.time())
        steps_per_epoch = max(1, math.ceil(job.examples / max(1, job.batch_size)))
        for epoch in range(1, job.n_epochs + 1):
            step = epoch * steps_per_epoch
            loss = round(1.9 / (1 + epoch), 4)
            self._event(job, "info", f"Step {step}/{steps_per_epoch * job.n_epochs}: training loss={loss}")
            job.checkpoints.append({
                "id": _new_id("ftckpt_"), "object": "fine_tuning.job.checkpoint",
                "created_at": int(time.time()), "fine_tuning_job_id": job.id, "step_number": step,
                "fine_tuned_model_checkpoint": f"{job.fine_tuned_model}:ckpt-step-{step}",
                "metrics": {
                    "step": float(step), "train_loss": loss, "train_mean_token_accuracy": 0.6 + 0.05 * epoch,
                    "valid_loss": loss + 0.1, "valid_mean_token_accuracy": 0.55 + 0.05 * epoch,
                    "full_valid_loss": loss + 0.12, "full_valid_mean_token_accuracy": 0.55,
                },
            })
        results = self.upload_file("step_metrics.csv", "fine-tune", b"step,train_loss\n")
        with self._lock:  # results files have their own purpose
            self._files[results.id] = UploadedFile(results.id, results.filename, "fine-tune-results",
                                                   results.content, results.created_at)
        job.result_files = [results.id]
        self._event(job, "info", f"New fine-tuned model created: {job.fine_tuned_model}")
        self._event(job, "info", "The job has successfully completed")

    def cancel_job(self, job_id: str) -> FineTuneJob:
        with self._lock:
            job = self.get_job(job_id, advance=False)
            if job.status in TERMINAL_STATES:
                raise _HttpError(400, f"Job has already {job.status}.", param="fine_tuning_job_id")
            job.status = "cancelled"
            job.finished_at = int(time.time())
            self._event(job, "info", "Fine-tuning job cancelled")
            return job

    def _event(self, job: FineTuneJob, level: str, message: str) -> None:
        job.events.append({
            "id": _new_id("ftevent-"), "object": "fine_tuning.job.event", "created_at": int(time.time()),
            "level": level, "message": message, "type": "message", "data": {},
        })


def jsonl_rows(text: str) -> tuple[list[tuple[int, Any]], int | None]:
    """(line number, value) of each non-blank line of a JSONL text up to the first one that is not JSON, and
    that line's number (None when all parse)."""
    rows: list[tuple[int, Any]] = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            rows.append((number, json.loads(line)))
        except json.JSONDecodeError:
            return rows, number
    return rows, None


def inspect_training_jsonl(text: str) -> tuple[int, int, str | None]:
    """(examples, tokens of one pass at chars/4, the first problem or None)."""
    examples = tokens = 0
    rows, not_json = jsonl_rows(text)
    for number, row in rows:
        messages = row.get("messages") if isinstance(row, dict) else None
        if not isinstance(messages, list) or not messages:
            return examples, tokens, f"Line {number} has no 'messages' list."
        if not any(isinstance(m, dict) and m.get("role") == "assistant" for m in messages):
            return examples, tokens, f"Line {number} has no assistant message."
        examples += 1
        tokens += estimate_tokens("".join(_content_text(m) for m in messages if isinstance(m, dict)))
    if not_json is not None:
        return examples, tokens, f"Line {not_json} is not valid JSON."
    return examples, tokens, None


def _as_list(value: Any) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return [value]
    return [v for v in value if isinstance(v, str)]


def _messages_hash(messages: Any) -> str:
    return hashlib.sha256(json.dumps(messages, sort_keys=True).encode()).hexdigest()[:16]


def _describe_chat(entry: RequestLog, raw: bytes) -> None:
    """Fill the log entry of a chat call before any fault, so failed calls are identifiable too."""
    try:
        body = json.loads(raw or b"{}")
    except json.JSONDecodeError:
        return
    if not isinstance(body, dict):
        return
    entry.model = body.get("model")
    messages = body.get("messages")
    entry.messages_hash = _messages_hash(messages)
    entry.params = {k: v for k, v in body.items() if k != "messages"}
    if isinstance(messages, list):
        entry.user_content = "\n".join(_content_text(m) for m in messages
                                       if isinstance(m, dict) and m.get("role") == "user")


def _list_page(items: list[dict[str, Any]], query: dict[str, str]) -> dict[str, Any]:
    """A cursor page as the SDK expects: `after` is the id of the last item already seen."""
    after = query.get("after")
    if after:
        ids = [i["id"] for i in items]
        items = items[ids.index(after) + 1:] if after in ids else []
    limit = int(query.get("limit") or 20)
    return {"object": "list", "data": items[:limit], "has_more": len(items) > limit}


class _Handler(QuietHandler):
    fake: FakeOpenAIServer
    server_version = "fake-openai/1.0"

    def _dispatch(self, method: str) -> None:
        path, _, query_string = self.path.partition("?")
        query = dict(p.partition("=")[::2] for p in query_string.split("&") if p)
        body_bytes = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        entry = RequestLog(method=method, path=path, status=200)
        if method == "POST" and path.endswith("/chat/completions"):
            _describe_chat(entry, body_bytes)
        fake = self.fake
        try:
            fake._check_auth(self.headers)
            scripted = fake._apply_fault(fake._draw_fault(path))
            latency = fake._draw_latency()
            if latency > 0:
                fake._stop.wait(latency)
            status, payload = self._route(method, path, query, body_bytes, scripted)
        except _Dropped:
            entry.status = 0
            fake._record(entry)  # logged as it starts, so a test sees it while the client still waits
            fake._stop.wait(fake.stall_seconds)
            self.close_connection = True
            return
        except _HttpError as err:
            entry.status = err.status
            fake._record(entry)
            self._send_json(err.status, err.body, err.headers)
            return
        entry.status = status
        fake._record(entry)
        paid = status == 200 and path.endswith("/chat/completions")
        fake.deliver_paid(entry.user_content if paid else None, lambda: self._send_payload(status, payload))

    def _route(self, method: str, path: str, query: dict[str, str], raw: bytes,
               scripted: Reply | None) -> tuple[int, dict[str, Any] | bytes]:
        fake = self.fake
        parts = [p for p in path.split("/") if p]
        if parts[:1] != ["v1"]:
            raise _HttpError(404, f"Invalid URL ({method} {path})", code=None)
        parts = parts[1:]
        if method == "POST" and parts == ["chat", "completions"]:
            return 200, fake.chat_completion(self._json(raw), scripted)
        if parts == ["models"] and method == "GET":
            return 200, {"object": "list", "data": [fake.model_object(m) for m in fake.model_ids()]}
        if len(parts) == 2 and parts[0] == "models" and method == "GET":
            if parts[1] not in fake.model_ids():
                raise _HttpError(404, f"The model '{parts[1]}' does not exist", code="model_not_found",
                                 param="model")
            return 200, fake.model_object(parts[1])
        if parts[:1] == ["files"]:
            return self._files_route(method, parts[1:], query, raw)
        if parts[:1] == ["uploads"]:
            return self._uploads_route(method, parts[1:], raw)
        if parts[:2] == ["fine_tuning", "jobs"]:
            return self._jobs_route(method, parts[2:], query, raw)
        if parts[:1] == ["batches"]:
            return self._batches_route(method, parts[1:], query, raw)
        raise _HttpError(404, f"Invalid URL ({method} {path})", code=None)

    def _files_route(self, method: str, rest: list[str], query: dict[str, str],
                     raw: bytes) -> tuple[int, dict[str, Any] | bytes]:
        fake = self.fake
        if method == "POST" and not rest:
            fields = _parse_multipart(self.headers.get("Content-Type") or "", raw)
            purpose = fields.get("purpose", (None, b""))[1].decode()
            if "file" not in fields:
                raise _HttpError(400, "Missing required parameter: 'file'.", param="file",
                                 code="missing_required_parameter")
            filename, content = fields["file"]
            return 200, fake.upload_file(filename or "upload.jsonl", purpose, content).as_json()
        if method == "GET" and not rest:
            items = sorted((f.as_json() for f in fake.files.values()), key=lambda f: -f["created_at"])
            return 200, {"object": "list", "data": items, "has_more": False}
        if method == "GET" and len(rest) == 1:
            return 200, fake.get_file(rest[0]).as_json()
        if method == "GET" and len(rest) == 2 and rest[1] == "content":
            return 200, fake.get_file(rest[0]).content
        if method == "DELETE" and len(rest) == 1:
            fake.get_file(rest[0])
            with fake._lock:
                del fake._files[rest[0]]
            return 200, {"id": rest[0], "object": "file", "deleted": True}
        raise _HttpError(404, "Invalid URL", code=None)

    def _uploads_route(self, method: str, rest: list[str], raw: bytes) -> tuple[int, dict[str, Any]]:
        fake = self.fake
        if method == "POST" and not rest:
            return 200, fake.create_upload(self._json(raw)).as_json()
        if method == "POST" and len(rest) == 2 and rest[1] == "parts":
            fields = _parse_multipart(self.headers.get("Content-Type") or "", raw)
            if "data" not in fields:
                raise _HttpError(400, "Missing required parameter: 'data'.", param="data",
                                 code="missing_required_parameter")
            return 200, fake.add_upload_part(rest[0], fields["data"][1])
        if method == "POST" and len(rest) == 2 and rest[1] == "complete":
            return 200, fake.complete_upload(rest[0], self._json(raw)).as_json()
        if method == "POST" and len(rest) == 2 and rest[1] == "cancel":
            return 200, fake.cancel_upload(rest[0]).as_json()
        raise _HttpError(404, "Invalid URL", code=None)

    def _jobs_route(self, method: str, rest: list[str], query: dict[str, str],
                    raw: bytes) -> tuple[int, dict[str, Any]]:
        fake = self.fake
        if method == "POST" and not rest:
            if not fake.fine_tuning_available:
                raise _HttpError(403, FINE_TUNING_UNAVAILABLE, code=None)
            return 200, fake.create_job(self._json(raw)).as_json()
        if method == "GET" and not rest:
            jobs = sorted((j.as_json() for j in fake.jobs.values()), key=lambda j: -j["created_at"])
            return 200, _list_page(jobs, query)
        if method == "GET" and len(rest) == 1:
            return 200, fake.get_job(rest[0], advance=True).as_json()
        if method == "GET" and len(rest) == 2 and rest[1] == "events":
            job = fake.get_job(rest[0], advance=False)
            return 200, _list_page(list(reversed(job.events)), query)
        if method == "GET" and len(rest) == 2 and rest[1] == "checkpoints":
            job = fake.get_job(rest[0], advance=False)
            return 200, _list_page(list(reversed(job.checkpoints)), query)
        if method == "POST" and len(rest) == 2 and rest[1] == "cancel":
            return 200, fake.cancel_job(rest[0]).as_json()
        raise _HttpError(404, "Invalid URL", code=None)

    def _batches_route(self, method: str, rest: list[str], query: dict[str, str],
                       raw: bytes) -> tuple[int, dict[str, Any]]:
        fake = self.fake
        if method == "POST" and not rest:
            return 200, fake.create_batch(self._json(raw)).as_json()
        if method == "GET" and not rest:
            batches = sorted((b.as_json() for b in fake.batches.values()), key=lambda b: -b["created_at"])
            return 200, _list_page(batches, query)
        if method == "GET" and len(rest) == 1:
            return 200, fake.get_batch(rest[0], advance=True).as_json()
        if method == "POST" and len(rest) == 2 and rest[1] == "cancel":
            return 200, fake.cancel_batch(rest[0]).as_json()
        raise _HttpError(404, "Invalid URL", code=None)

    @staticmethod
    def _json(raw: bytes) -> dict[str, Any]:
        try:
            body = json.loads(raw or b"{}")
        except json.JSONDecodeError as err:
            raise _HttpError(400, f"We could not parse the JSON body of your request: {err}") from None
        if not isinstance(body, dict):
            raise _HttpError(400, "The request body must be a JSON object.")
        return body

    def _send_payload(self, status: int, payload: dict[str, Any] | bytes) -> bool:
        if isinstance(payload, bytes):
            return self._send(status, payload, "application/octet-stream", {})
        return self._send_json(status, payload)

    def _send_json(self, status: int, payload: dict[str, Any], headers: dict[str, str] | None = None) -> bool:
        data = json.dumps(payload).encode()
        return self._send(status, data, "application/json", headers or {})

    def _send(self, status: int, data: bytes, content_type: str, headers: dict[str, str]) -> bool:
        return self._write(status, data, {
            "Content-Type": content_type, "Content-Length": str(len(data)),
            "x-request-id": _new_id("req_", 32), "openai-processing-ms": "1", **headers,
        })


def _parse_multipart(content_type: str, raw: bytes) -> dict[str, tuple[str | None, bytes]]:
    """name -> (filename, bytes) of a multipart/form-data body, bytes kept exactly as sent."""
    match = re.search(r'boundary="?([^";]+)"?', content_type)
    if "multipart/form-data" not in content_type or match is None:
        raise _HttpError(400, "Expected a multipart/form-data body.")
    delimiter = b"--" + match.group(1).encode()
    fields: dict[str, tuple[str | None, bytes]] = {}
    for chunk in raw.split(delimiter)[1:]:
        if chunk.startswith(b"--"):  # the closing delimiter
            break
        head, _, body = chunk.removeprefix(b"\r\n").partition(b"\r\n\r\n")
        disposition = next((line for line in head.decode("utf-8", "replace").split("\r\n")
                            if line.lower().startswith("content-disposition")), "")
        name = re.search(r'\bname="([^"]*)"', disposition)
        filename = re.search(r'\bfilename="([^"]*)"', disposition)
        if name:
            fields[name.group(1)] = (filename.group(1) if filename else None, body.removesuffix(b"\r\n"))
    return fields
