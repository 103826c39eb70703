"""What a build report is drawn from: typed, already-joined views of a build's records.

The pipeline reads the stored records and builds a `ReportInput`; the renderers (page, dataset card)
only read it. Nothing here does I/O.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from coach.domain.records import BuildManifest, ErrorInfo, GenerationRecord, Story, Verdict, utc_now
from coach.domain.validation import CLEANERS

ExampleStatus = Literal["accepted", "rejected", "duplicate", "failed", "skipped_budget", "pending"]
# The order the browser lists examples in: what was thrown out first, what was kept last.
STATUS_ORDER: tuple[ExampleStatus, ...] = ("rejected", "duplicate", "failed", "skipped_budget", "pending",
                                           "accepted")


class Span(BaseModel):
    """An offending span of a critique: character offsets into `ExampleView.critique`."""

    start: int
    end: int
    reason: str
    detail: str = ""


class ExampleView(BaseModel):
    """One story and what became of it."""

    story_id: str
    title: str = ""
    story: str = ""
    link: str | None = None
    status: ExampleStatus
    split: Literal["train", "validation"] | None = None
    reasons: list[str] = Field(default_factory=list)
    critique: str = ""
    spans: list[Span] = Field(default_factory=list)
    notes: list[str] = Field(default_factory=list)  # evidence without a span in the critique shown
    cause: str = ""  # why a story has no critique (failed, skipped)
    tokens: int | None = None  # the fine-tuning example's tokens (kept examples only)
    cost_usd: float = 0.0
    generated: bool = False  # a generation record with text exists (whatever the verdict)


class StepMetric(BaseModel):
    """One row of the fine-tuning job's result file."""

    step: int
    train_loss: float | None = None
    valid_loss: float | None = None
    full_valid_loss: float | None = None


class EvalScores(BaseModel):
    """The evaluation's headline scores (name -> number) and whether the gate passed."""

    scores: dict[str, float] = Field(default_factory=dict)
    passed: bool | None = None
    note: str = ""


class ReportInput(BaseModel):
    manifest: BuildManifest
    examples: list[ExampleView] = Field(default_factory=list)
    step_metrics: list[StepMetric] = Field(default_factory=list)
    step_metrics_from: str = "result file"  # or "checkpoints" when the job kept no per-step file
    evaluation: EvalScores | None = None
    budget_usd: float | None = None
    base_model: str = ""
    token_limit: int | None = None
    # False when the build stopped before its dataset was assembled; `problem` then says why.
    complete: bool = True
    problem: str = ""
    generated_at: str = Field(default_factory=utc_now)
    # Set when `examples` are the first stories of a larger build: how many stories the build has.
    sample_of: int | None = None

    def by_status(self, status: ExampleStatus) -> list[ExampleView]:
        return [e for e in self.examples if e.status == status]


def cause_of(error: ErrorInfo | None) -> str:
    return f"{error.code}: {error.message}" if error else "no cause recorded"


def spans_of(verdict: Verdict) -> tuple[list[Span], list[str]]:
    """The verdict's rule evidence as spans of its (cleaned) feedback; the rest as notes.

    Rule offsets point into the cleaned text; a cleaner's point into the text before cleaning, so what a
    cleaner removed is told as a note rather than drawn on text it is no longer part of. A span that is
    (nearly) the whole critique, as a length rule's is, is a note too: marking everything shows nothing.
    """
    text = verdict.feedback
    spans: list[Span] = []
    notes: list[str] = []
    for item in verdict.evidence:
        if item.rule in CLEANERS:
            notes.append(f"cleaned ({item.reason}): removed \u201c{item.span}\u201d" if item.span
                         else f"cleaned ({item.reason})")
            continue
        start, end = item.start, item.end
        if (start is None or end is None) and item.span and " ... " not in item.span:
            found = text.find(item.span)
            start, end = (found, found + len(item.span)) if found >= 0 else (None, None)
        whole = start is not None and end is not None and end - start >= 0.9 * len(text)
        if start is not None and end is not None and 0 <= start < end <= len(text) and not whole:
            spans.append(Span(start=start, end=end, reason=item.reason, detail=item.detail))
        else:
            notes.append(f"{item.reason}: {item.detail or item.span or 'the whole critique'}")
    return sorted(spans, key=lambda s: (s.start, s.end)), notes


def example_view(
    story: Story | None,
    record: GenerationRecord | None,
    verdict: Verdict | None,
    *,
    story_id: str,
    duplicate: dict | None = None,
    split: Literal["train", "validation"] | None = None,
    tokens: int | None = None,
) -> ExampleView:
    """Join one story's records into what the browser shows."""
    view = ExampleView(
        story_id=story_id, status="pending",
        title=story.title if story else "", story=story.text if story else "",
        link=(story.provenance.permalink if story else None),
        cost_usd=record.cost_usd if record else 0.0,
    )
    if record is None:
        view.cause = "no critique was recorded for this story (the build stopped before it was generated)"
        return view
    if record.status != "generated":
        view.status = "failed" if record.status == "failed" else "skipped_budget"
        view.cause = cause_of(record.error) + (" (dead-lettered)" if record.dead_lettered else "")
        return view
    view.generated = True
    if verdict is None:
        view.critique = record.feedback or ""
        view.cause = "not validated yet"
        return view
    view.critique = verdict.feedback
    view.spans, view.notes = spans_of(verdict)
    view.reasons = list(verdict.reasons)
    if not verdict.accepted:
        view.status = "rejected"
    elif duplicate is not None:
        view.status = "duplicate"
        view.reasons = list(duplicate.get("reasons") or ["duplicate"])
        view.notes.append(f"duplicate of {duplicate.get('duplicate_of')}"
                          + (f" (similarity {duplicate['similarity']:.2f})"
                             if isinstance(duplicate.get("similarity"), int | float) else ""))
    else:
        view.status = "accepted"
        view.split, view.tokens = split, tokens
    return view
