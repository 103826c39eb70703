"""Amazon Bedrock's conversation format: Converse requests and `bedrock-conversation-2024` training records.

One function (`converse_parts`) turns the product's chat messages into Bedrock's system blocks and
content-block messages; the Converse call of the generator and the API, and every training record the
assembler writes, go through it, so a fine-tuned Nova model is served exactly the layout it learned.
The checks below refuse, with line numbers, a file a customization job would reject after minutes in
its queue: wrong schema, roles out of order, empty text, too many or too few records, a record over
the base model's token limit.
"""

from __future__ import annotations

import json
from typing import Any

from coach.domain.bedrock_models import CONVERSATION_SCHEMA, BaseModelSpec
from coach.domain.finetune_data import CheckResult, ExampleStats, LineProblem, jsonl_lines
from coach.domain.tokens import TokenCounter

# Nova treats these as reserved words in a prompt: a record that contains one fails the job.
RESERVED_WORDS = ("User:", "Bot:", "Assistant:", "System:", "<image>", "<video>", "[EOS]")


def converse_parts(messages: list[dict[str, str]]) -> tuple[list[dict[str, str]], list[dict[str, Any]]]:
    """(system blocks, messages with content blocks) from OpenAI-style chat messages, order kept."""
    system = [{"text": m["content"]} for m in messages if m.get("role") == "system" and m.get("content")]
    turns = [{"role": m["role"], "content": [{"text": m.get("content") or ""}]}
             for m in messages if m.get("role") in ("user", "assistant")]
    return system, turns


def conversation_record(messages: list[dict[str, str]]) -> dict[str, Any]:
    """One `bedrock-conversation-2024` training record from a chat example (system, user, assistant)."""
    system, turns = converse_parts(messages)
    return {"schemaVersion": CONVERSATION_SCHEMA, "system": system, "messages": turns}


def chat_line_to_conversation(line: str) -> str:
    """One chat example line ({"messages": [...]}) as a conversation-format line, without its newline;
    "" for a blank line (nothing to write). The line must be an example the chat checks passed."""
    if not line.strip():
        return ""
    return json.dumps(conversation_record(json.loads(line)["messages"]), ensure_ascii=False)


def chat_jsonl_to_conversation(text: str) -> str:
    """A chat fine-tuning JSONL file in the conversation format, line for line (blank lines dropped)."""
    converted = (chat_line_to_conversation(line) for line in jsonl_lines(text))
    return "".join(line + "\n" for line in converted if line)


def _text_of(blocks: Any) -> str | None:
    if not isinstance(blocks, list) or not blocks:
        return None
    texts = [b.get("text") for b in blocks if isinstance(b, dict)]
    if len(texts) != len(blocks) or not all(isinstance(t, str) for t in texts):
        return None
    return "".join(texts)  # type: ignore[arg-type]


def _record_problems(number: int, row: Any) -> tuple[list[LineProblem], list[str]]:
    """Problems of one parsed line, and the texts it holds (system first) for counting tokens."""
    if not isinstance(row, dict):
        return [LineProblem(line=number, code="not_an_object", message="the line is not a JSON object")], []
    problems: list[LineProblem] = []
    if row.get("schemaVersion") != CONVERSATION_SCHEMA:
        problems.append(LineProblem(line=number, code="unknown_example_key",
                                    message=f"schemaVersion is not {CONVERSATION_SCHEMA}"))
    texts: list[str] = []
    if "system" in row:
        system = _text_of(row["system"])
        if system is None:
            problems.append(LineProblem(line=number, code="non_string_content",
                                        message="system must be a list of {\"text\": ...} blocks"))
        else:
            texts.append(system)
    messages = row.get("messages")
    if not isinstance(messages, list) or len(messages) < 2:
        problems.append(LineProblem(line=number, code="missing_messages_list",
                                    message="messages must hold a user turn and an assistant turn"))
        return problems, texts
    expected = "user"
    for index, message in enumerate(messages):
        role = message.get("role") if isinstance(message, dict) else None
        if role != expected:
            problems.append(LineProblem(line=number, code="unknown_role",
                                        message=f"message {index} should be {expected}, not {role!r}"))
            break
        text = _text_of(message.get("content"))
        if text is None or not text.strip():
            problems.append(LineProblem(line=number, code="missing_content",
                                        message=f"message {index} has no text content"))
        else:
            texts.append(text)
        expected = "assistant" if expected == "user" else "user"
    if isinstance(messages[-1], dict) and messages[-1].get("role") != "assistant":
        problems.append(LineProblem(line=number, code="no_assistant_message",
                                    message="the last message must be the assistant's"))
    reserved = sorted({w for w in RESERVED_WORDS for t in texts if w in t})
    if reserved:
        problems.append(LineProblem(line=number, code="non_string_content",
                                    message=f"contains Nova's reserved keyword(s) {', '.join(reserved)}"))
    return problems, texts


class ConversationFileChecker:
    """Checks a conversation-format file against a base model's limits one line at a time (lines numbered
    from 1; one trailing newline is ignored), so a large file is never held whole. `add` each line, then
    `finish`; a validation file has its own record limit and no minimum."""

    def __init__(self, spec: BaseModelSpec, counter: TokenCounter, *, name: str = "train.bedrock.jsonl",
                 validation: bool = False) -> None:
        self.spec = spec
        self.counter = counter
        self.validation = validation
        self.lines = 0
        self._result = CheckResult(name=name, token_limit=spec.max_record_tokens, token_method=counter.method,
                                   estimated=counter.estimated)

    def add(self, raw_line: str) -> None:
        self.lines += 1
        number, result, spec, counter = self.lines, self._result, self.spec, self.counter
        raw = raw_line[:-1] if raw_line.endswith("\n") else raw_line
        try:
            row = json.loads(raw)
        except json.JSONDecodeError as err:
            result.problems.append(LineProblem(line=number, code="invalid_json", message=err.msg))
            return
        problems, texts = _record_problems(number, row)
        tokens = sum(counter.count(t) for t in texts)
        if tokens > spec.max_record_tokens:
            problems.append(LineProblem(line=number, code="too_many_tokens", message=(
                f"{tokens} tokens, over {spec.family}'s limit of {spec.max_record_tokens} per record")))
        result.problems.extend(problems)
        if isinstance(row, dict) and isinstance(row.get("messages"), list):
            result.examples.append(ExampleStats(
                line=number, messages=len(row["messages"]) + (1 if texts and "system" in row else 0),
                total_tokens=tokens, assistant_tokens=counter.count(texts[-1]) if texts else 0,
                has_system="system" in row, has_user=True))

    def finish(self) -> CheckResult:
        """The result with the file-level rules applied; calling it again gives the same result."""
        spec = self.spec
        result = self._result.model_copy(update={
            "problems": list(self._result.problems), "examples": list(self._result.examples),
            "dataset_errors": list(self._result.dataset_errors), "warnings": list(self._result.warnings),
        })
        count = len(result.examples)
        if self.validation:
            if count > spec.max_validation_records:
                result.dataset_errors.append(f"too_many_examples ({count} validation records; {spec.family} "
                                             f"accepts at most {spec.max_validation_records})")
        elif count < spec.min_records:
            result.dataset_errors.append(f"too_few_examples ({count} records; {spec.family} needs at least "
                                         f"{spec.min_records})")
        elif count > spec.max_train_records:
            result.dataset_errors.append(f"too_many_examples ({count} records; {spec.family} accepts at most "
                                         f"{spec.max_train_records})")
        if self.counter.estimated:
            result.warnings.append(
                f"token counts are estimates ({self.counter.method}); Nova's tokenizer is not public")
        return result


def check_conversation_jsonl(text: str, spec: BaseModelSpec, counter: TokenCounter, *,
                             name: str = "train.bedrock.jsonl", validation: bool = False) -> CheckResult:
    """Check a whole conversation-format text (see `ConversationFileChecker`, which does the work)."""
    checker = ConversationFileChecker(spec, counter, name=name, validation=validation)
    for line in jsonl_lines(text):
        checker.add(line)
    return checker.finish()
