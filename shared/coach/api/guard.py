"""The output guard: a critique reaches the writer only if it passes the validator's rules.

A fine-tuned model may start repeating itself at the end; that loop is trimmed first, so a good
critique is not thrown away for its tail. What still fails (a list, a continuation of the story, talk
about "the author", ...) is reported with the validator's reasons so the service can retry once.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from coach.domain.prompt import END_MARKER
from coach.domain.validation import trim_repetition_loop, validate_feedback


@dataclass(frozen=True)
class Review:
    accepted: bool
    text: str  # the cleaned critique (what the writer gets when accepted)
    reasons: list[str] = field(default_factory=list)
    trimmed_loop: bool = False


def review(raw: str, *, story: str, finish_reason: str | None) -> Review:
    # A server that ignores the stop sequence still must not show the marker or what followed it.
    text = raw.split(END_MARKER, 1)[0]
    text, trimmed = trim_repetition_loop(text)
    # A loop runs until the token limit, so "length" says nothing about the trimmed text's ending.
    verdict = validate_feedback(text, story=story, finish_reason="stop" if trimmed else finish_reason)
    return Review(accepted=verdict.accepted, text=verdict.feedback.strip(), reasons=list(verdict.reasons),
                  trimmed_loop=trimmed)
