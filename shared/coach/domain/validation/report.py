"""The validation report for a build's manifest: counts by reason and an example of each."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable

from coach.domain.records import Verdict
from coach.domain.validation.reasons import REASONS

EXCERPT_CHARS = 240


def _example(verdict: Verdict, reason: str) -> dict:
    proof = next((e for e in verdict.evidence if e.reason == reason), None)
    text = verdict.feedback.strip()
    return {
        "story_id": verdict.story_id,
        "evidence": proof.model_dump() if proof else None,
        "excerpt": text if len(text) <= EXCERPT_CHARS else text[:EXCERPT_CHARS].rstrip() + " ...",
    }


def build_report(verdicts: Iterable[Verdict], *, examples: int = 1) -> dict:
    """{"accepted", "rejected", "by_reason", "cleaned", "examples"}.

    With examples=1 each reason maps to one example dict; with more, to a list of up to that many.
    Reasons are listed in the fixed order of REASONS, so two reports compare line by line.
    """
    accepted = rejected = 0
    by_reason: Counter[str] = Counter()
    cleaned: Counter[str] = Counter()
    found: dict[str, list[dict]] = {}
    for verdict in verdicts:
        cleaned.update(verdict.cleaned)
        if verdict.accepted:
            accepted += 1
            continue
        rejected += 1
        by_reason.update(verdict.reasons)
        for reason in verdict.reasons:
            bucket = found.setdefault(reason, [])
            if len(bucket) < examples:
                bucket.append(_example(verdict, reason))
    order = {reason: i for i, reason in enumerate(REASONS)}
    ordered = sorted(by_reason, key=lambda r: (order.get(r, len(order)), r))
    return {
        "accepted": accepted,
        "rejected": rejected,
        "by_reason": {reason: by_reason[reason] for reason in ordered},
        "cleaned": dict(sorted(cleaned.items())),
        "examples": {
            reason: (found[reason][0] if examples == 1 else found[reason]) for reason in ordered
        },
    }
