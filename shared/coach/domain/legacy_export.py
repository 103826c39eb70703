"""Legacy `{"prompt", "completion"}` export for completion-style trainers.

Older trainers learn where a prompt ends and where a completion stops from fixed strings: every prompt
ends with the same separator and every completion starts with a space and ends with the same end marker
(passed as the stop sequence when serving). Neither string may occur inside the text itself, or the model
learns a wrong boundary; the default separator is a delimiter line the prompt builder already rewrites
when a story imitates it, so a story cannot contain it.
"""

from __future__ import annotations

import json
from typing import Any

from pydantic import BaseModel, Field

from coach.domain.prompt import END_MARKER

DEFAULT_SEPARATOR = "\n\n=== FEEDBACK ===\n\n"
DEFAULT_END_MARKER = "\n" + END_MARKER


class LegacyExport(BaseModel):
    rows: list[dict[str, str]] = Field(default_factory=list)
    skipped: list[str] = Field(default_factory=list)  # "line N: why", one per example left out

    def jsonl(self) -> str:
        return "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in self.rows)


def to_prompt_completion(
    example: dict[str, Any], *, separator: str = DEFAULT_SEPARATOR, end_marker: str = DEFAULT_END_MARKER,
) -> dict[str, str]:
    """One chat example -> {"prompt", "completion"}; ValueError says why it cannot be converted."""
    if not separator or not end_marker:
        raise ValueError("the separator and the end marker must not be empty")
    messages = example.get("messages") or []
    context = [m["content"].strip() for m in messages if m.get("role") in ("system", "user")]
    answers = [m["content"].strip() for m in messages if m.get("role") == "assistant"]
    if not context or len(answers) != 1:
        raise ValueError("needs system/user messages and exactly one assistant message")
    prompt_body, completion_body = "\n\n".join(context), answers[0]
    if separator.strip() in prompt_body or separator.strip() in completion_body:
        raise ValueError(f"the text contains the separator {separator.strip()!r}")
    if end_marker.strip() in prompt_body or end_marker.strip() in completion_body:
        raise ValueError(f"the text contains the end marker {end_marker.strip()!r}")
    return {"prompt": prompt_body + separator, "completion": " " + completion_body + end_marker}


def export_legacy(
    examples: list[dict[str, Any]], *, separator: str = DEFAULT_SEPARATOR, end_marker: str = DEFAULT_END_MARKER,
) -> LegacyExport:
    """Convert a chat file's examples (in line order); examples that cannot be converted are listed."""
    result = LegacyExport()
    for number, example in enumerate(examples, start=1):
        try:
            result.rows.append(to_prompt_completion(example, separator=separator, end_marker=end_marker))
        except ValueError as err:
            result.skipped.append(f"line {number}: {err}")
    return result
