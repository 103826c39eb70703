"""Fine-tune stage: start a job on an OpenAI-compatible API, follow it, publish the resulting model."""

from __future__ import annotations

import io
import json
from collections.abc import Callable
from typing import Any

from pydantic import BaseModel

from coach.adapters.storage import BuildStore, dataset_key
from coach.domain.prompt import COMPACT_PROMPT_VERSION
from coach.domain.records import BuildManifest, BuildRequest, ErrorInfo, FineTuneStatus, utc_now

ClientFactory = Callable[[], Any]  # returns an openai.OpenAI client


class StartResult(BaseModel):
    status: str
    job_id: str | None = None
    reason: str = ""


def skip_reason(request: BuildRequest) -> str | None:
    if not request.fine_tune.enabled:
        return "fine-tuning is not enabled for this build (set fine_tune.enabled to true)"
    if request.provider == "offline":
        return ("the critiques came from the offline critic, which is for trying the pipeline; "
                "fine-tune on critiques from a real model (provider openai)")
    return None


def _update_manifest(store: BuildStore, build_id: str, status: FineTuneStatus) -> None:
    key = dataset_key(build_id, "manifest.json")
    manifest = store.get_model(key, BuildManifest)
    if manifest is not None:
        manifest.fine_tune = status
        store.put_text(key, manifest.model_dump_json(indent=2))


def start(request: BuildRequest, *, store: BuildStore, client_factory: ClientFactory) -> StartResult:
    reason = skip_reason(request)
    if reason:
        _update_manifest(store, request.build_id, FineTuneStatus(status="skipped", reason=reason))
        return StartResult(status="skipped", reason=reason)
    client = client_factory()
    file_ids: dict[str, str] = {}
    for name in ("train.jsonl", "validation.jsonl"):
        text = store.get_text(dataset_key(request.build_id, name)) or ""
        if not text.strip():
            continue
        uploaded = client.files.create(file=(name, io.BytesIO(text.encode("utf-8"))), purpose="fine-tune")
        file_ids[name] = uploaded.id
    options = request.fine_tune
    method: dict[str, Any] = {"type": "supervised"}
    if options.epochs:
        method["supervised"] = {"hyperparameters": {"n_epochs": options.epochs}}
    job = client.fine_tuning.jobs.create(
        model=options.base_model,
        training_file=file_ids["train.jsonl"],
        validation_file=file_ids.get("validation.jsonl"),
        suffix=options.suffix,
        seed=options.seed,
        metadata={"build_id": request.build_id, "prompt_version": COMPACT_PROMPT_VERSION},
        method=method,
    )
    _update_manifest(store, request.build_id, FineTuneStatus(status=job.status, job_id=job.id,
                                                             model=options.base_model))
    return StartResult(status=job.status, job_id=job.id)


class JobStatus(BaseModel):
    job_id: str
    status: str
    fine_tuned_model: str | None = None
    trained_tokens: int | None = None
    error: ErrorInfo | None = None


def status(job_id: str, *, client_factory: ClientFactory) -> JobStatus:
    job = client_factory().fine_tuning.jobs.retrieve(job_id)
    error = None
    if job.status in ("failed", "cancelled"):
        err = getattr(job, "error", None)
        code = getattr(err, "code", None) or job.status
        message = getattr(err, "message", None) or f"fine-tuning job {job.status}"
        error = ErrorInfo(code=str(code), message=str(message))
    return JobStatus(job_id=job.id, status=job.status, fine_tuned_model=job.fine_tuned_model,
                     trained_tokens=job.trained_tokens, error=error)


def publish(build_id: str, job: JobStatus, *, ssm_client: Any, parameter: str) -> dict[str, str]:
    """Name the model the critique API serves, with the prompt layout it was trained on."""
    if job.status != "succeeded" or not job.fine_tuned_model:
        raise ValueError(f"job {job.job_id} has not succeeded ({job.status}); nothing to publish")
    value = {"model": job.fine_tuned_model, "prompt_version": COMPACT_PROMPT_VERSION, "build_id": build_id,
             "trained_at": utc_now()}
    ssm_client.put_parameter(Name=parameter, Value=json.dumps(value), Type="String", Overwrite=True)
    return {"parameter": parameter, "model": job.fine_tuned_model}
