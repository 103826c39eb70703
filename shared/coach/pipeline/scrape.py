"""Scrape stage: collect a build's stories, store them, enqueue the ones that still need feedback."""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from pydantic import BaseModel, Field

from coach.adapters.queue import StoryQueue
from coach.adapters.storage import BuildStore, request_key, scrape_key
from coach.domain.budget import BuildEstimate, check_fits, estimate_build
from coach.domain.pricing import price_table
from coach.domain.prompt import PROMPT_VERSION, build_messages
from coach.domain.records import BuildRequest, GenerationTask, Story, utc_now
from coach.domain.tokens import count_chat_tokens, get_counter
from coach.errors import CoachError, ConfigError
from coach.settings import Settings

T = TypeVar("T")
IO_WORKERS = 32  # S3 requests in flight at once (the client's connection pool is sized to match)


class NoStoriesError(CoachError):
    code = "no_stories"


class ScrapeResult(BaseModel):
    build_id: str
    run_id: str
    started_at: str
    stories: int
    enqueued: int
    reused: int = 0
    # Stories whose stored critique came from another provider, model or prompt version: critiqued again.
    replaced: int = 0
    resumed: bool = False
    decode_errors: int = 0
    skipped: dict[str, int] = Field(default_factory=dict)
    warnings: list[str] = Field(default_factory=list)
    enqueued_ids: list[str] = Field(default_factory=list)
    # With a budget: what earlier runs spent, and the expected cost of the stories enqueued now.
    spent_before_usd: float = 0.0
    estimate: BuildEstimate | None = None


def default_model(request: BuildRequest) -> str:
    if request.model:
        return request.model
    if request.provider == "offline":
        from coach.domain.critic import OFFLINE_MODEL

        return OFFLINE_MODEL
    if request.provider == "bedrock":
        from coach.domain.bedrock_models import DEFAULT_TEACHER_MODEL

        return DEFAULT_TEACHER_MODEL
    from coach.adapters.completion import OPENAI_MODEL_REQUIRED

    raise ConfigError(OPENAI_MODEL_REQUIRED, code="model_required")


def _each(work: Callable[[Any], T], items: Sequence[Any]) -> list[T]:
    """`work` over the items on a bounded thread pool, results in order: the scraper's S3 round trips overlap
    (100,000 stories x 3 requests x 30 ms is 150 minutes one at a time, under 5 with 32 at once)."""
    if len(items) < 2:
        return [work(item) for item in items]
    with ThreadPoolExecutor(max_workers=min(IO_WORKERS, len(items))) as pool:
        return list(pool.map(work, items))


def collect(request: BuildRequest, store: BuildStore, **source_kwargs: Any) -> tuple[list[Story], dict, bool]:
    """Stories of the build: the stored ones on a re-run (so a resume sees the same set), else fresh."""
    stored = sorted(store.stories(request.build_id), key=lambda s: s.story_id)
    if stored:
        # What the first run skipped stays part of the build's account.
        before = store.get_json(scrape_key(request.build_id)) or {}
        warnings = []
        if request.limit is not None and request.limit != len(stored):
            warnings.append(f"limit {request.limit} does not apply to a re-run: build {request.build_id} already "
                            f"holds {len(stored)} stories and continues with them; use a new build id for "
                            "another set")
        return stored, {"decode_errors": int(before.get("decode_errors", 0)),
                        "skipped": dict(before.get("skipped", {})), "warnings": warnings}, True
    from coach.adapters.sources import load_stories

    seen = store.seen_story_ids() if request.skip_seen else set()
    result = load_stories(request.source, limit=request.limit, seen_ids=seen, **source_kwargs)

    def keep(story: Story) -> None:
        store.put_story(request.build_id, story)
        store.mark_seen(request.build_id, story.story_id)

    _each(keep, result.stories)
    info = {"decode_errors": result.decode_errors, "skipped": dict(result.skipped), "warnings": result.warnings}
    return list(result.stories), info, False


def estimate_pending(request: BuildRequest, stories: list[Story], *,
                     settings: Settings | None = None) -> BuildEstimate:
    """Expected cost of critiquing `stories`, from the prompts the generator will send for them."""
    cfg = settings or Settings.from_env()
    counts = [count_chat_tokens(build_messages(s.text, s.title, layout="full",
                                               max_story_tokens=cfg.max_story_tokens).messages)
              for s in stories]
    return estimate_build(default_model(request), counts, price_table(), max_completion_tokens=cfg.max_feedback_tokens,
                          estimated_tokens=get_counter().estimated, batch=request.generation == "batch")


def scrape(request: BuildRequest, *, store: BuildStore, queue: StoryQueue, **source_kwargs: Any) -> ScrapeResult:
    started = utc_now()
    stories, info, resumed = collect(request, store, **source_kwargs)
    if not stories:
        skips = dict(info["skipped"])
        if info["decode_errors"]:
            skips["unreadable"] = info["decode_errors"]
        detail = ", ".join(f"{k}: {v}" for k, v in sorted(skips.items())) or "the source had none"
        if info["warnings"]:
            detail += "; " + "; ".join(info["warnings"][:3])
        raise NoStoriesError(f"no stories to critique from source '{request.source.kind}' ({detail})")
    store.put_model(request_key(request.build_id), request)
    run_id = uuid.uuid4().hex[:12]
    model = default_model(request)
    pending: list[Story] = []
    reused = 0
    replaced: Counter[str] = Counter()  # stored critiques from another generation key, by who wrote them
    spent = 0.0  # by earlier runs of this build: the cost their records carry
    stored = _each(lambda story: store.get_feedback(request.build_id, story.story_id), stories)
    for story, existing in zip(stories, stored, strict=True):
        spent += existing.cost_usd if existing else 0.0
        if existing and existing.written_for(request.provider, model, PROMPT_VERSION):
            reused += 1
            continue
        if existing and existing.status == "generated":
            replaced[f"{existing.writer} (prompt {existing.prompt_version})"] += 1
        pending.append(story)
    if replaced:
        info["warnings"].insert(0, (
            f"{sum(replaced.values())} stories have critiques from "
            + ", ".join(f"{who}: {n}" for who, n in sorted(replaced.items()))
            + f"; they are critiqued again by {request.provider}/{model} (prompt {PROMPT_VERSION})"))
    estimate = None
    if request.budget_usd is not None and pending:
        # Refuse before anything is enqueued or paid: a build that cannot fit would be cut short.
        estimate = estimate_pending(request, pending)
        check_fits(estimate, budget_usd=request.budget_usd, spent_usd=spent)
    tasks = [GenerationTask(
        build_id=request.build_id, story_id=story.story_id, prompt_version=PROMPT_VERSION,
        provider=request.provider, model=model, budget_usd=request.budget_usd, run_id=run_id,
        budget_spent_usd=round(spent, 9),
    ) for story in pending]
    result = ScrapeResult(
        build_id=request.build_id, run_id=run_id, started_at=started, stories=len(stories),
        enqueued=0, reused=reused, replaced=sum(replaced.values()), resumed=resumed,
        decode_errors=info["decode_errors"],
        skipped=info["skipped"], warnings=info["warnings"], enqueued_ids=[t.story_id for t in tasks],
        spent_before_usd=round(spent, 9), estimate=estimate,
    )
    # Written before enqueueing: the progress check must know the run before any feedback arrives.
    result.enqueued = len(tasks)
    store.put_model(scrape_key(request.build_id), result)
    if request.generation == "sync":  # batch generation submits provider batches from the stored list
        queue.enqueue(tasks)
    return result
