"""Assemble stage: accepted critiques -> train/validation JSONL, rejected.jsonl and the manifest."""

from __future__ import annotations

import json
import os
from collections import Counter
from typing import Any

from pydantic import BaseModel

from coach.adapters.storage import BuildStore, dataset_key, scrape_key
from coach.domain.dataset import billable_training_tokens, chat_example, default_epochs, split_ids
from coach.domain.prompt import PROMPT_VERSION
from coach.domain.records import BuildManifest, BuildRequest, CostEstimate, Counts, TokenStats, Verdict
from coach.domain.tokens import count_chat_tokens, get_counter
from coach.domain.validation import build_report
from coach.errors import CoachError
from coach.pipeline.scrape import default_model

MIN_EXAMPLES = 10
TRAINING_PRICE_PER_MILLION = float(os.environ.get("COACH_TRAINING_PRICE_PER_MILLION", "3.0"))
EXAMPLE_TOKEN_LIMIT = int(os.environ.get("COACH_EXAMPLE_TOKEN_LIMIT", "65536"))


class DatasetTooSmallError(CoachError):
    code = "dataset_too_small"


class AssembleResult(BaseModel):
    build_id: str
    train_examples: int
    validation_examples: int
    manifest_key: str
    train_key: str
    validation_key: str
    rejected_key: str


def _jsonl(rows: list[dict[str, Any]]) -> str:
    return "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows)


def assemble(request: BuildRequest, *, store: BuildStore, min_examples: int = MIN_EXAMPLES) -> tuple[
        AssembleResult, BuildManifest]:
    build_id = request.build_id
    scrape = store.get_json(scrape_key(build_id)) or {}
    stories = {s.story_id: s for s in store.stories(build_id)}
    records = {r.story_id: r for r in store.feedback(build_id)}
    verdicts: dict[str, Verdict] = {v.story_id: v for v in store.verdicts(build_id)
                                    if records.get(v.story_id) and records[v.story_id].status == "generated"}

    examples: dict[str, dict] = {}
    rejected_rows: list[dict[str, Any]] = []
    reasons: Counter[str] = Counter()
    for story_id, verdict in sorted(verdicts.items()):
        story = stories.get(story_id)
        if verdict.accepted and story is not None:
            examples[story_id] = chat_example(story, verdict.feedback)
        else:
            reasons.update(verdict.reasons)
            rejected_rows.append({
                "id": story_id, "verdict": "rejected", "reasons": verdict.reasons,
                "evidence": [e.model_dump() for e in verdict.evidence],
                "feedback": records[story_id].feedback,
            })

    train_ids, validation_ids = split_ids(list(examples), request.validation_fraction, request.fine_tune.seed)
    counter = get_counter()
    example_tokens = {sid: count_chat_tokens(ex["messages"]) for sid, ex in examples.items()}
    train_tokens = [example_tokens[s] for s in train_ids]
    epochs = request.fine_tune.epochs or default_epochs(len(train_ids))
    billable = billable_training_tokens(train_tokens, epochs, EXAMPLE_TOKEN_LIMIT)

    generated = [r for r in records.values() if r.status == "generated"]
    counts = Counts(
        stories=len(stories),
        decode_errors=int(scrape.get("decode_errors", 0)),
        generated=len(generated),
        generated_now=sum(1 for r in generated if r.run_id == scrape.get("run_id")),
        reused=int(scrape.get("reused", 0)),
        failed=sum(1 for r in records.values() if r.status == "failed"),
        skipped_budget=sum(1 for r in records.values() if r.status == "skipped_budget"),
        accepted=len(examples),
        rejected=len(rejected_rows),
        rejected_by_reason=dict(sorted(reasons.items())),
        train_examples=len(train_ids),
        validation_examples=len(validation_ids),
    )
    manifest = BuildManifest(
        build_id=build_id, provider=request.provider, model=default_model(request),
        prompt_version=PROMPT_VERSION, source=request.source, counts=counts,
        tokens=TokenStats(
            prompt_tokens=sum(r.usage.prompt_tokens for r in generated),
            completion_tokens=sum(r.usage.completion_tokens for r in generated),
            dataset_tokens=sum(example_tokens.values()),
            estimated=counter.estimated or any(r.usage.estimated for r in generated),
            method=counter.method,
        ),
        cost=CostEstimate(
            generation_usd=round(sum(r.cost_usd for r in records.values()), 6),
            fine_tune_usd=round(billable / 1_000_000 * TRAINING_PRICE_PER_MILLION, 6),
            fine_tune_epochs=epochs or None,
            billable_training_tokens=billable,
        ),
        validation_report=build_report(verdicts.values()),
    )
    keys = {name: dataset_key(build_id, name) for name in
            ("train.jsonl", "validation.jsonl", "rejected.jsonl", "manifest.json")}
    manifest.files = keys
    if len(examples) < min_examples:
        store.put_text(keys["rejected.jsonl"], _jsonl(rejected_rows), "application/x-ndjson")
        raise DatasetTooSmallError(
            f"only {len(examples)} accepted examples; a fine-tuning dataset needs at least {min_examples}: "
            "add stories or inspect rejected.jsonl"
        )
    store.put_text(keys["train.jsonl"], _jsonl([examples[s] for s in train_ids]), "application/x-ndjson")
    store.put_text(keys["validation.jsonl"], _jsonl([examples[s] for s in validation_ids]), "application/x-ndjson")
    store.put_text(keys["rejected.jsonl"], _jsonl(rejected_rows), "application/x-ndjson")
    store.put_text(keys["manifest.json"], manifest.model_dump_json(indent=2))  # last: its presence means done
    result = AssembleResult(
        build_id=build_id, train_examples=len(train_ids), validation_examples=len(validation_ids),
        manifest_key=keys["manifest.json"], train_key=keys["train.jsonl"],
        validation_key=keys["validation.jsonl"], rejected_key=keys["rejected.jsonl"],
    )
    return result, manifest
