"""Report stage: read a build's stored records, write report.html and the dataset card beside them.

Called by the assembler (every build that reaches it, finished or refused), when a fine-tune ends (so the
loss curve appears), by `coach build` and by `coach report`. Reads only; the rendering is pure domain code.
"""

from __future__ import annotations

import csv
import io
import json
from typing import Any, NamedTuple

from pydantic import BaseModel, ValidationError

from coach.adapters.storage import (
    BuildStore,
    card_key,
    dataset_key,
    fine_tune_metrics_key,
    fine_tune_step_metrics_key,
    fine_tune_validation_metrics_key,
    report_key,
    request_key,
    scrape_key,
)
from coach.domain.finetune_data import encoding_for_model, example_tokens
from coach.domain.prompt import PROMPT_VERSION
from coach.domain.records import BuildManifest, BuildRequest, Counts, GenerationRecord, Story, Verdict
from coach.domain.report import EvalScores, ReportInput, StepMetric, example_view, render_card, render_report
from coach.domain.tokens import get_counter

SAMPLE_FILE = "sample.json"  # the stories the report draws, kept beside it


class ReportKeys(BaseModel):
    report_key: str
    card_key: str


def report_files(build_id: str) -> dict[str, str]:
    """The manifest's links to the report and the card."""
    return {"report.html": report_key(build_id), "README.md": card_key(build_id)}


def _float(value: Any) -> float | None:
    try:
        return float(value) if value not in (None, "") else None
    except (TypeError, ValueError):
        return None


def parse_step_metrics(text: str, validation_text: str = "") -> list[StepMetric]:
    """Losses by step from the job's metrics files; unreadable rows are skipped.

    OpenAI's result file has `step, train_loss, valid_loss, full_valid_loss`; a Bedrock customization job
    writes `step_number, training_loss` and, in a second file, `step_number, validation_loss`.
    """
    validation = {}
    for row in csv.DictReader(io.StringIO(validation_text)):
        step = _float(row.get("step_number") or row.get("step"))
        if step is not None:
            validation[int(step)] = _float(row.get("validation_loss"))
    rows = []
    for row in csv.DictReader(io.StringIO(text)):
        step = _float(row.get("step") or row.get("step_number"))
        if step is None:
            continue
        rows.append(StepMetric(step=int(step), train_loss=_float(row.get("train_loss") or row.get("training_loss")),
                               valid_loss=_float(row.get("valid_loss")) or validation.get(int(step)),
                               full_valid_loss=_float(row.get("full_valid_loss"))))
    return rows


def checkpoint_metrics(raw: Any) -> list[StepMetric]:
    """Losses at each checkpoint (from the kept job record) when the job gave no per-step result file."""
    found = raw.get("checkpoints") if isinstance(raw, dict) else None
    rows = []
    for checkpoint in found if isinstance(found, list) else []:
        if not isinstance(checkpoint, dict):
            continue
        metrics = checkpoint.get("metrics") if isinstance(checkpoint.get("metrics"), dict) else {}
        step = _float(checkpoint.get("step_number") or metrics.get("step"))
        if step is not None:
            rows.append(StepMetric(step=int(step), train_loss=_float(metrics.get("train_loss")),
                                   valid_loss=_float(metrics.get("valid_loss")),
                                   full_valid_loss=_float(metrics.get("full_valid_loss"))))
    return sorted(rows, key=lambda r: r.step)


def eval_scores(manifest: BuildManifest) -> EvalScores | None:
    """The Evaluate step's scores, as the manifest keeps them; None before a model was evaluated."""
    summary = manifest.evaluation
    if summary is None:
        return None
    named = {"pass_rate": summary.pass_rate, "grounding": summary.grounding, "flaw_lift": summary.flaw_lift,
             "false_alarms": summary.false_alarms, "loop_rate": summary.loop_rate}
    return EvalScores(scores={k: float(v) for k, v in named.items() if v is not None}, passed=summary.passed)


def _request(store: BuildStore, build_id: str) -> BuildRequest | None:
    raw = store.get_json(request_key(build_id))
    try:
        return BuildRequest.model_validate(raw) if raw else None
    except ValidationError:
        return None


def _manifest_without_dataset(request: BuildRequest, counts: Counts) -> BuildManifest:
    """What can be said of a build that never wrote a manifest: its request and its records."""
    build_id = request.build_id
    return BuildManifest(build_id=build_id, provider=request.provider, model=request.model or "unknown",
                         prompt_version=PROMPT_VERSION, source=request.source, counts=counts)


class BuildRecords(NamedTuple):
    """A build's records by story id, for a caller that has already read them (the assembler).

    The assembler passes the first stories of a large build, with where each went (`splits`: story id ->
    (split, example tokens); `duplicates`: story id -> its rejected.jsonl line) and the build's size
    (`total`), and keeps them as the report's sample so a later report (after a fine-tune, an evaluation)
    draws the same stories without reading the whole build again."""

    stories: dict[str, Story]
    feedback: dict[str, GenerationRecord]
    verdicts: dict[str, Verdict]
    splits: dict[str, tuple[str, int]] | None = None
    duplicates: dict[str, dict] | None = None
    total: int | None = None


def read_records(store: BuildStore, build_id: str) -> BuildRecords:
    return BuildRecords(stories={s.story_id: s for s in store.stories(build_id)},
                        feedback={r.story_id: r for r in store.feedback(build_id)},
                        verdicts={v.story_id: v for v in store.verdicts(build_id)})


def save_sample(store: BuildStore, build_id: str, records: BuildRecords) -> None:
    store.put_json(report_key(build_id, SAMPLE_FILE), {
        "stories": {k: v.model_dump(mode="json") for k, v in records.stories.items()},
        "feedback": {k: v.model_dump(mode="json") for k, v in records.feedback.items()},
        "verdicts": {k: v.model_dump(mode="json") for k, v in records.verdicts.items()},
        "splits": records.splits or {}, "duplicates": records.duplicates or {}, "total": records.total,
    })


def load_sample(store: BuildStore, build_id: str) -> BuildRecords | None:
    raw = store.get_json(report_key(build_id, SAMPLE_FILE))
    if not raw:
        return None
    return BuildRecords(
        stories={k: Story.model_validate(v) for k, v in raw["stories"].items()},
        feedback={k: GenerationRecord.model_validate(v) for k, v in raw["feedback"].items()},
        verdicts={k: Verdict.model_validate(v) for k, v in raw["verdicts"].items()},
        splits={k: (v[0], int(v[1])) for k, v in raw.get("splits", {}).items()},
        duplicates=raw.get("duplicates", {}), total=raw.get("total"))


def collect(store: BuildStore, build_id: str, *, manifest: BuildManifest | None = None, problem: str = "",
            loaded: BuildRecords | None = None) -> ReportInput:
    """Join the build's stories, generation records, verdicts and dataset files into the report's input."""
    loaded = loaded or load_sample(store, build_id) or read_records(store, build_id)
    stories, feedback, verdicts = loaded.stories, loaded.feedback, loaded.verdicts
    stored = manifest or store.get_model(dataset_key(build_id, "manifest.json"), BuildManifest)
    request = _request(store, build_id)
    base_model = request.fine_tune.base_model if request else ""
    counter = get_counter(encoding_for_model(base_model)) if base_model else get_counter()

    if loaded.splits is not None:
        duplicates, splits = dict(loaded.duplicates or {}), dict(loaded.splits)
    else:
        duplicates, splits = _splits_from_files(store, build_id, verdicts, counter)

    views = []
    for story_id in sorted(set(stories) | set(feedback)):
        split, tokens = splits.get(story_id, (None, None))
        views.append(example_view(stories.get(story_id), feedback.get(story_id), verdicts.get(story_id),
                                  story_id=story_id, duplicate=duplicates.get(story_id), split=split,
                                  tokens=tokens))
    if stored is None:
        scrape = store.get_json(scrape_key(build_id)) or {}
        counts = Counts(stories=len(stories), generated=sum(1 for v in views if v.generated),
                        reused=int(scrape.get("reused", 0)),
                        failed=sum(1 for v in views if v.status == "failed"),
                        skipped_budget=sum(1 for v in views if v.status == "skipped_budget"),
                        accepted=sum(1 for v in views if v.status == "accepted"),
                        rejected=sum(1 for v in views if v.status == "rejected"))
        counts.rejected_by_reason = dict(sorted(_reason_counts(views).items()))
        stored = _manifest_without_dataset(request or BuildRequest(build_id=build_id), counts)
        problem = problem or "the build stopped before its dataset was assembled: no dataset files exist"
    elif stored.failure is not None and stored.failure.step != "fine-tune" and not problem:
        problem = stored.failure.message  # the manifest of a build refused before its dataset was written

    steps = parse_step_metrics(store.get_text(fine_tune_step_metrics_key(build_id)) or "",
                               store.get_text(fine_tune_validation_metrics_key(build_id)) or "")
    steps_from = "result file"
    if not steps:
        steps, steps_from = checkpoint_metrics(store.get_json(fine_tune_metrics_key(build_id))), "checkpoints"
    return ReportInput(
        manifest=stored, examples=views, step_metrics=steps, step_metrics_from=steps_from,
        evaluation=eval_scores(stored),
        budget_usd=request.budget_usd if request else None, base_model=base_model,
        token_limit=stored.cost.example_token_limit, complete=not problem, problem=problem,
        sample_of=loaded.total,
    )


def _splits_from_files(store: BuildStore, build_id: str, verdicts: dict[str, Verdict],
                       counter: Any) -> tuple[dict[str, dict], dict[str, tuple[str, int]]]:
    """Where each story went, read back from the dataset files (a build assembled before reports kept a sample)."""
    duplicates: dict[str, dict] = {}
    for line in (store.get_text(dataset_key(build_id, "rejected.jsonl")) or "").splitlines():
        row = json.loads(line) if line.strip() else {}
        if row.get("verdict") == "duplicate":
            duplicates[row["id"]] = row
    # An example names no story; its critique is its story's cleaned feedback, unique once duplicates are out.
    by_critique = {v.feedback.strip(): sid for sid, v in verdicts.items() if v.accepted}
    splits: dict[str, tuple[str, int]] = {}
    for split in ("train", "validation"):
        for line in (store.get_text(dataset_key(build_id, f"{split}.jsonl")) or "").splitlines():
            if line.strip():
                messages = json.loads(line)["messages"]
                story_id = by_critique.get(_assistant_text(messages))
                if story_id:
                    splits[story_id] = (split, example_tokens(messages, counter)[0])
    return duplicates, splits


def _reason_counts(views: list) -> dict[str, int]:
    counts: dict[str, int] = {}
    for view in views:
        if view.status == "rejected":
            for reason in view.reasons:
                counts[reason] = counts.get(reason, 0) + 1
    return counts


def _assistant_text(messages: list[dict]) -> str:
    return next((str(m.get("content", "")) for m in messages if m.get("role") == "assistant"), "").strip()


def publish_report(store: BuildStore, build_id: str, *, manifest: BuildManifest | None = None,
                   problem: str = "", loaded: BuildRecords | None = None) -> ReportKeys:
    """Render the report and the dataset card from the stored records and store both; returns their keys."""
    data = collect(store, build_id, manifest=manifest, problem=problem, loaded=loaded)
    keys = ReportKeys(report_key=report_key(build_id), card_key=card_key(build_id))
    store.put_text(keys.report_key, render_report(data), "text/html; charset=utf-8")
    if data.complete:  # a card describes a dataset; a build without one gets the report only
        store.put_text(keys.card_key, render_card(data), "text/markdown; charset=utf-8")
    return keys
