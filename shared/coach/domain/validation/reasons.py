"""Stable reason codes: what a rejection says, in manifests, metrics and `coach validate` output."""

from __future__ import annotations

EMPTY = "empty"
TOO_SHORT = "too_short"
TOO_LONG = "too_long"
TRUNCATED_OUTPUT = "truncated_output"
ERROR_TEXT = "error_text"
REFUSAL = "refusal"
LIST_FORMAT = "list_format"
ANNOTATION_LABELS = "annotation_labels"
LINE_BY_LINE_QUOTING = "line_by_line_quoting"
THIRD_PERSON = "third_person"
STORY_CONTINUATION = "story_continuation"
REPETITION_LOOP = "repetition_loop"
METHOD_EXPLANATION = "method_explanation"

# In the order a reader should see them: the failure that explains the most comes first.
REASONS: tuple[str, ...] = (
    EMPTY,
    ERROR_TEXT,
    REFUSAL,
    TRUNCATED_OUTPUT,
    STORY_CONTINUATION,
    LINE_BY_LINE_QUOTING,
    ANNOTATION_LABELS,
    LIST_FORMAT,
    THIRD_PERSON,
    REPETITION_LOOP,
    METHOD_EXPLANATION,
    TOO_SHORT,
    TOO_LONG,
)

# What each reason means, for people reading a report or a dataset card.
MEANINGS: dict[str, str] = {
    EMPTY: "nothing left to judge (no text, or only what the cleaners removed)",
    ERROR_TEXT: "an error message or API failure text instead of a critique",
    REFUSAL: "the model declined to critique the story",
    TRUNCATED_OUTPUT: "the generation stopped at its token limit, mid-thought",
    STORY_CONTINUATION: "continues or retells the story instead of critiquing it",
    LINE_BY_LINE_QUOTING: "walks through the story quoting it line by line",
    ANNOTATION_LABELS: "labelled sections (Strengths:, Weaknesses:) instead of prose to the writer",
    LIST_FORMAT: "a numbered or bulleted list instead of paragraphs",
    THIRD_PERSON: "talks about \u201cthe author\u201d instead of to the writer as \u201cyou\u201d",
    REPETITION_LOOP: "the same sentence or phrase repeated in a loop",
    METHOD_EXPLANATION: "explains how the feedback is structured instead of giving it",
    TOO_SHORT: "too short to be useful feedback",
    TOO_LONG: "far longer than an editor's critique",
}
