"""Fine-tune stage: start a job on an OpenAI-compatible API, follow it, publish the resulting model.

- start: make sure the files are the ones the assembler checked (see `_checked_file`), upload train and
  validation with purpose "fine-tune" as streams (a large file through the Uploads API, in parts), create a
  supervised job named after the build. Starting twice for one build returns the job already running or
  done: a retried step never pays for a second training run. No file is ever held whole in memory.
- status: map the job's state for the state machine; when it ends, keep its events and final metrics in
  the build's prefix and record the billed tokens and the real cost in the manifest.
- publish: name the model in the SSM parameter the critique API reads (coach.adapters.model_registry).
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, BinaryIO

from pydantic import BaseModel, Field

from coach.adapters.model_registry import ModelRegistry, PublishedModel
from coach.adapters.openai_files import PART_MAX_BYTES, UPLOAD_MAX_BYTES, upload_jsonl
from coach.adapters.openai_models import shutdown_date
from coach.adapters.storage import (
    BuildStore,
    ObjectMissingError,
    dataset_key,
    fine_tune_events_key,
    fine_tune_metrics_key,
    fine_tune_step_metrics_key,
)
from coach.domain.dataset_scan import FileScan, scan_jsonl
from coach.domain.finetune_data import training_cost_usd
from coach.domain.prompt import COMPACT_PROMPT_VERSION
from coach.domain.records import (
    BuildManifest,
    BuildRequest,
    ErrorInfo,
    EvaluationSummary,
    FineTuneStatus,
    utc_now,
)
from coach.domain.retirement import retirement_notice
from coach.errors import (
    CoachError,
    ConfigError,
    PermanentUpstreamError,
    RateLimitedError,
    TransientUpstreamError,
    UpstreamError,
)
from coach.pipeline.assemble import DatasetInvalidError, raise_if_invalid, training_price_for
from coach.pipeline.report import publish_report
from coach.settings import Settings

ClientFactory = Callable[[], Any]  # returns an openai.OpenAI client

JOB_STATES = ("validating_files", "queued", "running", "succeeded", "failed", "cancelled")
TERMINAL_STATES = ("succeeded", "failed", "cancelled")
# States newer than this code (e.g. a paused job) keep the state machine waiting; the raw state is reported.
_WAITING = "running"
UPLOADED_FILES = ("train.jsonl", "validation.jsonl")


class StartResult(BaseModel):
    status: str
    job_id: str | None = None
    reason: str = ""
    build_id: str | None = None
    training_file: str | None = None
    validation_file: str | None = None
    reused: bool = False  # the build's job already existed; nothing new was uploaded or started


class JobStatus(BaseModel):
    """What the state machine reads: it branches on `status` (succeeded / failed, cancelled / else wait)."""

    job_id: str
    status: str
    fine_tuned_model: str | None = None
    trained_tokens: int | None = None
    error: ErrorInfo | None = None
    build_id: str | None = None
    openai_status: str | None = None
    base_model: str | None = None
    prompt_version: str | None = None
    finished_at: str | None = None
    cost_usd: float | None = None
    events_key: str | None = None
    metrics: dict[str, float] = Field(default_factory=dict)
    backend: str = "openai"
    retires_on: str | None = None  # the served model's shutdown date, when its provider publishes one
    warnings: list[str] = Field(default_factory=list)
    custom_model_arn: str | None = None  # Bedrock: the trained model, before it is deployed
    deployment_arn: str | None = None  # Bedrock: the on-demand deployment that serves it


def skip_reason(request: BuildRequest) -> str | None:
    if not request.fine_tune.enabled:
        return "fine-tuning is not enabled for this build (--fine-tune, or fine_tune.enabled in the request)"
    if request.provider == "offline":
        return ("the critiques came from the offline critic, which is for trying the pipeline; "
                "fine-tune on critiques from a real model (provider bedrock or openai)")
    return None


def map_status(openai_status: str | None) -> str:
    return openai_status if openai_status in JOB_STATES else _WAITING


def _one_line(text: str, limit: int = 400) -> str:
    flat = " ".join(str(text).split())
    return flat if len(flat) <= limit else flat[: limit - 3] + "..."


def upstream_error(exc: Exception, doing: str) -> UpstreamError:
    """An openai SDK exception as one of the project's upstream errors, with the API's code and message."""
    import openai

    if isinstance(exc, openai.APIStatusError):
        body = exc.body if isinstance(exc.body, dict) else {}
        detail = body.get("error", body) if isinstance(body.get("error", body), dict) else {}
        message = _one_line(detail.get("message") or exc.message or str(exc))
        code = detail.get("code") or getattr(exc, "code", None)
        text = f"{doing} failed: HTTP {exc.status_code}: {message}"
        if exc.status_code == 429 and code != "insufficient_quota":
            return RateLimitedError(text, status=429)
        if exc.status_code >= 500 or exc.status_code in (408, 409):
            return TransientUpstreamError(text, status=exc.status_code)
        return PermanentUpstreamError(text, code=str(code) if code else None, status=exc.status_code)
    if isinstance(exc, openai.APIConnectionError):  # includes timeouts
        return TransientUpstreamError(f"{doing} failed: {_one_line(str(exc))}")
    return UpstreamError(f"{doing} failed: {type(exc).__name__}: {_one_line(str(exc))}")


def _call(doing: str, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    import openai

    try:
        return fn(*args, **kwargs)
    except openai.OpenAIError as exc:
        raise upstream_error(exc, doing) from None


def _manifest(store: BuildStore, build_id: str) -> BuildManifest | None:
    return store.get_model(dataset_key(build_id, "manifest.json"), BuildManifest)


def _update_manifest(store: BuildStore, build_id: str, **changes: Any) -> FineTuneStatus | None:
    """Merge changes into the manifest's fine-tune section (a build without a manifest is left alone)."""
    key = dataset_key(build_id, "manifest.json")
    manifest = store.get_model(key, BuildManifest)
    if manifest is None:
        return None
    manifest.fine_tune = manifest.fine_tune.model_copy(update=changes)
    FineTuneStatus.model_validate(manifest.fine_tune.model_dump())  # a bad field fails here, not on read
    store.put_text(key, manifest.model_dump_json(indent=2))
    return manifest.fine_tune


def _existing_job(request: BuildRequest, store: BuildStore, client: Any) -> Any | None:
    """The build's job if one was already started and has not failed (manifest first, then the API)."""
    manifest = _manifest(store, request.build_id)
    job_id = manifest.fine_tune.job_id if manifest else None
    if job_id:
        job = _call("reading the fine-tuning job", client.fine_tuning.jobs.retrieve, job_id)
        if job.status not in ("failed", "cancelled"):
            return job
    # The job may exist even though the manifest was not updated (the step died in between).
    page = _call("listing fine-tuning jobs", client.fine_tuning.jobs.list, limit=50,
                 metadata={"build_id": request.build_id})
    for job in getattr(page, "data", []) or []:
        meta = getattr(job, "metadata", None) or {}
        if meta.get("build_id") == request.build_id and job.status not in ("failed", "cancelled"):
            return job
    return None


def start(request: BuildRequest, *, store: BuildStore, client_factory: ClientFactory) -> StartResult:
    build_id = request.build_id
    reason = skip_reason(request)
    if reason:
        _update_manifest(store, build_id, status="skipped", reason=reason)
        return StartResult(status="skipped", reason=reason, build_id=build_id)
    try:
        return _start(request, store=store, client_factory=client_factory)
    except CoachError as exc:
        # The manifest must not keep saying what an earlier run did ("not enabled", an old job).
        _update_manifest(store, build_id, status="failed", reason="the fine-tuning job could not be started",
                         error=ErrorInfo(code=exc.code, message=exc.message))
        raise


def _start(request: BuildRequest, *, store: BuildStore, client_factory: ClientFactory) -> StartResult:
    build_id = request.build_id
    options = request.fine_tune
    part_bytes = upload_part_bytes()
    manifest = _manifest(store, build_id)
    with contextlib.ExitStack() as opened:
        # Each file is scanned and then sent from the same open reader: a file replaced in between (a new
        # S3 version, or a file renamed over it) cannot be sent in place of the one that was checked.
        files: dict[str, tuple[BinaryIO, FileScan]] = {}
        for name in UPLOADED_FILES:
            found = _checked_file(store, build_id, name, manifest, opened)
            if found is not None:
                files[name] = found

        client = client_factory()
        warnings = _check_retirement(options.base_model, client, store, build_id)
        existing = _existing_job(request, store, client)
        if existing is not None:
            status = map_status(existing.status)
            _update_manifest(store, build_id, status=status, job_id=existing.id, model=existing.model)
            return StartResult(status=status, job_id=existing.id, build_id=build_id, reused=True,
                               training_file=existing.training_file, validation_file=existing.validation_file)

        file_ids = {name: _call(f"uploading {name}", upload_jsonl, client, reader, filename=f"{build_id}-{name}",
                                size=scan.size, md5=scan.md5, part_bytes=part_bytes)
                    for name, (reader, scan) in files.items()}
    method: dict[str, Any] = {"type": "supervised"}
    if options.epochs:  # otherwise OpenAI's default rule picks them (the manifest's estimate uses it too)
        method["supervised"] = {"hyperparameters": {"n_epochs": options.epochs}}
    kwargs: dict[str, Any] = {
        "model": options.base_model, "training_file": file_ids["train.jsonl"], "suffix": options.suffix,
        "seed": options.seed, "method": method,
        "metadata": {"build_id": build_id, "prompt_version": COMPACT_PROMPT_VERSION},
    }
    if "validation.jsonl" in file_ids:
        kwargs["validation_file"] = file_ids["validation.jsonl"]
    try:
        job = _call("creating the fine-tuning job", client.fine_tuning.jobs.create, **kwargs)
    except PermanentUpstreamError as exc:
        refused = _unavailable(exc)
        _update_manifest(store, build_id, status="failed", backend="openai", model=options.base_model,
                         error=ErrorInfo(code=refused.code, message=refused.message))
        raise refused from None
    status = map_status(job.status)
    _update_manifest(store, build_id, status=status, reason="", backend="openai", job_id=job.id,
                     model=options.base_model, training_file=file_ids["train.jsonl"],
                     validation_file=file_ids.get("validation.jsonl"), error=None, warnings=warnings)
    return StartResult(status=status, job_id=job.id, build_id=build_id, training_file=file_ids["train.jsonl"],
                       validation_file=file_ids.get("validation.jsonl"))


def upload_part_bytes() -> int:
    """Files above this size go through the Uploads API, in parts of this size (COACH_UPLOAD_PART_BYTES)."""
    value = Settings.from_env().upload_part_bytes
    if not 1 <= value <= PART_MAX_BYTES:
        raise ConfigError(f"COACH_UPLOAD_PART_BYTES must be between 1 and {PART_MAX_BYTES} (OpenAI's largest "
                          f"upload part); got {value}", code="bad_setting")
    return value


def _checked_file(store: BuildStore, build_id: str, name: str, manifest: BuildManifest | None,
                  opened: contextlib.ExitStack) -> tuple[BinaryIO, FileScan] | None:
    """An open reader of a dataset file and its scan, or None for a validation file the build does not have.

    The format checks are not run again here: they need every example's tokens, the assembler ran them and
    refuses a file that fails them, and its verdict is in the manifest's dataset_checks. That verdict is
    trusted once one streamed pass (coach.domain.dataset_scan) shows the file is still JSONL of chat examples
    with as many lines as the assembler checked, so a file edited or replaced since is refused before upload.
    """
    key = dataset_key(build_id, name)
    recorded = manifest.dataset_checks.get(name) if manifest is not None else None
    try:
        reader: BinaryIO | None = opened.enter_context(store.open_reader(key))
    except ObjectMissingError:
        reader = None
    scan = scan_jsonl(reader, name=name) if reader is not None else FileScan(name=name)
    if reader is None or scan.lines == 0:
        if name == "train.jsonl":
            raise DatasetInvalidError(f"build {build_id} has no train.jsonl: run the assemble step first",
                                      code="dataset_missing")
        if recorded is not None and recorded.examples:
            raise DatasetInvalidError(f"{name} of build {build_id} is gone or empty, but the assembler wrote "
                                      f"{recorded.examples} examples in it: run the assemble step again",
                                      code="dataset_changed")
        return None
    raise_if_invalid({name: scan.check_result()})
    if manifest is not None and manifest.failure is not None:
        raise DatasetInvalidError(f"the {manifest.failure.step} step of build {build_id} failed "
                                  f"({manifest.failure.code}): there is no checked dataset to fine-tune on",
                                  code="dataset_missing")
    if recorded is None:
        raise DatasetInvalidError(f"{name} of build {build_id} has no format checks in the build's manifest: "
                                  "run the assemble step, which checks the files, first", code="dataset_unchecked")
    if not recorded.passed:
        raise DatasetInvalidError(f"{name}: " + "; ".join(recorded.errors[:5] or ["failed the format checks"]))
    if recorded.examples != scan.lines:
        raise DatasetInvalidError(f"{name} of build {build_id} has {scan.lines} lines, but the assembler checked "
                                  f"{recorded.examples} examples: it was changed after assembly; run the "
                                  "assemble step again", code="dataset_changed")
    if scan.size > UPLOAD_MAX_BYTES:
        raise DatasetInvalidError(f"{name} is {scan.size} bytes; OpenAI takes files of at most "
                                  f"{UPLOAD_MAX_BYTES} bytes", code="dataset_too_large")
    return reader, scan


def _check_retirement(base_model: str, client: Any, store: BuildStore, build_id: str) -> list[str]:
    """Refuse a base model that shuts down within REFUSE_DAYS; a warning when within WARN_DAYS."""
    notice = retirement_notice(base_model, shutdown_date(client, base_model))
    if notice is None:
        return []
    if notice.level == "refuse":
        _update_manifest(store, build_id, status="failed", backend="openai", model=base_model,
                         error=ErrorInfo(code="base_model_retiring", message=notice.message))
        raise CoachError(notice.message, code="base_model_retiring")
    return [notice.message]


def _unavailable(exc: PermanentUpstreamError) -> CoachError:
    """OpenAI's answer to an organisation without fine-tuning access, as a pointer to the Bedrock backend."""
    text = exc.message.lower().partition(f"http {exc.status}: ")[2]  # OpenAI's own words, not ours
    if exc.status in (401, 403, 404) and "fine-tun" in text and any(
            word in text for word in ("not available", "no longer", "access", "not allowed", "not enabled")):
        return CoachError(
            f"OpenAI does not offer fine-tuning to this organisation ({exc.message}); OpenAI closed self-serve "
            "fine-tuning to new users: use the Bedrock backend (fine_tune.backend bedrock, docs/fine-tuning.md)",
            code="fine_tuning_unavailable")
    return exc


def _iso(epoch_seconds: int | None) -> str | None:
    if not epoch_seconds:
        return None
    return datetime.fromtimestamp(int(epoch_seconds), UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def job_error(job: Any) -> ErrorInfo | None:
    """OpenAI's error code and message for a job that ended without a model."""
    if job.status not in ("failed", "cancelled"):
        return None
    err = getattr(job, "error", None)
    code = getattr(err, "code", None) or ("cancelled" if job.status == "cancelled" else "fine_tune_failed")
    message = getattr(err, "message", None) or f"the fine-tuning job was {job.status}"
    param = getattr(err, "param", None)
    return ErrorInfo(code=str(code), message=_one_line(str(message)) + (f" (param: {param})" if param else ""))


def _final_metrics(checkpoints: list[dict[str, Any]], step_csv: str) -> dict[str, float]:
    """Training/validation loss at the last step: from the last checkpoint, else the result file's last row."""
    metrics: dict[str, float] = {}
    if checkpoints:
        last = max(checkpoints, key=lambda c: c.get("step_number") or 0)
        for name, value in (last.get("metrics") or {}).items():
            if isinstance(value, int | float):
                metrics[name] = float(value)
    if not metrics and step_csv.strip():
        rows = [r for r in csv.DictReader(io.StringIO(step_csv)) if any((v or "").strip() for v in r.values())]
        for name, value in (rows[-1] if rows else {}).items():
            try:
                metrics[name] = float(value)
            except (TypeError, ValueError):
                continue
    return metrics


def _keep_job_record(job: Any, client: Any, store: BuildStore, build_id: str) -> tuple[str, dict[str, float]]:
    """Store the job's events (oldest first), checkpoints and result file; return (events key, metrics)."""
    events = [e.model_dump(mode="json") for e in
              _call("reading fine-tuning events", client.fine_tuning.jobs.list_events, job.id, limit=100)]
    events.reverse()  # the API lists newest first; events of one second keep their order when sorted
    events.sort(key=lambda e: (e.get("created_at") or 0))
    store.put_text(fine_tune_events_key(build_id), "".join(json.dumps(e) + "\n" for e in events),
                   "application/x-ndjson")
    checkpoints: list[dict[str, Any]] = []
    if job.status == "succeeded":
        checkpoints = [c.model_dump(mode="json") for c in _call(
            "reading fine-tuning checkpoints", client.fine_tuning.jobs.checkpoints.list, job.id, limit=100)]
    step_csv = ""
    for file_id in (getattr(job, "result_files", None) or [])[:1]:
        step_csv = _call("reading the job's result file", client.files.content, file_id).text
        store.put_text(fine_tune_step_metrics_key(build_id), step_csv, "text/csv")
    metrics = _final_metrics(checkpoints, step_csv)
    store.put_text(fine_tune_metrics_key(build_id), json.dumps({
        "job_id": job.id, "status": job.status, "fine_tuned_model": job.fine_tuned_model,
        "trained_tokens": job.trained_tokens, "final_metrics": metrics, "checkpoints": checkpoints,
        "result_files": list(getattr(job, "result_files", None) or []),
    }, indent=2))
    return fine_tune_events_key(build_id), metrics


def status(job_id: str, *, client_factory: ClientFactory, store: BuildStore | None = None,
           build_id: str | None = None) -> JobStatus:
    """The job's state for the state machine; at the end, its record is kept and the manifest completed."""
    client = client_factory()
    job = _call("reading the fine-tuning job", client.fine_tuning.jobs.retrieve, job_id)
    meta = getattr(job, "metadata", None) or {}
    build_id = build_id or meta.get("build_id")
    mapped = map_status(job.status)
    result = JobStatus(
        job_id=job.id, status=mapped, fine_tuned_model=job.fine_tuned_model, trained_tokens=job.trained_tokens,
        error=job_error(job), build_id=build_id, openai_status=job.status, base_model=job.model,
        prompt_version=meta.get("prompt_version"), finished_at=_iso(getattr(job, "finished_at", None)),
    )
    if job.trained_tokens is not None:
        result.cost_usd = training_cost_usd(job.trained_tokens, training_price_for(job.model))
    if mapped == "succeeded" and job.fine_tuned_model:
        when = shutdown_date(client, job.fine_tuned_model)
        result.retires_on = when.isoformat() if when else None
        notice = retirement_notice(job.fine_tuned_model, when)
        result.warnings = [notice.message] if notice else []
    if store is None or not build_id:
        return result
    if mapped in TERMINAL_STATES:
        result.events_key, result.metrics = _keep_job_record(job, client, store, build_id)
    _update_manifest(store, build_id, status=mapped, job_id=job.id, fine_tuned_model=job.fine_tuned_model,
                     trained_tokens=job.trained_tokens, cost_usd=result.cost_usd, error=result.error,
                     events_key=result.events_key, metrics=result.metrics,
                     **({"warnings": result.warnings} if result.warnings else {}))
    if mapped in TERMINAL_STATES and store.exists(dataset_key(build_id, "manifest.json")):
        publish_report(store, build_id)  # now with the loss curve and the real cost
    return result


def _evaluation_of(store: BuildStore, build_id: str, model: str) -> EvaluationSummary | None:
    """The build's evaluation of this model, if the Evaluate step ran."""
    manifest = _manifest(store, build_id)
    found = manifest.evaluation if manifest is not None else None
    return found if found is not None and found.model == model else None


def publish(build_id: str, job: JobStatus, *, ssm_client: Any, parameter: str,
            store: BuildStore | None = None) -> dict[str, Any]:
    """Name the model the critique API serves, with the prompt layout it was trained on."""
    if job.status != "succeeded" or not job.fine_tuned_model:
        raise CoachError(f"job {job.job_id} has not succeeded ({job.status}); nothing to publish",
                         code="nothing_to_publish")
    evaluation = _evaluation_of(store, build_id, job.fine_tuned_model) if store is not None else None
    if evaluation is not None and not evaluation.passed and not evaluation.forced:
        raise CoachError(
            f"{job.fine_tuned_model} did not pass the evaluation gate ({', '.join(evaluation.reasons)}); nothing "
            f"was published. To serve it anyway: coach models promote {build_id} --force",
            code="evaluation_failed")
    published = PublishedModel(
        model=job.fine_tuned_model, prompt_version=job.prompt_version or COMPACT_PROMPT_VERSION,
        build_id=build_id, trained_at=job.finished_at or utc_now(),
        provider="bedrock" if job.backend == "bedrock" else "openai", base_model=job.base_model,
        retires_on=job.retires_on, scores=evaluation,
    )
    version = ModelRegistry(ssm_client, parameter).publish(published)
    if store is not None:
        _update_manifest(store, build_id, published_at=utc_now())
    return {"parameter": parameter, "model": published.model, "prompt_version": published.prompt_version,
            "build_id": build_id, "version": version, "changed": version is not None}


class FollowResult(BaseModel):
    job: JobStatus
    polls: int
    published: dict[str, Any] | None = None


def follow(
    job_id: str,
    *,
    client_factory: ClientFactory,
    store: BuildStore | None = None,
    build_id: str | None = None,
    ssm_client: Any = None,
    parameter: str | None = None,
    interval_s: float = 30.0,
    max_polls: int = 2_880,
    sleep: Callable[[float], None] = time.sleep,
    on_poll: Callable[[JobStatus], None] | None = None,
) -> FollowResult:
    """Poll until the job ends (what the state machine's wait loop does), then publish on success."""
    polls = 0
    while True:
        polls += 1
        current = status(job_id, client_factory=client_factory, store=store, build_id=build_id)
        if on_poll is not None:
            on_poll(current)
        if current.status in TERMINAL_STATES:
            break
        if polls >= max_polls:
            raise CoachError(f"fine-tuning job {job_id} is still {current.openai_status} after {polls} polls; "
                             "it keeps running: check it later", code="fine_tune_still_running")
        sleep(interval_s)
    published = None
    if current.status == "succeeded" and ssm_client is not None and parameter:
        published = publish(current.build_id or build_id or "", current, ssm_client=ssm_client,
                            parameter=parameter, store=store)
    return FollowResult(job=current, polls=polls, published=published)
