"""Provider batches: OpenAI's Batch API and Bedrock batch inference (model invocation jobs), one interface.

Both submit a requests file under a name that is unique within the build, so a submission retried after a
crash finds the batch it already created instead of paying for a second one: OpenAI batches carry the name
in their metadata, Bedrock jobs use it as the job name and the idempotency token.
"""

from __future__ import annotations

import io
import re
from collections.abc import Iterator
from typing import Any, Literal, Protocol

from botocore.exceptions import BotoCoreError, ClientError
from pydantic import BaseModel

from coach.adapters.bedrock import client_error
from coach.adapters.storage import BuildStore, batch_output_prefix, batch_requests_key
from coach.domain.batch import (
    BEDROCK_LIMITS,
    OPENAI_LIMITS,
    BatchLimits,
    BatchResult,
    read_bedrock_line,
    read_openai_line,
)
from coach.errors import ConfigError, TransientUpstreamError, UpstreamError

BatchState = Literal["running", "completed", "failed", "expired", "cancelled"]
METADATA_KEY = "coach_batch"


class BatchStatus(BaseModel):
    state: BatchState
    provider_status: str
    message: str = ""


class BatchBackend(Protocol):
    provider: str
    limits: BatchLimits

    def request_line(self, key: str, messages: list[dict[str, str]], *, max_tokens: int,
                     stop: list[str]) -> str: ...

    def result_key(self, key: str) -> str: ...

    def submit(self, build_id: str, chunk_id: str, requests: str) -> str: ...

    def status(self, batch_id: str) -> BatchStatus: ...

    def results(self, build_id: str, chunk_id: str, batch_id: str) -> Iterator[BatchResult]: ...

    def cancel(self, batch_id: str) -> None: ...


def batch_name(build_id: str, chunk_id: str) -> str:
    """Unique per build and chunk; fits Bedrock's job name and idempotency token patterns (63 chars)."""
    return re.sub(r"[^a-zA-Z0-9-]", "-", f"coach-{build_id}-{chunk_id}")[:63].rstrip("-")


# -- OpenAI -------------------------------------------------------------------------------------------------

_OPENAI_STATES: dict[str, BatchState] = {
    "validating": "running", "in_progress": "running", "finalizing": "running", "cancelling": "running",
    "completed": "completed", "failed": "failed", "expired": "expired", "cancelled": "cancelled",
}


def _openai_failure(err: Exception, what: str) -> UpstreamError:
    import openai

    if isinstance(err, openai.APIStatusError):
        retryable = err.status_code in (408, 409, 429) or err.status_code >= 500
        code = "upstream_auth" if err.status_code in (401, 403) else f"upstream_http_{err.status_code}"
        cls = TransientUpstreamError if retryable else UpstreamError
        return cls(f"{what} failed: HTTP {err.status_code}: {err.message}"[:400], code=code, retryable=retryable)
    return TransientUpstreamError(f"{what} failed: {type(err).__name__}: {err}"[:400], code="upstream_unreachable",
                                  retryable=True)


class OpenAIBatches:
    provider = "openai"

    def __init__(self, client: Any, model: str, *, limits: BatchLimits = OPENAI_LIMITS,
                 token_param: str = "max_tokens") -> None:
        self.client = client
        self.model = model
        self.limits = limits
        self.token_param = token_param

    def request_line(self, key: str, messages: list[dict[str, str]], *, max_tokens: int, stop: list[str]) -> str:
        from coach.domain.batch import openai_request_line

        return openai_request_line(key, messages, model=self.model, max_tokens=max_tokens, stop=stop,
                                   token_param=self.token_param)

    def result_key(self, key: str) -> str:
        return key

    def _existing(self, name: str) -> str | None:
        for seen, batch in enumerate(self.client.batches.list(limit=100)):
            if (batch.metadata or {}).get(METADATA_KEY) == name:
                return str(batch.id)
            if seen >= 500:  # recent batches come first; an older one is not this build's open batch
                return None
        return None

    def submit(self, build_id: str, chunk_id: str, requests: str) -> str:
        import openai

        name = batch_name(build_id, chunk_id)
        try:
            found = self._existing(name)
            if found:
                return found
            uploaded = self.client.files.create(file=(f"{name}.jsonl", io.BytesIO(requests.encode("utf-8"))),
                                                purpose="batch")
            batch = self.client.batches.create(input_file_id=uploaded.id, endpoint="/v1/chat/completions",
                                               completion_window="24h",
                                               metadata={METADATA_KEY: name, "build_id": build_id[:512]})
        except openai.OpenAIError as err:
            raise _openai_failure(err, "submitting a batch to OpenAI") from None
        return str(batch.id)

    def status(self, batch_id: str) -> BatchStatus:
        import openai

        try:
            batch = self.client.batches.retrieve(batch_id)
        except openai.OpenAIError as err:
            raise _openai_failure(err, f"reading OpenAI batch {batch_id}") from None
        errors = getattr(batch, "errors", None)
        data = getattr(errors, "data", None) or []
        message = "; ".join(str(getattr(e, "message", "") or "") for e in data[:3])
        return BatchStatus(state=_OPENAI_STATES.get(batch.status, "running"), provider_status=batch.status,
                           message=message)

    def results(self, build_id: str, chunk_id: str, batch_id: str) -> Iterator[BatchResult]:
        import openai

        try:
            batch = self.client.batches.retrieve(batch_id)
            texts = [self.client.files.content(file_id).text
                     for file_id in (batch.output_file_id, batch.error_file_id) if file_id]
        except openai.OpenAIError as err:
            raise _openai_failure(err, f"reading the results of OpenAI batch {batch_id}") from None
        for text in texts:
            for line in text.splitlines():
                if line.strip():
                    found = read_openai_line(line)
                    if found is not None:
                        yield found

    def cancel(self, batch_id: str) -> None:
        import openai

        try:
            self.client.batches.cancel(batch_id)
        except openai.APIStatusError as err:
            if err.status_code == 400:  # already finished or cancelling: nothing left to stop
                return
            raise _openai_failure(err, f"cancelling OpenAI batch {batch_id}") from None
        except openai.OpenAIError as err:
            raise _openai_failure(err, f"cancelling OpenAI batch {batch_id}") from None


# -- Bedrock ------------------------------------------------------------------------------------------------

_BEDROCK_STATES: dict[str, BatchState] = {
    "Submitted": "running", "Validating": "running", "Scheduled": "running", "InProgress": "running",
    "Stopping": "running", "Completed": "completed", "PartiallyCompleted": "completed", "Failed": "failed",
    "Expired": "expired", "Stopped": "cancelled",
}


class BedrockBatches:
    provider = "bedrock"

    def __init__(self, client: Any, store: BuildStore, model: str, *, role_arn: str | None,
                 limits: BatchLimits = BEDROCK_LIMITS) -> None:
        self.client = client
        self.store = store
        self.model = model
        self.role_arn = role_arn
        self.limits = limits

    def request_line(self, key: str, messages: list[dict[str, str]], *, max_tokens: int, stop: list[str]) -> str:
        from coach.domain.batch import bedrock_request_line

        return bedrock_request_line(key, messages, max_tokens=max_tokens, stop=stop)

    def result_key(self, key: str) -> str:
        from coach.domain.batch import bedrock_record_id

        return bedrock_record_id(key)

    def _uri(self, key: str) -> str:
        return f"s3://{self.store.bucket}/{key}"

    def submit(self, build_id: str, chunk_id: str, requests: str) -> str:
        if not self.role_arn:
            raise ConfigError("Bedrock batch inference needs a service role: set COACH_BEDROCK_BATCH_ROLE_ARN",
                              code="missing_configuration")
        name = batch_name(build_id, chunk_id)
        input_key = batch_requests_key(build_id, chunk_id)
        if not self.store.exists(input_key):  # the batch step keeps every batch's requests there already
            self.store.put_text(input_key, requests, "application/x-ndjson")
        try:
            job = self.client.create_model_invocation_job(
                jobName=name, clientRequestToken=name, roleArn=self.role_arn, modelId=self.model,
                modelInvocationType="Converse",  # the records are Converse request bodies
                inputDataConfig={"s3InputDataConfig": {"s3Uri": self._uri(input_key), "s3InputFormat": "JSONL"}},
                outputDataConfig={"s3OutputDataConfig": {"s3Uri": self._uri(batch_output_prefix(build_id, chunk_id))}},
                timeoutDurationInHours=24,
            )
        except (ClientError, BotoCoreError) as exc:
            raise client_error(exc, "creating a Bedrock batch inference job") from None
        return str(job["jobArn"])

    def status(self, batch_id: str) -> BatchStatus:
        try:
            job = self.client.get_model_invocation_job(jobIdentifier=batch_id)
        except (ClientError, BotoCoreError) as exc:
            raise client_error(exc, f"reading Bedrock batch job {batch_id}") from None
        status = str(job.get("status"))
        return BatchStatus(state=_BEDROCK_STATES.get(status, "running"), provider_status=status,
                           message=str(job.get("message") or ""))

    def results(self, build_id: str, chunk_id: str, batch_id: str) -> Iterator[BatchResult]:
        # Bedrock writes `<input file>.out` under a folder named after the job id.
        for key in self.store.list_keys(batch_output_prefix(build_id, chunk_id)):
            if not key.endswith(".jsonl.out"):
                continue
            for line in (self.store.get_text(key) or "").splitlines():
                if line.strip():
                    found = read_bedrock_line(line)
                    if found is not None:
                        yield found

    def cancel(self, batch_id: str) -> None:
        try:
            self.client.stop_model_invocation_job(jobIdentifier=batch_id)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") == "ValidationException":  # already finished
                return
            raise client_error(exc, f"stopping Bedrock batch job {batch_id}") from None
        except BotoCoreError as exc:
            raise client_error(exc, f"stopping Bedrock batch job {batch_id}") from None
