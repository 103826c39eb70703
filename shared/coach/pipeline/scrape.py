"""Scrape stage: collect a build's stories, store them, enqueue the ones that still need feedback."""

from __future__ import annotations

import uuid
from typing import Any

from pydantic import BaseModel, Field

from coach.adapters.queue import StoryQueue
from coach.adapters.storage import BuildStore, request_key, scrape_key
from coach.domain.prompt import PROMPT_VERSION
from coach.domain.records import BuildRequest, GenerationTask, Story, utc_now
from coach.errors import CoachError


class NoStoriesError(CoachError):
    code = "no_stories"


class ScrapeResult(BaseModel):
    build_id: str
    run_id: str
    started_at: str
    stories: int
    enqueued: int
    reused: int = 0
    resumed: bool = False
    decode_errors: int = 0
    skipped: dict[str, int] = Field(default_factory=dict)
    warnings: list[str] = Field(default_factory=list)
    enqueued_ids: list[str] = Field(default_factory=list)


def default_model(request: BuildRequest) -> str:
    if request.model:
        return request.model
    if request.provider == "offline":
        from coach.domain.critic import OFFLINE_MODEL

        return OFFLINE_MODEL
    return "gpt-4o-mini"


def collect(request: BuildRequest, store: BuildStore, **source_kwargs: Any) -> tuple[list[Story], dict, bool]:
    """Stories of the build: the stored ones on a re-run (so a resume sees the same set), else fresh."""
    stored = sorted(store.stories(request.build_id), key=lambda s: s.story_id)
    if stored:
        return stored, {"decode_errors": 0, "skipped": {}, "warnings": []}, True
    from coach.adapters.sources import load_stories

    seen = store.seen_story_ids()
    result = load_stories(request.source, limit=request.limit, seen_ids=seen, **source_kwargs)
    for story in result.stories:
        store.put_story(request.build_id, story)
        store.mark_seen(request.build_id, story.story_id)
    info = {"decode_errors": result.decode_errors, "skipped": dict(result.skipped), "warnings": result.warnings}
    return list(result.stories), info, False


def scrape(request: BuildRequest, *, store: BuildStore, queue: StoryQueue, **source_kwargs: Any) -> ScrapeResult:
    started = utc_now()
    stories, info, resumed = collect(request, store, **source_kwargs)
    if not stories:
        detail = ", ".join(f"{k}: {v}" for k, v in sorted(info["skipped"].items())) or "the source had none"
        raise NoStoriesError(f"no stories to critique from source '{request.source.kind}' ({detail})")
    store.put_model(request_key(request.build_id), request)
    run_id = uuid.uuid4().hex[:12]
    model = default_model(request)
    pending: list[GenerationTask] = []
    reused = 0
    for story in stories:
        existing = store.get_feedback(request.build_id, story.story_id)
        if existing and existing.status == "generated" and existing.prompt_version == PROMPT_VERSION:
            reused += 1
            continue
        pending.append(GenerationTask(
            build_id=request.build_id, story_id=story.story_id, prompt_version=PROMPT_VERSION,
            provider=request.provider, model=model, budget_usd=request.budget_usd, run_id=run_id,
        ))
    result = ScrapeResult(
        build_id=request.build_id, run_id=run_id, started_at=started, stories=len(stories),
        enqueued=0, reused=reused, resumed=resumed, decode_errors=info["decode_errors"],
        skipped=info["skipped"], warnings=info["warnings"], enqueued_ids=[t.story_id for t in pending],
    )
    # Written before enqueueing: the progress check must know the run before any feedback arrives.
    result.enqueued = len(pending)
    store.put_model(scrape_key(request.build_id), result)
    queue.enqueue(pending)
    return result
