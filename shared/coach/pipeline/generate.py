"""Generate stage: one story's critique from the completion provider, written as a GenerationRecord.

A failure is never written as feedback: a permanent upstream error becomes a `failed` record with its
reason; a transient one is raised so the message returns to the queue, and on its last allowed receive
a `failed` record with the cause is written first, so the build can account for it.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from coach.adapters.storage import BuildStore
from coach.domain.pricing import cost_usd
from coach.domain.prompt import END_MARKER, build_messages
from coach.domain.records import ErrorInfo, GenerationRecord, GenerationTask
from coach.errors import CoachError, PermanentUpstreamError, UpstreamError

ProviderFactory = Callable[[GenerationTask], Any]


def _failed(task: GenerationTask, code: str, message: str, **extra: Any) -> GenerationRecord:
    return GenerationRecord(
        build_id=task.build_id, story_id=task.story_id, prompt_version=task.prompt_version,
        provider=task.provider, model=task.model, status="failed", run_id=task.run_id,
        error=ErrorInfo(code=code, message=message[:500]), **extra,
    )


def generate(
    task: GenerationTask,
    *,
    store: BuildStore,
    provider_factory: ProviderFactory,
    receive_count: int = 1,
    max_receives: int = 3,
    max_story_tokens: int = 1_500,
    max_feedback_tokens: int = 800,
) -> tuple[GenerationRecord, bool]:
    """Returns (record, reused). Raises UpstreamError when the message should be retried."""
    existing = store.get_feedback(task.build_id, task.story_id)
    if existing and existing.status == "generated" and existing.prompt_version == task.prompt_version:
        return existing, True

    story = store.get_story(task.build_id, task.story_id)
    if story is None:
        record = _failed(task, "story_missing", f"no stored story {task.story_id} in build {task.build_id}")
        store.put_feedback(record)
        return record, False

    prompt = build_messages(story.text, story.title, layout="full", max_story_tokens=max_story_tokens)
    started = time.monotonic()
    try:
        provider = provider_factory(task)
        completion = provider.complete(prompt.messages, max_tokens=max_feedback_tokens, stop=[END_MARKER])
    except PermanentUpstreamError as exc:
        record = _failed(task, exc.code, exc.message, truncated=prompt.truncated)
        store.put_feedback(record)
        return record, False
    except UpstreamError as exc:
        if receive_count >= max_receives:
            # Last delivery before the DLQ: leave the cause where the build can count it.
            store.put_feedback(_failed(task, exc.code, f"gave up after {receive_count} deliveries: {exc.message}",
                                       truncated=prompt.truncated, attempts=receive_count))
        raise
    except CoachError as exc:  # configuration problems fail the story with a readable reason
        record = _failed(task, exc.code, exc.message)
        store.put_feedback(record)
        return record, False

    text = completion.text.replace(END_MARKER, "").strip()
    if not text:
        raise UpstreamError("the completion API returned an empty critique", code="upstream_empty", retryable=True)
    record = GenerationRecord(
        build_id=task.build_id, story_id=task.story_id, prompt_version=task.prompt_version,
        provider=task.provider, model=completion.model or task.model, status="generated", feedback=text,
        finish_reason=completion.finish_reason, truncated=prompt.truncated, usage=completion.usage,
        cost_usd=cost_usd(completion.model or task.model, completion.usage), run_id=task.run_id,
        attempts=completion.attempts, latency_ms=int((time.monotonic() - started) * 1000),
    )
    store.put_feedback(record)
    return record, False
