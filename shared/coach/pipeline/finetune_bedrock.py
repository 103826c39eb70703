"""Fine-tune on Amazon Bedrock: a model customization job, an on-demand deployment, then publish.

- start: check the conversation-format files again against the base model's limits, then start one
  customization job for the build. Its name and client request token derive from the build id, so a
  retried step or a re-run finds the build's job instead of paying for a second one; only a failed or
  stopped job is followed by a new attempt (`-r2`, `-r3`, ...).
- job status: InProgress / Stopping wait; Completed is `trained` (the state machine then deploys); Failed
  carries Bedrock's failureMessage; Stopped is cancelled. At the end the job's metrics files (written
  under the build's `fine-tune-output/` prefix) are kept beside the dataset and summarised.
- deploy: one on-demand custom model deployment per build (idempotent by name and token); its status
  waits through Creating until Active (succeeded: the deployment ARN is what the API serves) or Failed.
- publish is the shared registry step (`pipeline.finetune.publish`), with provider `bedrock`.
"""

from __future__ import annotations

import csv
import io
import json
import re
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from coach.adapters.bedrock import client_error
from coach.adapters.storage import (
    BuildStore,
    dataset_key,
    fine_tune_metrics_key,
    fine_tune_output_prefix,
    fine_tune_step_metrics_key,
    fine_tune_validation_metrics_key,
)
from coach.domain.bedrock_models import UnsupportedBaseModel, base_model_spec, warmup_steps
from coach.domain.conversation_format import check_conversation_jsonl
from coach.domain.finetune_data import CheckResult
from coach.domain.prompt import COMPACT_PROMPT_VERSION
from coach.domain.records import BuildRequest, ErrorInfo
from coach.domain.tokens import get_counter
from coach.errors import CoachError, ConfigError
from coach.pipeline.assemble import DatasetInvalidError, raise_if_invalid
from coach.pipeline.bedrock_dataset import TRAIN_FILE, VALIDATION_FILE
from coach.pipeline.finetune import (
    FollowResult,
    JobStatus,
    StartResult,
    _update_manifest,
    publish,
    skip_reason,
)
from coach.pipeline.report import publish_report

BACKEND = "bedrock"
MAX_ATTEMPTS = 5
LEARNING_RATE = "0.00001"  # Nova's default; named so the job's hyperparameters are all on record
JOB_STATES = {"InProgress": "running", "Stopping": "running", "Completed": "trained", "Failed": "failed",
              "Stopped": "cancelled"}
DEPLOYMENT_STATES = {"Creating": "deploying", "Active": "succeeded", "Failed": "failed"}
# Metrics files a customization job writes under its output prefix (the names AWS documents).
TRAINING_METRICS = "step_wise_training_metrics.csv"
VALIDATION_METRICS = "validation_metrics.csv"


def _name(build_id: str, attempt: int) -> str:
    base = f"coach-{build_id}"
    return base if attempt == 1 else f"{base}-r{attempt}"


def _token(text: str) -> str:
    """A client request token Bedrock accepts: letters and digits joined by single dashes."""
    return re.sub(r"-+", "-", re.sub(r"[^A-Za-z0-9-]", "-", text)).strip("-")[:256]


def _call(what: str, fn: Any, **kwargs: Any) -> Any:
    try:
        return fn(**kwargs)
    except (ClientError, BotoCoreError) as exc:
        raise client_error(exc, what, not_found="bedrock_resource_not_found") from None


def _not_found(fn: Any, **kwargs: Any) -> Any | None:
    """The resource, or None when Bedrock answers that it does not exist."""
    try:
        return fn(**kwargs)
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") in ("ResourceNotFoundException", "ValidationException"):
            return None
        raise client_error(exc, "a Bedrock lookup") from None


def _checked_files(request: BuildRequest, store: BuildStore, region: str) -> dict[str, CheckResult]:
    build_id = request.build_id
    train = store.get_text(dataset_key(build_id, TRAIN_FILE)) or ""
    validation = store.get_text(dataset_key(build_id, VALIDATION_FILE)) or ""
    if not train.strip():
        raise DatasetInvalidError(f"build {build_id} has no {TRAIN_FILE}: run the assemble step first",
                                  code="dataset_missing")
    try:
        spec = base_model_spec(request.fine_tune.base_model, region)
    except UnsupportedBaseModel as refusal:
        raise ConfigError(refusal.message, code=refusal.code) from None
    # The files are already in the conversation format: check them as they are, not re-converted.
    counter = get_counter()
    checks = {TRAIN_FILE: check_conversation_jsonl(train, spec, counter, name=TRAIN_FILE)}
    if validation.strip():
        checks[VALIDATION_FILE] = check_conversation_jsonl(validation, spec, counter, name=VALIDATION_FILE,
                                                           validation=True)
    raise_if_invalid(checks)
    return checks


def _existing_job(bedrock: Any, build_id: str) -> tuple[int, dict[str, Any] | None]:
    """(attempt number to use, the build's live or finished job if one exists)."""
    for attempt in range(1, MAX_ATTEMPTS + 1):
        job = _not_found(bedrock.get_model_customization_job, jobIdentifier=_name(build_id, attempt))
        if job is None:
            return attempt, None
        if job.get("status") not in ("Failed", "Stopped"):
            return attempt, job
    raise CoachError(f"build {build_id} already has {MAX_ATTEMPTS} failed or stopped customization jobs; "
                     "fix the cause (see their failure messages) and start a new build id",
                     code="fine_tune_attempts_exhausted")


def start(request: BuildRequest, *, store: BuildStore, bedrock: Any, bucket: str, role_arn: str | None,
          region: str) -> StartResult:
    build_id = request.build_id
    reason = skip_reason(request)
    if reason:
        _update_manifest(store, build_id, status="skipped", reason=reason, backend=BACKEND)
        return StartResult(status="skipped", reason=reason, build_id=build_id)
    if not role_arn:
        raise ConfigError("no Bedrock customization role: set COACH_BEDROCK_ROLE_ARN (the stack's "
                          "BedrockCustomizationRole)", code="missing_configuration")
    checks = _checked_files(request, store, region)
    options = request.fine_tune
    spec = base_model_spec(options.base_model, region)
    attempt, existing = _existing_job(bedrock, build_id)
    output_uri = f"s3://{bucket}/{fine_tune_output_prefix(build_id)}"
    if existing is not None:
        job_arn = existing["jobArn"]
        state = JOB_STATES.get(existing["status"], "running")
        _update_manifest(store, build_id, status="deploying" if state == "trained" else state, backend=BACKEND,
                         job_id=job_arn, model=options.base_model, output_uri=output_uri, reason="")
        return StartResult(status="running", job_id=job_arn, build_id=build_id, reused=True)

    records = checks[TRAIN_FILE].summary().examples
    hyper = {"epochCount": str(options.epochs or spec.default_epochs), "learningRate": LEARNING_RATE,
             "learningRateWarmupSteps": str(warmup_steps(spec, records))}
    name = _name(build_id, attempt)
    kwargs: dict[str, Any] = {
        "jobName": name, "customModelName": f"writing-coach-{build_id}" + ("" if attempt == 1 else f"-r{attempt}"),
        "roleArn": role_arn, "clientRequestToken": _token(f"{name}-job"),
        "baseModelIdentifier": options.base_model, "customizationType": "FINE_TUNING",
        "trainingDataConfig": {"s3Uri": f"s3://{bucket}/{dataset_key(build_id, TRAIN_FILE)}"},
        "outputDataConfig": {"s3Uri": output_uri}, "hyperParameters": hyper,
        "jobTags": [{"key": "build_id", "value": build_id}],
        "customModelTags": [{"key": "build_id", "value": build_id},
                            {"key": "prompt_version", "value": COMPACT_PROMPT_VERSION}],
    }
    if VALIDATION_FILE in checks:
        kwargs["validationDataConfig"] = {"validators": [
            {"s3Uri": f"s3://{bucket}/{dataset_key(build_id, VALIDATION_FILE)}"}]}
    try:
        answer = _call(f"starting the customization job {name}", bedrock.create_model_customization_job, **kwargs)
    except CoachError as exc:
        _update_manifest(store, build_id, status="failed", backend=BACKEND, model=options.base_model,
                         error=ErrorInfo(code=exc.code, message=exc.message))
        raise
    _update_manifest(store, build_id, status="running", reason="", backend=BACKEND, job_id=answer["jobArn"],
                     model=options.base_model, output_uri=output_uri, error=None)
    return StartResult(status="running", job_id=answer["jobArn"], build_id=build_id)


def _keep_metrics(store: BuildStore, build_id: str) -> dict[str, float]:
    """Copy the job's metrics files next to the dataset; the last training and validation loss."""
    found: dict[str, str] = {}
    for key in store.list_keys(fine_tune_output_prefix(build_id)):
        for name in (TRAINING_METRICS, VALIDATION_METRICS):
            if key.endswith(name):
                found[name] = store.get_text(key) or ""
    metrics: dict[str, float] = {}
    kept = ((TRAINING_METRICS, fine_tune_step_metrics_key(build_id), "training_loss", "train_loss"),
            (VALIDATION_METRICS, fine_tune_validation_metrics_key(build_id), "validation_loss", "valid_loss"))
    for name, key, loss, label in kept:
        text = found.get(name, "")
        if not text.strip():
            continue
        store.put_text(key, text, "text/csv")
        rows = list(csv.DictReader(io.StringIO(text)))
        try:
            metrics[label] = float(rows[-1][loss]) if rows else metrics.get(label, 0.0)
        except (KeyError, TypeError, ValueError):
            continue
    return metrics


def job_status(job_id: str, *, store: BuildStore | None, bedrock: Any, build_id: str | None = None) -> JobStatus:
    job = _call("reading the customization job", bedrock.get_model_customization_job, jobIdentifier=job_id)
    raw = job.get("status", "InProgress")
    mapped = JOB_STATES.get(raw, "running")
    error = None
    if mapped == "failed":
        error = ErrorInfo(code="bedrock_job_failed", message=(job.get("failureMessage") or
                                                              "the customization job failed without a message"))
    elif mapped == "cancelled":
        error = ErrorInfo(code="cancelled", message="the customization job was stopped")
    result = JobStatus(job_id=job.get("jobArn", job_id), status=mapped, error=error, build_id=build_id,
                       openai_status=raw, base_model=job.get("baseModelArn"), backend=BACKEND,
                       custom_model_arn=job.get("outputModelArn"), prompt_version=COMPACT_PROMPT_VERSION)
    if store is None or not build_id:
        return result
    if mapped in ("trained", "failed", "cancelled"):
        result.metrics = _keep_metrics(store, build_id)
        store.put_text(fine_tune_metrics_key(build_id), json.dumps({
            "job_arn": result.job_id, "status": raw, "custom_model_arn": result.custom_model_arn,
            "failure_message": job.get("failureMessage"), "final_metrics": result.metrics,
            "hyper_parameters": job.get("hyperParameters"),
        }, indent=2))
        result.events_key = fine_tune_metrics_key(build_id)
    _update_manifest(store, build_id, status="deploying" if mapped == "trained" else mapped, error=error,
                     custom_model_arn=result.custom_model_arn, metrics=result.metrics,
                     events_key=result.events_key)
    if mapped in ("trained", "failed", "cancelled") and store.exists(dataset_key(build_id, "manifest.json")):
        publish_report(store, build_id)  # now with the loss curve, or the job's failure
    return result


def _deployment_result(deployment: dict[str, Any], job: JobStatus) -> JobStatus:
    raw = deployment.get("status", "Creating")
    mapped = DEPLOYMENT_STATES.get(raw, "deploying")
    arn = deployment.get("customModelDeploymentArn")
    error = None
    if mapped == "failed":
        error = ErrorInfo(code="bedrock_deployment_failed",
                          message=deployment.get("failureMessage") or "the deployment failed without a message")
    return job.model_copy(update={
        "status": mapped, "openai_status": raw, "error": error, "deployment_arn": arn,
        "fine_tuned_model": arn if mapped == "succeeded" else None,
    })


def deploy(job: JobStatus, *, store: BuildStore | None, bedrock: Any) -> JobStatus:
    """Create the build's on-demand deployment of the trained model (once), and report its state."""
    if job.status != "trained" or not job.custom_model_arn:
        raise CoachError(f"job {job.job_id} has not produced a model ({job.status}); nothing to deploy",
                         code="nothing_to_deploy")
    name = f"coach-{job.build_id}" if job.build_id else _token(job.custom_model_arn)[-60:]
    deployment = _not_found(bedrock.get_custom_model_deployment, customModelDeploymentIdentifier=name)
    if deployment is None:
        created = _call(f"creating the deployment {name}", bedrock.create_custom_model_deployment,
                        modelDeploymentName=name, modelArn=job.custom_model_arn,
                        description=f"Creative Writing Coach critic from build {job.build_id}",
                        clientRequestToken=_token(f"{name}-deployment"),
                        tags=[{"key": "build_id", "value": job.build_id or ""}])
        deployment = {"customModelDeploymentArn": created["customModelDeploymentArn"], "status": "Creating"}
    result = _deployment_result(deployment, job)
    _record_deployment(store, result)
    return result


def deployment_status(job: JobStatus, *, store: BuildStore | None, bedrock: Any) -> JobStatus:
    if not job.deployment_arn:
        raise CoachError("no deployment to check: run the deploy step first", code="nothing_to_deploy")
    deployment = _call("reading the deployment", bedrock.get_custom_model_deployment,
                       customModelDeploymentIdentifier=job.deployment_arn)
    result = _deployment_result(deployment, job)
    _record_deployment(store, result)
    return result


def _record_deployment(store: BuildStore | None, result: JobStatus) -> None:
    if store is None or not result.build_id:
        return
    _update_manifest(store, result.build_id, status=result.status, deployment_arn=result.deployment_arn,
                     deployment_status=result.openai_status, fine_tuned_model=result.fine_tuned_model,
                     error=result.error)


def follow(job_id: str, *, store: BuildStore, bedrock: Any, build_id: str, ssm_client: Any = None,
           parameter: str | None = None, interval_s: float = 30.0, max_polls: int = 2_880,
           sleep: Any = None, on_poll: Any = None) -> FollowResult:
    """What the state machine's Bedrock branch does, in one loop: wait for the job, deploy, wait, publish."""
    import time

    pause = sleep or time.sleep
    polls = 0
    current = job_status(job_id, store=store, bedrock=bedrock, build_id=build_id)
    while True:
        polls += 1
        if on_poll is not None:
            on_poll(current)
        if current.status == "trained":
            current = deploy(current, store=store, bedrock=bedrock)
            continue
        if current.status in ("succeeded", "failed", "cancelled"):
            break
        if polls >= max_polls:
            raise CoachError(f"fine-tune {job_id} is still {current.status} after {polls} polls; it keeps "
                             "running on Bedrock: check it later", code="fine_tune_still_running")
        pause(interval_s)
        current = (deployment_status(current, store=store, bedrock=bedrock) if current.status == "deploying"
                   else job_status(job_id, store=store, bedrock=bedrock, build_id=build_id))
    published = None
    if current.status == "succeeded" and ssm_client is not None and parameter:
        published = publish(build_id, current, ssm_client=ssm_client, parameter=parameter, store=store)
    return FollowResult(job=current, polls=polls, published=published)
