"""Batch generation, the pure part: request lines, splitting at provider limits, reading result lines.

A batch request carries the story's generation key: the story id plus a digest of (build, prompt version,
provider, model), so a result is only ever attributed to the story, prompt and model it was asked for. It is
OpenAI's `custom_id` as it is; Bedrock's `recordId` must be alphanumeric, so there it is a digest of the key.
The prompt comes from the one prompt builder, so a batch critique and a synchronous one are asked exactly the
same question.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import math
from typing import Any

from pydantic import BaseModel

from coach.domain.conversation_format import converse_parts
from coach.domain.records import Usage


class BatchLimits(BaseModel):
    """What one provider batch may hold. Below `min_requests` a provider refuses the batch."""

    max_requests: int
    max_bytes: int
    min_requests: int = 1


# OpenAI Batch API: 50,000 requests and 200 MB per input file.
OPENAI_LIMITS = BatchLimits(max_requests=50_000, max_bytes=200 * 1024 * 1024, min_requests=1)
# Bedrock batch inference default quotas: 100 to 50,000 records per job, 1 GB per input file. Accounts can
# have them raised, so the deployment can override them (COACH_BATCH_MIN_RECORDS / _MAX_RECORDS).
BEDROCK_LIMITS = BatchLimits(max_requests=50_000, max_bytes=1024 * 1024 * 1024, min_requests=100)


def generation_key(build_id: str, story_id: str, prompt_version: str, provider: str, model: str) -> str:
    digest = hashlib.sha256(f"{build_id}\n{prompt_version}\n{provider}\n{model}".encode()).hexdigest()[:10]
    return f"{story_id}.{digest}"


def bedrock_record_id(key: str) -> str:
    """The generation key as Bedrock's recordId, which must be alphanumeric: a digest of the whole key."""
    return hashlib.sha256(key.encode()).hexdigest()[:24]


def openai_request_line(key: str, messages: list[dict[str, str]], *, model: str, max_tokens: int,
                        stop: list[str], token_param: str = "max_tokens") -> str:
    body: dict[str, Any] = {"model": model, "messages": messages, token_param: max_tokens, "temperature": 0.7}
    if stop:
        body["stop"] = stop
    return json.dumps({"custom_id": key, "method": "POST", "url": "/v1/chat/completions", "body": body},
                      ensure_ascii=False)


def bedrock_request_line(key: str, messages: list[dict[str, str]], *, max_tokens: int, stop: list[str]) -> str:
    """A record of a Converse-type job: modelInput is a Converse request body (without the model id)."""
    system, turns = converse_parts(messages)
    inference: dict[str, Any] = {"maxTokens": max_tokens, "temperature": 0.7}
    if stop:
        inference["stopSequences"] = stop
    model_input: dict[str, Any] = {"messages": turns, "inferenceConfig": inference}
    if system:
        model_input["system"] = system
    return json.dumps({"recordId": bedrock_record_id(key), "modelInput": model_input}, ensure_ascii=False)


def split_requests(sizes: list[int], limits: BatchLimits) -> tuple[list[range], list[int]]:
    """(batches as index ranges, indexes left over) for requests of the given byte sizes, in order.

    Requests are spread evenly over the fewest batches the limits allow, so no batch is left with a
    handful of requests when the count is just over a limit. A batch that would still hold fewer than
    the provider's minimum is not submitted: its requests are left over for the synchronous path
    (padding it would pay for critiques nobody asked for).
    """
    count = len(sizes)
    if count == 0:
        return [], []
    if count < limits.min_requests:
        return [], list(range(count))
    parts = max(math.ceil(count / limits.max_requests), math.ceil(sum(sizes) / limits.max_bytes))
    while True:
        bounds = [round(i * count / parts) for i in range(parts + 1)]
        batches = [range(a, b) for a, b in itertools.pairwise(bounds) if b > a]
        if all(sum(sizes[i] for i in r) <= limits.max_bytes for r in batches) or parts >= count:
            break
        parts += 1
    kept = [r for r in batches if len(r) >= limits.min_requests]
    left = [i for r in batches if len(r) < limits.min_requests for i in r]
    return kept, left


class BatchResult(BaseModel):
    """One request's outcome read from a provider's result files."""

    key: str
    ok: bool
    text: str = ""
    finish_reason: str | None = None
    model: str | None = None
    usage: Usage = Usage()
    error_code: str = ""
    error_message: str = ""


def _fail(key: str, code: str, message: str) -> BatchResult:
    return BatchResult(key=key, ok=False, error_code=code, error_message=message[:500])


def read_openai_line(line: str) -> BatchResult | None:
    """A line of an OpenAI batch output or error file; None for a line without a custom_id."""
    row = json.loads(line)
    key = row.get("custom_id")
    if not isinstance(key, str):
        return None
    response = row.get("response") or {}
    body = response.get("body") or {}
    if row.get("error"):
        error = row["error"]
        return _fail(key, f"batch_{error.get('code') or 'error'}", str(error.get("message") or error))
    if response.get("status_code") != 200:
        error = body.get("error") or {}
        code = error.get("code") or error.get("type") or f"http_{response.get('status_code')}"
        return _fail(key, f"batch_{code}", str(error.get("message") or "the request failed in the batch"))
    choices = body.get("choices") or []
    message = (choices[0].get("message") or {}) if choices else {}
    text = message.get("content") or ""
    raw = body.get("usage") or {}
    usage = Usage(prompt_tokens=int(raw.get("prompt_tokens") or 0),
                  completion_tokens=int(raw.get("completion_tokens") or 0),
                  total_tokens=int(raw.get("total_tokens") or 0), estimated=not raw)
    finish = choices[0].get("finish_reason") if choices else None
    if not text.strip():
        return _fail(key, "upstream_empty", f"the batch returned an empty critique (finish: {finish})")
    return BatchResult(key=key, ok=True, text=text, finish_reason=finish, model=body.get("model"), usage=usage)


_BEDROCK_FINISH = {"end_turn": "stop", "stop_sequence": "stop", "max_tokens": "length"}


def read_bedrock_line(line: str) -> BatchResult | None:
    """A line of a Bedrock batch `.out` file; None for a line without a recordId."""
    row = json.loads(line)
    key = row.get("recordId")
    if not isinstance(key, str):
        return None
    if row.get("error") or not row.get("modelOutput"):
        error = row.get("error") or {}
        return _fail(key, f"batch_{error.get('errorCode') or 'error'}",
                     str(error.get("errorMessage") or "the record has no model output"))
    output = row["modelOutput"]
    blocks = ((output.get("output") or {}).get("message") or {}).get("content") or []
    text = "".join(b.get("text", "") for b in blocks if isinstance(b, dict))
    raw = output.get("usage") or {}
    usage = Usage(prompt_tokens=int(raw.get("inputTokens") or 0), completion_tokens=int(raw.get("outputTokens") or 0),
                  total_tokens=int(raw.get("totalTokens") or 0), estimated=not raw)
    stop = str(output.get("stopReason") or "end_turn")
    if not text.strip():
        return _fail(key, "upstream_empty", f"the batch returned an empty critique (stop: {stop})")
    return BatchResult(key=key, ok=True, text=text, finish_reason=_BEDROCK_FINISH.get(stop, stop), usage=usage)
