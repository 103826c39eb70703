"""Validate stage: judge every generated critique of a build and store the verdicts."""

from __future__ import annotations

from collections import Counter

from pydantic import BaseModel, Field

from coach.adapters.storage import BuildStore
from coach.domain.records import Verdict
from coach.domain.validation import validate_feedback


class ValidationSummary(BaseModel):
    build_id: str
    accepted: int = 0
    rejected: int = 0
    rejected_by_reason: dict[str, int] = Field(default_factory=dict)


def validate_build(build_id: str, *, store: BuildStore) -> ValidationSummary:
    reasons: Counter[str] = Counter()
    summary = ValidationSummary(build_id=build_id)
    for record in store.feedback(build_id):
        if record.status != "generated" or record.feedback is None:
            continue
        story = store.get_story(build_id, record.story_id)
        verdict: Verdict = validate_feedback(
            record.feedback, story=story.text if story else "", story_id=record.story_id,
            finish_reason=record.finish_reason,
        )
        store.put_verdict(build_id, verdict)
        if verdict.accepted:
            summary.accepted += 1
        else:
            summary.rejected += 1
            reasons.update(verdict.reasons)
    summary.rejected_by_reason = dict(sorted(reasons.items()))
    return summary
