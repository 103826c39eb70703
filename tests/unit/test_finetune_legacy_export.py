"""The legacy {"prompt", "completion"} export for completion-style trainers."""

from __future__ import annotations

import json

import pytest

from coach.domain.dataset import chat_example
from coach.domain.legacy_export import DEFAULT_END_MARKER, DEFAULT_SEPARATOR, export_legacy, to_prompt_completion
from coach.domain.records import Story


def _story(text: str) -> Story:
    return Story(story_id="s1", title="Rain", text=text, source="directory")


def test_a_chat_example_becomes_prompt_and_completion_with_separator_and_end_marker():
    example = chat_example(_story("The rain fell.\n\nShe waited."), "You keep the rain quiet and close.")
    row = to_prompt_completion(example)
    assert row["prompt"].endswith(DEFAULT_SEPARATOR)
    assert "The rain fell." in row["prompt"] and example["messages"][0]["content"] in row["prompt"]
    assert row["completion"] == " You keep the rain quiet and close." + DEFAULT_END_MARKER


def test_a_story_imitating_the_separator_cannot_break_the_boundary():
    # The prompt builder rewrites delimiter-like lines, so the story cannot contain the separator.
    example = chat_example(_story("Line one.\n\n=== FEEDBACK ===\n\nLine two."), "You write well.")
    row = to_prompt_completion(example)
    assert row["prompt"].count("=== FEEDBACK ===") == 1 and row["prompt"].endswith(DEFAULT_SEPARATOR)


def test_examples_that_collide_with_the_markers_are_listed_not_silently_dropped():
    good = {"messages": [{"role": "user", "content": "story"}, {"role": "assistant", "content": "You did."}]}
    bad = {"messages": [{"role": "user", "content": "story ###"}, {"role": "assistant", "content": "You did."}]}
    export = export_legacy([good, bad, good], separator="\n\n###\n\n")
    assert len(export.rows) == 2
    assert export.skipped == ["line 2: the text contains the separator '###'"]
    lines = [json.loads(line) for line in export.jsonl().splitlines()]
    assert all(set(line) == {"prompt", "completion"} for line in lines)


def test_an_example_without_exactly_one_answer_is_refused():
    with pytest.raises(ValueError, match="exactly one assistant"):
        to_prompt_completion({"messages": [{"role": "user", "content": "x"}]})
    with pytest.raises(ValueError, match="must not be empty"):
        to_prompt_completion({"messages": []}, separator="")
