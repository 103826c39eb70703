"""The validator: clean what an editor would delete, then judge what is left. Pure and fast.

The dataset build (validator Lambda), `coach validate` and the critique API's output guard all call
`validate_feedback`, so a critique is judged the same way everywhere.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from coach.domain.records import Evidence, Verdict
from coach.domain.validation import reasons as R
from coach.domain.validation.cleaners import (
    DROP_METHOD_PARAGRAPH,
    STRIP_DELIMITERS,
    STRIP_LABEL,
    Cleaning,
    drop_method_paragraph,
    strip_delimiters,
    strip_label,
)
from coach.domain.validation.config import DEFAULT_CONFIG, ValidatorConfig
from coach.domain.validation.context import Context
from coach.domain.validation.rules import (
    CONTENT_RULES,
    rule_error_text,
    rule_refusal,
    rule_third_person,
    rule_truncated,
)
from coach.domain.validation.text import count_words, excerpt, normalise_whitespace

_ORDER = {reason: i for i, reason in enumerate(R.REASONS)}


def _cleaner_evidence(code: str, cleaning: Cleaning, original: str) -> list[Evidence]:
    found = []
    for span in cleaning.removed:
        at = original.find(span.text)
        start, end = (at, at + len(span.text)) if at >= 0 else (None, None)
        found.append(Evidence(rule=code, reason=code, span=excerpt(span.text, 0, len(span.text)),
                              start=start, end=end, detail="removed"))
    return found


@dataclass(frozen=True, slots=True)
class _Cleaned:
    text: str  # what is left to judge
    cleaned: list[str]  # codes of the cleaners that changed it
    evidence: list[Evidence]  # what they removed, offsets into the original
    before_method: str  # the text as it was before the method paragraph was dropped


def _clean(original: str, story: str) -> _Cleaned:
    text = original
    cleaned: list[str] = []
    found: list[Evidence] = []
    before_method = text
    cleaners: tuple[tuple[str, Callable[[str], Cleaning]], ...] = (
        (STRIP_DELIMITERS, strip_delimiters),
        (STRIP_LABEL, strip_label),
        (DROP_METHOD_PARAGRAPH, lambda t: drop_method_paragraph(t, story)),
    )
    for code, cleaner in cleaners:
        if code == DROP_METHOD_PARAGRAPH:
            before_method = text
        result = cleaner(text)
        if result.changed:
            text = result.text
            cleaned.append(code)
            found += _cleaner_evidence(code, result, original)
    return _Cleaned(text, cleaned, found, before_method)


def _rule_evidence(ctx: Context, finish_reason: str | None) -> list[Evidence]:
    """What the rules find in the cleaned text: an error or refusal stops the content rules."""
    if not ctx.text.strip():
        return [Evidence(rule="empty", reason=R.EMPTY, detail="no feedback text")]
    stop = rule_error_text(ctx) + rule_refusal(ctx)
    if stop:
        if (finish_reason or "").lower() == "length":
            stop += rule_truncated(ctx)
        return stop
    evidence: list[Evidence] = []
    for _, rule in CONTENT_RULES:
        evidence += rule(ctx)
    # A missing "you" is only worth reporting when nothing else explains it (a retelling, a list
    # of quotations, a one-liner all lack one too).
    return evidence + rule_third_person(ctx, check_second_person=not evidence)


def _method_only(evidence: list[Evidence], before_method: str) -> list[Evidence]:
    """Nothing worth keeping after the method explanation went: that is the reason, not the length."""
    short = [e for e in evidence if e.reason in (R.EMPTY, R.TOO_SHORT)]
    if not short:
        return evidence
    kept = [e for e in evidence if e not in short and e.rule != "no_second_person"]
    kept.append(Evidence(
        rule="method_only", reason=R.METHOD_EXPLANATION, span=excerpt(before_method, 0, len(before_method)),
        start=None, end=None, detail="after the method explanation, no critique remains",
    ))
    return kept


def validate_feedback(
    feedback: str,
    *,
    story: str,
    story_id: str = "",
    finish_reason: str | None = None,
    config: ValidatorConfig = DEFAULT_CONFIG,
) -> Verdict:
    """Clean a critique and judge it. Evidence offsets of rules point into the cleaned text (the
    verdict's feedback); offsets of cleaners point into the original, whitespace-normalised text."""
    cleaning = _clean(normalise_whitespace(feedback or ""), story or "")
    ctx = Context(text=cleaning.text, story=story or "", config=config, finish_reason=finish_reason)
    rule_evidence = _rule_evidence(ctx, finish_reason)
    if DROP_METHOD_PARAGRAPH in cleaning.cleaned and count_words(cleaning.before_method) >= config.min_words:
        rule_evidence = _method_only(rule_evidence, cleaning.before_method)

    reasons = sorted({e.reason for e in rule_evidence}, key=lambda r: _ORDER.get(r, len(_ORDER)))
    return Verdict(
        story_id=story_id,
        accepted=not reasons,
        reasons=reasons,
        feedback=cleaning.text,
        cleaned=cleaning.cleaned,
        evidence=cleaning.evidence + rule_evidence,
    )
