"""Shard stage: one batch of a build's stories -> their verdicts and one dataset shard.

A Step Functions Distributed Map lists `builds/{id}/stories/` (ItemReader), hands each child a batch of a few
hundred keys (ItemBatcher) and this stage turns the batch into a shard the assembler joins:

    builds/{id}/shards/{run}/{first story}.jsonl         one line per story, in key order: an accepted example
                                                         (with its dedupe keys), a rejected critique, or none
    builds/{id}/shards/{run}/{first story}.records.jsonl the batch's stories, records and verdicts whole, from
                                                         which the build report draws its sample
    builds/{id}/shards/{run}/{first story}.summary.json  the batch's counts, costs and validation tallies

Each story costs three GETs (story, feedback record, verdict) and a PUT only when its verdict must be judged
again (the generator judges every critique it writes); a batch adds one GET (the request) and three PUTs.
The reads run on a bounded thread pool, so a batch takes about `3 x batch / workers` round trips whatever the
build's size. A retried batch rewrites the same keys.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from pydantic import BaseModel, Field

from coach.adapters.storage import BuildStore, build_prefix, request_key, shards_prefix
from coach.domain.dataset import chat_example
from coach.domain.finetune_data import story_fingerprint
from coach.domain.near_duplicates import critique_signature
from coach.domain.pricing import price_table
from coach.domain.prompt import PROMPT_VERSION
from coach.domain.records import BuildRequest, Counts, GenerationRecord, Story, Verdict
from coach.domain.validation.report import build_report
from coach.errors import InputError
from coach.pipeline.scrape import default_model
from coach.pipeline.validate import current_verdict

DEFAULT_WORKERS = 16
STORIES_FOLDER = "stories/"


def shard_key(build_id: str, run_id: str, first_story: str) -> str:
    return f"{shards_prefix(build_id, run_id)}{first_story}.jsonl"


def summary_key(shard: str) -> str:
    return shard.removesuffix(".jsonl") + ".summary.json"


def records_key(shard: str) -> str:
    return shard.removesuffix(".jsonl") + ".records.jsonl"


class ShardSummary(BaseModel):
    """What the assembler needs of a batch without reading its lines: counts, money, tokens, validation."""

    build_id: str
    run_id: str
    shard: str
    # The manifest's counts over this batch: stories, generated (and now), failed, skipped, accepted, rejected,
    # by_model. The assembler adds them up.
    counts: Counts = Field(default_factory=Counts)
    judged_now: int = 0  # verdicts judged here rather than reused from the generator
    foreign: dict[str, int] = Field(default_factory=dict)  # critiques not written by the build's own writer
    prompt_tokens: int = 0
    completion_tokens: int = 0
    usage_estimated: bool = False
    generation_usd: float = 0.0
    generation_batch_usd: float = 0.0
    generation_sync_equivalent_usd: float = 0.0
    unpriced_models: list[str] = Field(default_factory=list)
    missing_causes: dict[str, int] = Field(default_factory=dict)  # error codes of stories without a critique
    validation: dict[str, Any] = Field(default_factory=dict)  # build_report of this batch's verdicts

    def output(self) -> dict[str, Any]:
        """What the map's child returns (and its ResultWriter keeps): the shard and its size."""
        return {"shard": self.shard, "stories": self.counts.stories, "examples": self.counts.accepted,
                "rejected": self.counts.rejected}


class StoryRows(BaseModel):
    story: Story | None
    record: GenerationRecord | None
    verdict: Verdict | None = None
    judged: bool = False


def story_ids_of(items: Iterable[dict[str, Any]], build_id: str) -> list[str]:
    """Story ids from the ItemReader's items ({"Key": "builds/{id}/stories/{story}.json", ...})."""
    folder = build_prefix(build_id) + STORIES_FOLDER
    ids = []
    for item in items:
        key = str(item.get("Key", "")) if isinstance(item, dict) else ""
        if not key.startswith(folder) or not key.endswith(".json"):
            raise InputError(f"bad_shard_item: {key!r} is not a story of build {build_id}", code="bad_shard_item")
        ids.append(key[len(folder):-len(".json")])
    return ids


def _load(store: BuildStore, build_id: str, story_id: str) -> StoryRows:
    story = store.get_story(build_id, story_id)
    record = store.get_feedback(build_id, story_id)
    rows = StoryRows(story=story, record=record)
    if record is not None and record.status == "generated" and record.feedback is not None:
        rows.verdict, rows.judged = current_verdict(store, record, story)
    return rows


def build_shard(build_id: str, run_id: str, story_ids: list[str], *, store: BuildStore, max_story_tokens: int,
                workers: int = DEFAULT_WORKERS) -> ShardSummary:
    if not story_ids:
        raise InputError("bad_shard_batch: a batch holds at least one story", code="bad_shard_batch")
    request = store.get_model(request_key(build_id), BuildRequest)
    if request is None:
        raise InputError(f"build_not_found: build {build_id} has no stored request", code="build_not_found")
    ordered = sorted(story_ids)
    with ThreadPoolExecutor(max_workers=max(1, min(workers, len(ordered)))) as pool:
        loaded = list(pool.map(lambda sid: _load(store, build_id, sid), ordered))
    key = shard_key(build_id, run_id, ordered[0])
    summary = ShardSummary(build_id=build_id, run_id=run_id, shard=key, counts=Counts(stories=len(ordered)))
    lines = [_line(summary, sid, rows, request, run_id, max_story_tokens) for sid, rows in zip(ordered, loaded,
                                                                                                   strict=True)]
    summary.validation = build_report(rows.verdict for rows in loaded if rows.verdict is not None)
    summary.judged_now = sum(1 for rows in loaded if rows.judged)
    _money(summary, [rows.record for rows in loaded if rows.record is not None])
    # Lines first, summary last: the assembler reads a shard only once its summary exists.
    store.put_text(key, _jsonl(lines), "application/x-ndjson")
    store.put_text(records_key(key), _jsonl({
        "id": sid, "story": rows.story and rows.story.model_dump(mode="json"),
        "record": rows.record and rows.record.model_dump(mode="json"),
        "verdict": rows.verdict and rows.verdict.model_dump(mode="json")} for sid, rows in zip(ordered, loaded,
                                                                                              strict=True)),
        "application/x-ndjson")
    store.put_text(summary_key(key), summary.model_dump_json())
    return summary


def _jsonl(rows: Iterable[dict[str, Any]]) -> str:
    return "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows)


def _line(summary: ShardSummary, story_id: str, rows: StoryRows, request: BuildRequest, run_id: str,
          max_story_tokens: int) -> dict[str, Any]:
    record, verdict, story = rows.record, rows.verdict, rows.story
    counts = summary.counts
    if record is None or record.status != "generated":
        if record is not None:
            setattr(counts, record.status, getattr(counts, record.status) + 1)
            if record.error:
                summary.missing_causes[record.error.code] = summary.missing_causes.get(record.error.code, 0) + 1
        return {"id": story_id, "kind": "none"}
    counts.generated += 1
    counts.generated_now += int(record.run_id == run_id)
    counts.by_model[record.writer] = counts.by_model.get(record.writer, 0) + 1
    if not record.written_for(request.provider, default_model(request), PROMPT_VERSION):
        writer = f"{record.writer} (prompt {record.prompt_version})"
        summary.foreign[writer] = summary.foreign.get(writer, 0) + 1
    assert verdict is not None  # a generated record always has one (see _load)
    if verdict.accepted and story is not None:
        counts.accepted += 1
        return {"id": story_id, "kind": "example", "fingerprint": story_fingerprint(story.text),
                "signature": critique_signature(verdict.feedback).hex(), "critique": verdict.feedback,
                "example": chat_example(story, verdict.feedback, max_story_tokens=max_story_tokens)}
    counts.rejected += 1
    return {"id": story_id, "kind": "rejected", "row": {
        "id": story_id, "verdict": "rejected", "reasons": verdict.reasons,
        "evidence": [e.model_dump() for e in verdict.evidence], "feedback": record.feedback}}


def _money(summary: ShardSummary, records: list[GenerationRecord]) -> None:
    generated = [r for r in records if r.status == "generated"]
    summary.prompt_tokens = sum(r.usage.prompt_tokens for r in generated)
    summary.completion_tokens = sum(r.usage.completion_tokens for r in generated)
    summary.usage_estimated = any(r.usage.estimated for r in generated)
    summary.generation_usd = sum(r.cost_usd for r in records)
    summary.generation_batch_usd = sum(r.cost_usd for r in records if r.generation == "batch")
    summary.generation_sync_equivalent_usd = sum(
        r.cost_usd if r.sync_cost_usd is None else r.sync_cost_usd for r in records)
    prices = price_table()
    summary.unpriced_models = sorted({r.model for r in generated
                                      if r.provider != "offline" and not prices.is_priced(r.model)})


def merge_counters(parts: Iterable[dict[str, int]]) -> dict[str, int]:
    total: Counter[str] = Counter()
    for part in parts:
        total.update(part)
    return dict(sorted(total.items()))
