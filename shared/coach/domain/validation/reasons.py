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
