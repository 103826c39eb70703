"""The line-by-line checkers give exactly what the whole-text functions give (they are their one implementation)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from coach.domain.bedrock_models import BaseModelSpec
from coach.domain.conversation_format import (
    ConversationFileChecker,
    chat_jsonl_to_conversation,
    chat_line_to_conversation,
    check_conversation_jsonl,
)
from coach.domain.finetune_data import (
    ChatFileChecker,
    ExampleOverlap,
    check_chat_jsonl,
    jsonl_lines,
    overlapping_examples,
)
from coach.domain.tokens import TokenCounter
from tests.support.chat_rows import ESTIMATE, WORDS, jsonl

SPEC = BaseModelSpec(model_id="test-model", family="Test", regions=("us-east-1",), on_demand=True,
                     min_records=3, max_validation_records=2, max_record_tokens=40)


def _example(n: int, *, system: bool = True, answer: str | None = None) -> dict:
    messages = [{"role": "system", "content": "You are an editor."}] if system else []
    messages += [{"role": "user", "content": f"Story number {n} about a lighthouse."},
                 {"role": "assistant", "content": answer or f"Scene {n} moves well; the ending lands."}]
    return {"messages": messages}


CLEAN = jsonl([_example(n) for n in range(12)])
MIXED = jsonl([
    _example(0), "", "{not json", "[1, 2]", json.dumps({"messages": []}), _example(1, system=False),
    json.dumps({"messages": [{"role": "user", "content": "only a user"}]}),
    _example(2, answer="word " * 300), json.dumps({**_example(3), "extra": 1}), "   ", _example(4),
])
CHAT_TEXTS = {
    "clean": CLEAN,
    "mixed": MIXED,
    "no final newline": MIXED.rstrip("\n"),
    "blank lines at the end": CLEAN + "\n\n",
    "empty": "",
    "separators inside strings": jsonl([_example(n, answer=f"Line\u2028break\u0085 {n}.") for n in range(3)]),
}


def _stream_chat(text: str, counter: TokenCounter, **options) -> ChatFileChecker:
    checker = ChatFileChecker(counter, "train.jsonl", options.get("token_limit", 200),
                              options.get("over_limit", "error"))
    for line in text.encode("utf-8").splitlines(keepends=True):  # a file read in binary mode, line by line
        checker.add(line.decode("utf-8"))
    return checker


@pytest.mark.parametrize("name", list(CHAT_TEXTS))
@pytest.mark.parametrize("over_limit", ["error", "warn"])
@pytest.mark.parametrize("min_examples", [10, None])
def test_the_chat_checker_matches_the_whole_text_check(name, over_limit, min_examples):
    text = CHAT_TEXTS[name]
    for counter in (ESTIMATE, WORDS):
        whole = check_chat_jsonl(text, counter, name="train.jsonl", token_limit=200, min_examples=min_examples,
                                 over_limit=over_limit)
        streamed = _stream_chat(text, counter, over_limit=over_limit).finish(min_examples)
        assert streamed == whole


def test_the_mixed_file_has_the_problems_it_should():
    result = check_chat_jsonl(MIXED, WORDS, token_limit=200, min_examples=None)
    assert [(p.line, p.code) for p in result.problems] == [
        (2, "blank_line"), (3, "invalid_json"), (4, "not_an_object"), (5, "missing_messages_list"),
        (7, "no_assistant_message"), (8, "too_many_tokens"), (9, "unknown_example_key"), (10, "blank_line")]


def test_finishing_twice_gives_the_same_result():
    checker = _stream_chat(MIXED, ESTIMATE)
    assert checker.finish(10) == checker.finish(10)
    assert checker.finish(None) == check_chat_jsonl(MIXED, ESTIMATE, token_limit=200, min_examples=None)


def test_lines_are_split_at_newlines_only():
    text = "a\u2028b\nc\r\n\n"
    assert list(jsonl_lines(text)) == text.split("\n")[:-1] == ["a\u2028b", "c\r", ""]
    assert list(jsonl_lines("x")) == ["x"] and list(jsonl_lines("")) == [] and list(jsonl_lines("\n")) == [""]


def test_the_overlap_checker_matches_the_whole_text_function():
    train = jsonl([_example(n) for n in range(6)] + ["{broken", ""])
    validation_rows = [_example(9), json.dumps(_example(3), indent=None, separators=(",", ":")), "",
                       "{broken", _example(5, answer="A new\u2028critique.")]
    validation = jsonl(validation_rows)
    overlap = ExampleOverlap()
    for line in train.splitlines(keepends=False):
        overlap.add_train(line)
    checked = [overlap.check_validation(n, line) for n, line in enumerate(jsonl_lines(validation), start=1)]
    assert overlap.overlapping == overlapping_examples(train, validation) == [2, 4]
    assert checked == [False, True, False, True, False]


def test_overlap_line_numbers_agree_with_the_format_check():
    # A line separator inside a critique does not end a line, for the overlap as for the format check.
    shared = _example(1, answer="First\u2028second.")
    train = jsonl([_example(0), shared])
    validation = jsonl([_example(7, answer="Other\u2028one."), shared])
    assert overlapping_examples(train, validation) == [2]
    assert [e.line for e in check_chat_jsonl(validation, ESTIMATE, min_examples=None).examples] == [1, 2]


def test_conversion_line_by_line_matches_the_whole_file():
    text = jsonl([_example(0), "", _example(1, system=False), _example(2, answer="Keep\u2028this.")])
    lines = [chat_line_to_conversation(line) for line in jsonl_lines(text)]
    assert lines[1] == ""
    assert "".join(line + "\n" for line in lines if line) == chat_jsonl_to_conversation(text)
    records = [json.loads(line) for line in jsonl_lines(chat_jsonl_to_conversation(text))]
    assert records[0]["system"] == [{"text": "You are an editor."}] and records[1]["system"] == []
    assert records[2]["messages"][1]["content"] == [{"text": "Keep\u2028this."}]


CONVERSATION_TEXTS = {
    "clean": chat_jsonl_to_conversation(jsonl([_example(n) for n in range(4)])),
    "mixed": chat_jsonl_to_conversation(jsonl([_example(0), _example(1, answer="word " * 60)])) + jsonl([
        "", "{nope", "[]", {"schemaVersion": "other", "messages": []},
        {"schemaVersion": "bedrock-conversation-2024", "system": "bad", "messages": [
            {"role": "assistant", "content": [{"text": "hi"}]}, {"role": "user", "content": [{"text": "x"}]}]},
        {"schemaVersion": "bedrock-conversation-2024", "messages": [
            {"role": "user", "content": [{"text": "Bot: hello"}]}, {"role": "assistant", "content": []}]},
    ]),
    "no final newline": chat_jsonl_to_conversation(jsonl([_example(0)])).rstrip("\n"),
    "empty": "",
}


@pytest.mark.parametrize("name", list(CONVERSATION_TEXTS))
@pytest.mark.parametrize("validation", [False, True])
def test_the_conversation_checker_matches_the_whole_text_check(name, validation, tmp_path: Path):
    text = CONVERSATION_TEXTS[name]
    path = tmp_path / "train.bedrock.jsonl"
    path.write_text(text, encoding="utf-8")
    for counter in (ESTIMATE, WORDS):
        whole = check_conversation_jsonl(text, SPEC, counter, name="f.jsonl", validation=validation)
        checker = ConversationFileChecker(SPEC, counter, name="f.jsonl", validation=validation)
        with path.open("rb") as stream:
            for raw in stream:
                checker.add(raw.decode("utf-8"))
        assert checker.finish() == whole
        assert checker.finish() == whole


def test_the_mixed_conversation_file_has_the_problems_it_should():
    result = check_conversation_jsonl(CONVERSATION_TEXTS["mixed"], SPEC, WORDS, validation=True)
    codes: dict[int, set[str]] = {}
    for problem in result.problems:
        codes.setdefault(problem.line, set()).add(problem.code)
    assert codes == {2: {"too_many_tokens"}, 3: {"invalid_json"}, 4: {"invalid_json"}, 5: {"not_an_object"},
                     6: {"unknown_example_key", "missing_messages_list"},
                     7: {"non_string_content", "unknown_role", "no_assistant_message"},
                     8: {"missing_content", "non_string_content"}}
    assert result.dataset_errors == ["too_many_examples (5 validation records; Test accepts at most 2)"]
