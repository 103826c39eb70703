"""The dataset files, written from the shards as streams: the assembler never holds a file in memory.

Two passes over the shards (coach.pipeline.shard), in shard order (the story keys' order):
1. `plan_dedupe` reads only the dedupe keys: the same story told twice by its fingerprint (exact), then
   critiques near-identical to a kept one by MinHash LSH (coach.domain.near_duplicates). It keeps about 300
   bytes per accepted story (a 16-byte fingerprint, a 256-byte signature and the id).
2. `write_dataset` streams every line to its file (train, validation, rejected, and the Bedrock and legacy
   copies) through the store's writers (S3 multipart upload; a renamed file locally) and checks each line
   as it passes. The fine-tuning files go to a staging prefix and are published only if every check passes.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field
from typing import Any

from coach.adapters.storage import BuildStore, staging_key
from coach.domain.bedrock_models import BaseModelSpec
from coach.domain.conversation_format import ConversationFileChecker, chat_line_to_conversation
from coach.domain.finetune_data import (
    ChatFileChecker,
    CheckResult,
    Duplicate,
    DuplicateFilter,
    ExampleOverlap,
    confirm_near_duplicates,
)
from coach.domain.legacy_export import to_prompt_completion
from coach.domain.tokens import TokenCounter
from coach.pipeline.bedrock_dataset import TRAIN_FILE as BEDROCK_TRAIN
from coach.pipeline.bedrock_dataset import VALIDATION_FILE as BEDROCK_VALIDATION

LEGACY_FILES = {"train.jsonl": "train_legacy.jsonl", "validation.jsonl": "validation_legacy.jsonl"}
BEDROCK_FILES = {"train.jsonl": BEDROCK_TRAIN, "validation.jsonl": BEDROCK_VALIDATION}


def shard_rows(store: BuildStore, shard_keys: list[str]) -> Iterator[dict[str, Any]]:
    for key in shard_keys:
        for line in store.iter_lines(key):
            if line.strip():
                yield json.loads(line)


@dataclass
class DedupePlan:
    kept: list[str] = field(default_factory=list)
    removed: dict[str, Duplicate] = field(default_factory=dict)

    def count(self, reason: str) -> int:
        return sum(1 for d in self.removed.values() if d.reason == reason)


def plan_dedupe(store: BuildStore, shard_keys: list[str], *, threshold: float) -> DedupePlan:
    """Which accepted examples stay: a pass over the dedupe keys, then, when MinHash named candidates, a pass
    that confirms each against the critique it repeats (only those texts are held)."""
    removed: dict[str, Duplicate] = {}
    duplicates = DuplicateFilter(threshold)
    order: list[str] = []
    for row in shard_rows(store, shard_keys):
        if row.get("kind") == "example":
            order.append(row["id"])
            found = duplicates.add(row["id"], row["fingerprint"], bytes.fromhex(row["signature"]))
            if found is not None:
                removed[row["id"]] = found
    near = {sid for sid, d in removed.items() if d.reason == "near_duplicate_critique"}
    if near:
        wanted = near | {removed[sid].duplicate_of for sid in near}
        critiques = {row["id"]: row["critique"] for row in shard_rows(store, shard_keys)
                     if row.get("kind") == "example" and row["id"] in wanted}
        confirm_near_duplicates(removed, critiques, threshold=threshold)
    return DedupePlan(kept=[sid for sid in order if sid not in removed], removed=removed)


@dataclass
class DatasetOptions:
    counter: TokenCounter
    token_limit: int
    min_examples: int
    bedrock: BaseModelSpec | None = None  # also write the Bedrock conversation copies
    legacy: bool = False  # also write the prompt/completion copies


@dataclass
class WrittenDataset:
    checks: dict[str, CheckResult]
    staged: dict[str, str]  # file name -> staging key (fine-tuning files, published only when all pass)
    rejected_key: str
    train_examples: int = 0
    validation_examples: int = 0
    validation_order: list[str] = field(default_factory=list)  # the held-out story ids, in the file's order
    sample: list[dict[str, Any]] = field(default_factory=list)  # the first stories' shard rows, with "went"
    legacy_skipped: dict[str, list[str]] = field(default_factory=dict)
    legacy_rows: dict[str, int] = field(default_factory=dict)


class _Sinks:
    """The open writers and their line checks."""

    def __init__(self, stack: ExitStack, store: BuildStore, build_id: str, options: DatasetOptions) -> None:
        self.options = options
        self.staged: dict[str, str] = {}
        self.writers: dict[str, Any] = {}
        names = ["train.jsonl", "validation.jsonl"]
        names += [BEDROCK_FILES[n] for n in ("train.jsonl", "validation.jsonl")] if options.bedrock else []
        names += [LEGACY_FILES[n] for n in ("train.jsonl", "validation.jsonl")] if options.legacy else []
        for name in names:
            self.staged[name] = staging_key(build_id, name)
            self.writers[name] = stack.enter_context(store.open_writer(self.staged[name]))
        self.checkers: dict[str, Any] = {
            name: ChatFileChecker(options.counter, name=name, token_limit=options.token_limit)
            for name in ("train.jsonl", "validation.jsonl")}
        if options.bedrock:
            self.checkers.update({
                BEDROCK_FILES[name]: ConversationFileChecker(options.bedrock, options.counter, name=BEDROCK_FILES[name],
                                                             validation=name == "validation.jsonl")
                for name in ("train.jsonl", "validation.jsonl")})
        self.overlap = ExampleOverlap()
        self.lines = {"train.jsonl": 0, "validation.jsonl": 0}
        self.legacy_skipped: dict[str, list[str]] = {n: [] for n in LEGACY_FILES.values()}
        self.legacy_rows: dict[str, int] = {n: 0 for n in LEGACY_FILES.values()}

    def example(self, name: str, example: dict[str, Any]) -> None:
        line = json.dumps(example, ensure_ascii=False)
        self.lines[name] += 1
        self.writers[name].write(line + "\n")
        self.checkers[name].add(line)
        if name == "train.jsonl":
            self.overlap.add_train(line)
        else:
            self.overlap.check_validation(self.lines[name], line)
        if self.options.bedrock:
            converted = chat_line_to_conversation(line)
            self.writers[BEDROCK_FILES[name]].write(converted + "\n")
            self.checkers[BEDROCK_FILES[name]].add(converted)
        if self.options.legacy:
            legacy = LEGACY_FILES[name]
            try:
                row = to_prompt_completion(example)
            except ValueError as err:
                self.legacy_skipped[legacy].append(f"line {self.lines[name]}: {err}")
                return
            self.legacy_rows[legacy] += 1
            self.writers[legacy].write(json.dumps(row, ensure_ascii=False) + "\n")

    def results(self) -> dict[str, CheckResult]:
        results = {"train.jsonl": self.checkers["train.jsonl"].finish(min_examples=self.options.min_examples)}
        if self.lines["validation.jsonl"]:
            checked = self.checkers["validation.jsonl"].finish(min_examples=None)
            overlap = self.overlap.overlapping
            if overlap:
                checked.dataset_errors.append(
                    f"validation_overlaps_training ({len(overlap)} validation examples repeat training examples, "
                    f"lines {', '.join(map(str, overlap[:10]))})")
            results["validation.jsonl"] = checked
        if self.options.bedrock:
            results[BEDROCK_TRAIN] = self.checkers[BEDROCK_TRAIN].finish()
            if self.lines["validation.jsonl"]:
                results[BEDROCK_VALIDATION] = self.checkers[BEDROCK_VALIDATION].finish()
        return results


def write_dataset(store: BuildStore, build_id: str, shard_keys: list[str], plan: DedupePlan,
                  validation_ids: set[str], rejected_key: str, options: DatasetOptions, *,
                  sample_limit: int = 0) -> WrittenDataset:
    """Streams the shards into the staged dataset files and rejected.jsonl; checks every line as it passes.

    The first `sample_limit` stories' rows are kept, each with where it went, for the build report."""
    order: list[str] = []
    sample: list[dict[str, Any]] = []
    with ExitStack() as stack:
        sinks = _Sinks(stack, store, build_id, options)
        rejected = stack.enter_context(store.open_writer(rejected_key))
        for row in shard_rows(store, shard_keys):
            story_id, kind = row.get("id"), row.get("kind")
            went = kind
            if kind == "rejected":
                rejected.write(json.dumps(row["row"], ensure_ascii=False) + "\n")
            elif kind == "example" and story_id in plan.removed:
                went = "duplicate"
                rejected.write(json.dumps(duplicate_row(plan.removed[story_id], row["critique"]),
                                          ensure_ascii=False) + "\n")
            elif kind == "example" and story_id in validation_ids:
                went = "validation"
                sinks.example("validation.jsonl", row["example"])
                order.append(story_id)
            elif kind == "example":
                went = "train"
                sinks.example("train.jsonl", row["example"])
            if len(sample) < sample_limit:
                sample.append({**row, "went": went})
    written = WrittenDataset(checks=sinks.results(), staged=sinks.staged, rejected_key=rejected_key,
                             train_examples=sinks.lines["train.jsonl"],
                             validation_examples=sinks.lines["validation.jsonl"], validation_order=order,
                             sample=sample)
    if options.legacy:
        written.legacy_skipped, written.legacy_rows = sinks.legacy_skipped, sinks.legacy_rows
    return written


def duplicate_row(duplicate: Duplicate, critique: str) -> dict[str, Any]:
    """The rejected.jsonl line of an example dropped as a duplicate."""
    return {"id": duplicate.story_id, "verdict": "duplicate", "reasons": [duplicate.reason],
            "duplicate_of": duplicate.duplicate_of, "similarity": duplicate.similarity, "feedback": critique}
