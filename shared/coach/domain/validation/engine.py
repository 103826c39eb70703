"""The validator: clean what an editor would delete, then judge what is left. Pure and fast.

The dataset build (validator Lambda), `coach validate` and the critique API's output guard all call
`validate_feedback`, so a critique is judged the same way everywhere.
"""

from __future__ import annotations

from collections.abc import Callable

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
    original = normalise_whitespace(feedback or "")
    text = original
    cleaned: list[str] = []
    found: list[Evidence] = []
    before_method = text
    cleaners: tuple[tuple[str, Callable[[str], Cleaning]], ...] = (
        (STRIP_DELIMITERS, strip_delimiters),
        (STRIP_LABEL, strip_label),
        (DROP_METHOD_PARAGRAPH, lambda t: drop_method_paragraph(t, story or "")),
    )
    for code, cleaner in cleaners:
        if code == DROP_METHOD_PARAGRAPH:
            before_method = text
        result = cleaner(text)
        if result.changed:
            text = result.text
            cleaned.append(code)
            found += _cleaner_evidence(code, result, original)

    ctx = Context(text=text, story=story or "", config=config, finish_reason=finish_reason)
    rule_evidence: list[Evidence] = []
    if not text.strip():
        rule_evidence.append(Evidence(rule="empty", reason=R.EMPTY, detail="no feedback text"))
    else:
        stop = rule_error_text(ctx) + rule_refusal(ctx)
        if stop:
            rule_evidence += stop
            if (finish_reason or "").lower() == "length":
                rule_evidence += rule_truncated(ctx)
        else:
            for _, rule in CONTENT_RULES:
                rule_evidence += rule(ctx)
            # A missing "you" is only worth reporting when nothing else explains it (a retelling, a list
            # of quotations, a one-liner all lack one too).
            rule_evidence += rule_third_person(ctx, check_second_person=not rule_evidence)

    # Nothing worth keeping after the method explanation went: that is the reason, not the length.
    if DROP_METHOD_PARAGRAPH in cleaned and count_words(before_method) >= config.min_words:
        short = [e for e in rule_evidence if e.reason in (R.EMPTY, R.TOO_SHORT)]
        if short:
            rule_evidence = [e for e in rule_evidence if e not in short and e.rule != "no_second_person"]
            rule_evidence.append(Evidence(
                rule="method_only", reason=R.METHOD_EXPLANATION, span=excerpt(before_method, 0, len(before_method)),
                start=None, end=None, detail="after the method explanation, no critique remains",
            ))

    reasons = sorted({e.reason for e in rule_evidence}, key=lambda r: _ORDER.get(r, len(_ORDER)))
    return Verdict(
        story_id=story_id,
        accepted=not reasons,
        reasons=reasons,
        feedback=text,
        cleaned=cleaned,
        evidence=found + rule_evidence,
    )
