"""The validator: rules and cleaners that throw out what a human editor would throw out.

Import everything from here: `validate_feedback` judges one critique, `trim_repetition_loop` cuts a
looping ending, `build_report` summarises verdicts for a build manifest.
"""

from coach.domain.validation.cleaners import (
    CLEANERS,
    DROP_METHOD_PARAGRAPH,
    STRIP_DELIMITERS,
    STRIP_LABEL,
    drop_method_paragraph,
    strip_delimiters,
    strip_label,
)
from coach.domain.validation.config import DEFAULT_CONFIG, ValidatorConfig
from coach.domain.validation.engine import validate_feedback
from coach.domain.validation.loops import trim_repetition_loop
from coach.domain.validation.reasons import (
    ANNOTATION_LABELS,
    EMPTY,
    ERROR_TEXT,
    LINE_BY_LINE_QUOTING,
    LIST_FORMAT,
    METHOD_EXPLANATION,
    REASONS,
    REFUSAL,
    REPETITION_LOOP,
    STORY_CONTINUATION,
    THIRD_PERSON,
    TOO_LONG,
    TOO_SHORT,
    TRUNCATED_OUTPUT,
)
from coach.domain.validation.report import build_report

__all__ = [
    "ANNOTATION_LABELS",
    "CLEANERS",
    "DEFAULT_CONFIG",
    "DROP_METHOD_PARAGRAPH",
    "EMPTY",
    "ERROR_TEXT",
    "LINE_BY_LINE_QUOTING",
    "LIST_FORMAT",
    "METHOD_EXPLANATION",
    "REASONS",
    "REFUSAL",
    "REPETITION_LOOP",
    "STORY_CONTINUATION",
    "STRIP_DELIMITERS",
    "STRIP_LABEL",
    "THIRD_PERSON",
    "TOO_LONG",
    "TOO_SHORT",
    "TRUNCATED_OUTPUT",
    "ValidatorConfig",
    "build_report",
    "drop_method_paragraph",
    "strip_delimiters",
    "strip_label",
    "trim_repetition_loop",
    "validate_feedback",
]
