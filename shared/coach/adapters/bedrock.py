"""Amazon Bedrock through boto3: the Converse provider, and the clients every Bedrock caller shares.

`BedrockProvider` runs the same retry loop as the OpenAI provider (botocore's own retries are off, so
every attempt and wait is counted in one place): throttling, a model that is not ready yet, timeouts and
5xx are retried with backoff; validation, access and not-found answers fail the story at once with a
stable `bedrock_*` code. Usage comes from the response's token counts, so cost is what Bedrock bills.

Endpoints: botocore honours `AWS_ENDPOINT_URL_BEDROCK_RUNTIME` / `AWS_ENDPOINT_URL_BEDROCK`. When only a
general `AWS_ENDPOINT_URL` is set (the local build's AWS emulator, which has no Converse), Bedrock is
still reached at its real regional endpoint.
"""

from __future__ import annotations

import os
import random
import re
import time
from collections.abc import Callable
from typing import Any, Literal

import boto3
from botocore.config import Config
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    ConnectTimeoutError,
    EndpointConnectionError,
    NoCredentialsError,
    NoRegionError,
    ReadTimeoutError,
)

from coach.adapters.retrying import RetryableAttempt, RetryingProvider
from coach.domain.bedrock_models import DEFAULT_BEDROCK_REGION
from coach.domain.conversation_format import converse_parts
from coach.domain.records import Usage
from coach.errors import (
    ConfigError,
    PermanentUpstreamError,
    RateLimitedError,
    TransientUpstreamError,
    UpstreamError,
)
from coach.settings import DEFAULT_COMPLETION_TIMEOUT_S

CONNECT_TIMEOUT = 10.0
# Converse's stop reasons in the finish_reason words the rest of the product uses.
_FINISH = {"end_turn": "stop", "stop_sequence": "stop", "max_tokens": "length",
           "content_filtered": "content_filter", "guardrail_intervened": "content_filter"}
# Retried: the service asks to slow down, is not ready, or did not answer in time.
_RETRYABLE = {
    "ThrottlingException": ("bedrock_throttled", RateLimitedError),
    "TooManyRequestsException": ("bedrock_throttled", RateLimitedError),
    "ServiceQuotaExceededException": ("bedrock_throttled", RateLimitedError),
    "ModelNotReadyException": ("bedrock_model_not_ready", TransientUpstreamError),
    "ServiceUnavailableException": ("bedrock_unavailable", TransientUpstreamError),
    "InternalServerException": ("bedrock_unavailable", TransientUpstreamError),
    "ModelTimeoutException": ("bedrock_timeout", TransientUpstreamError),
    "ModelErrorException": ("bedrock_model_error", TransientUpstreamError),
}
_PERMANENT = {
    "AccessDeniedException": "bedrock_access_denied",
    "ResourceNotFoundException": "bedrock_model_not_found",
    "ValidationException": "bedrock_validation",
    "UnrecognizedClientException": "bedrock_auth",
    "ExpiredTokenException": "bedrock_auth",
}


def bedrock_region() -> str:
    return (os.environ.get("COACH_BEDROCK_REGION") or os.environ.get("AWS_REGION")
            or os.environ.get("AWS_DEFAULT_REGION") or DEFAULT_BEDROCK_REGION)


def _endpoint(service: str, region: str) -> str | None:
    specific = "AWS_ENDPOINT_URL_" + service.upper().replace("-", "_")
    if os.environ.get(specific):
        return os.environ[specific]
    if os.environ.get("AWS_ENDPOINT_URL"):
        return f"https://{service}.{region}.amazonaws.com"
    return None


# Credentials for Bedrock when the rest of the process talks to an emulator with dummy keys (set by the
# local build before it starts the emulator); None means boto3's default chain.
_session: boto3.Session | None = None


def use_session(session: boto3.Session | None) -> None:
    global _session
    _session = session


def bedrock_client(service: Literal["bedrock", "bedrock-runtime"], *, region: str | None = None,
                   read_timeout: float = DEFAULT_COMPLETION_TIMEOUT_S, pool: int = 10) -> Any:
    """A boto3 client with botocore's retries off (callers retry) and a pool sized to the concurrency."""
    chosen = region or bedrock_region()
    config = Config(retries={"total_max_attempts": 1, "mode": "standard"}, read_timeout=read_timeout,
                    connect_timeout=min(CONNECT_TIMEOUT, read_timeout), max_pool_connections=max(1, pool))
    session = _session or boto3.session.Session()
    return session.client(service, region_name=chosen, endpoint_url=_endpoint(service, chosen), config=config)


def client_error(exc: Exception, what: str, *, not_found: str = "bedrock_model_not_found") -> UpstreamError:
    """A coded error from a Bedrock ClientError or botocore failure (control plane or runtime).

    `not_found` is the code for ResourceNotFoundException: a model for Converse, a job or a deployment for
    the control plane."""
    if isinstance(exc, ClientError):
        code = exc.response.get("Error", {}).get("Code", "ClientError")
        message = _one_line(exc.response.get("Error", {}).get("Message", "") or str(exc))
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        if code in _RETRYABLE:
            ours, kind = _RETRYABLE[code]
            return kind(f"Bedrock answered {code} to {what}: {message}", code=ours, status=status)
        ours = not_found if code == "ResourceNotFoundException" else _PERMANENT.get(code, "bedrock_rejected")
        if code == "ValidationException" and "model identifier" in message.lower():
            ours = "bedrock_model_not_found"
        hint = (" (enable access to the model in the Bedrock console for this region, and check the role's "
                "bedrock:InvokeModel permission)") if ours == "bedrock_access_denied" else ""
        return PermanentUpstreamError(f"Bedrock refused {what} ({code}): {message}{hint}", code=ours, status=status)
    if isinstance(exc, NoCredentialsError):
        return PermanentUpstreamError("no AWS credentials for Bedrock: configure the default credential chain",
                                      code="bedrock_auth")
    if isinstance(exc, NoRegionError):
        return PermanentUpstreamError("no AWS region for Bedrock: set AWS_REGION", code="bedrock_validation")
    if isinstance(exc, (ReadTimeoutError, ConnectTimeoutError)):
        return TransientUpstreamError(f"Bedrock did not answer {what} in time: {_one_line(str(exc))}",
                                      code="upstream_timeout")
    if isinstance(exc, EndpointConnectionError):
        return TransientUpstreamError(f"cannot reach Bedrock for {what}: {_one_line(str(exc))}",
                                      code="upstream_unreachable")
    return TransientUpstreamError(f"Bedrock failed on {what}: {type(exc).__name__}: {_one_line(str(exc))}",
                                  code="bedrock_unavailable")


class BedrockProvider(RetryingProvider):
    """Critiques from a Bedrock model (a foundation model id, an inference profile, or a deployment ARN)."""

    name: Literal["bedrock"] = "bedrock"

    def __init__(
        self,
        model: str,
        *,
        region: str | None = None,
        client: Any = None,
        timeout: float = DEFAULT_COMPLETION_TIMEOUT_S,
        max_retries: int = 4,
        backoff_base: float = 0.5,
        backoff_cap: float = 20.0,
        pool: int = 10,
        sleep: Callable[[float], None] = time.sleep,
        rng: random.Random | None = None,
    ) -> None:
        super().__init__(max_retries=max_retries, backoff_base=backoff_base, backoff_cap=backoff_cap,
                         sleep=sleep, rng=rng)
        if not model:
            raise ConfigError("the bedrock provider needs a model id or deployment ARN", code="model_required")
        self.model = model
        self.timeout = timeout
        self.region = region or bedrock_region()
        self._client = client or bedrock_client("bedrock-runtime", region=self.region, read_timeout=timeout,
                                                pool=pool)

    def close(self) -> None:
        close = getattr(self._client, "close", None)
        if callable(close):
            close()

    def _request(self, messages: list[dict[str, str]], *, max_tokens: int, stop: list[str] | None,
                 temperature: float) -> dict[str, Any]:
        system, turns = converse_parts(messages)
        inference: dict[str, Any] = {"maxTokens": max_tokens, "temperature": temperature}
        if stop:
            inference["stopSequences"] = list(stop)
        request: dict[str, Any] = {"modelId": self.model, "messages": turns, "inferenceConfig": inference}
        if system:
            request["system"] = system
        return request

    def _attempt(self, request: dict[str, Any]) -> Any:
        from coach.adapters.completion import Completion

        try:
            response = self._client.converse(**request)
        except (ClientError, BotoCoreError) as exc:
            error = client_error(exc, f"a Converse call to {self.model}")
            if error.retryable:
                raise RetryableAttempt(error, None) from None
            raise error from None
        blocks = (((response.get("output") or {}).get("message") or {}).get("content")) or []
        text = "".join(b.get("text", "") for b in blocks if isinstance(b, dict))
        stop_reason = str(response.get("stopReason") or "end_turn")
        finish = _FINISH.get(stop_reason, stop_reason)
        raw = response.get("usage") or {}
        usage = Usage(prompt_tokens=int(raw.get("inputTokens") or 0),
                      completion_tokens=int(raw.get("outputTokens") or 0),
                      total_tokens=int(raw.get("totalTokens") or 0), estimated=False)
        if finish == "content_filter" and not text.strip():
            raise PermanentUpstreamError(f"Bedrock withheld the reply ({stop_reason})",
                                         code="upstream_content_policy")
        if not text.strip():
            if finish == "length":
                raise PermanentUpstreamError(
                    "Bedrock used the whole token budget without writing a reply; raise max_tokens",
                    code="upstream_empty")
            raise RetryableAttempt(TransientUpstreamError("Bedrock returned an empty reply",
                                                          code="upstream_empty"), None, billed=usage)
        request_id = (response.get("ResponseMetadata") or {}).get("RequestId")
        return Completion(text=text, finish_reason=finish, model=self.model, usage=usage, latency_ms=0,
                          request_id=request_id)


def _one_line(text: str, limit: int = 300) -> str:
    flat = re.sub(r"\s+", " ", text).strip()
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"
