"""Fine-tuning data: format checks before upload, token distributions, deduplication and training cost.

The format checks follow OpenAI's published data-preparation checks for chat fine-tuning, so a file
that would fail after minutes in the fine-tuning queue fails here first, naming its line numbers.
Everything here is pure: token counts come from an injected `TokenCounter` (tiktoken when its encoding
loads, otherwise a flagged estimate), and nothing touches S3 or the network.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Iterable, Iterator, Sequence
from typing import Any, Literal

from pydantic import BaseModel, Field

# The text-level dedupe helpers live with the MinHash index; re-exported here for existing callers.
from coach.domain.near_duplicates import (
    DEFAULT_SHINGLE_WORDS,
    DEFAULT_SIMILARITY,
    NearDuplicateIndex,
    critique_signature,
    jaccard,
    shingles,
    story_fingerprint,
)
from coach.domain.records import DatasetChecks, Distribution
from coach.domain.tokens import TokenCounter, chat_tokens, message_content

# -- limits and rules -------------------------------------------------------------------------------------

MIN_EXAMPLES = 10  # OpenAI refuses smaller training files
RECOMMENDED_EXAMPLES = 50  # below this, gains are usually small
DEFAULT_EXAMPLE_TOKEN_LIMIT = 65_536
# Per-example training context by base model (prefix match, longest first); override with a setting.
MODEL_TOKEN_LIMITS: dict[str, int] = {
    "gpt-4.1-nano": 65_536,
    "gpt-4.1-mini": 65_536,
    "gpt-4.1": 65_536,
    "gpt-4o-mini": 65_536,
    "gpt-4o": 65_536,
    "gpt-3.5-turbo": 16_385,
}
ROLES = ("system", "user", "assistant")
MESSAGE_KEYS = ("role", "content", "name", "weight")
EXAMPLE_KEYS = ("messages",)
MAX_LISTED_PROBLEMS = 20


def encoding_for_model(model: str) -> str:
    """The tokenizer of a base model: o200k_base for current models, cl100k_base for older chat models."""
    name = model.split(":")[1] if model.startswith("ft:") and ":" in model else model
    if name.startswith(("gpt-4o", "gpt-4.1", "gpt-4.5", "gpt-5", "o1", "o3", "o4", "chatgpt-4o")):
        return "o200k_base"
    if name.startswith(("gpt-4", "gpt-3.5", "babbage-002", "davinci-002")):
        return "cl100k_base"
    return "o200k_base"


def example_token_limit(model: str, override: int | None = None) -> int:
    if override:
        return override
    name = model.split(":")[1] if model.startswith("ft:") and ":" in model else model
    for prefix in sorted(MODEL_TOKEN_LIMITS, key=len, reverse=True):
        if name.startswith(prefix):
            return MODEL_TOKEN_LIMITS[prefix]
    return DEFAULT_EXAMPLE_TOKEN_LIMIT


# -- format checks ----------------------------------------------------------------------------------------

ProblemCode = Literal[
    "blank_line", "invalid_json", "not_an_object", "unknown_example_key", "missing_messages_list",
    "message_not_an_object", "missing_role", "unknown_role", "missing_content", "non_string_content",
    "unknown_message_key", "bad_weight", "no_assistant_message", "too_many_tokens",
]


class LineProblem(BaseModel):
    line: int
    code: ProblemCode
    message: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.code} ({self.message})"


class ExampleStats(BaseModel):
    line: int
    messages: int
    total_tokens: int
    assistant_tokens: int
    has_system: bool
    has_user: bool


class CheckResult(BaseModel):
    """The outcome of checking one JSONL file: problems by line, dataset-level errors and warnings."""

    name: str
    token_limit: int
    token_method: str
    estimated: bool
    problems: list[LineProblem] = Field(default_factory=list)
    dataset_errors: list[str] = Field(default_factory=list)
    warnings: list[str] = Field(default_factory=list)
    examples: list[ExampleStats] = Field(default_factory=list)  # the lines that parsed as examples

    @property
    def passed(self) -> bool:
        return not self.problems and not self.dataset_errors

    @property
    def bad_lines(self) -> list[int]:
        return sorted({p.line for p in self.problems})

    @property
    def example_tokens(self) -> list[int]:
        return [e.total_tokens for e in self.examples]

    def error_messages(self, limit: int = MAX_LISTED_PROBLEMS) -> list[str]:
        listed = [*self.dataset_errors, *(str(p) for p in self.problems)]
        if len(listed) > limit:
            listed = [*listed[:limit], f"and {len(listed) - limit} more problems"]
        return listed

    def one_line(self, limit: int = 5) -> str:
        """A single line for an error message: the file, the offending line numbers and the first problems."""
        parts = [*self.dataset_errors, *(str(p) for p in self.problems[:limit])]
        more = len(self.problems) - limit
        lines = self.bad_lines
        where = f"; offending lines: {_ranges(lines)}" if lines else ""
        return f"{self.name}: " + "; ".join(parts) + (f"; and {more} more" if more > 0 else "") + where

    def summary(self) -> DatasetChecks:
        stats = self.examples
        return DatasetChecks(
            examples=len(stats), passed=self.passed, token_method=self.token_method, estimated=self.estimated,
            token_limit=self.token_limit,
            over_token_limit=sum(1 for e in stats if e.total_tokens > self.token_limit),
            missing_system=sum(1 for e in stats if not e.has_system),
            missing_user=sum(1 for e in stats if not e.has_user),
            errors=self.error_messages(), warnings=list(self.warnings),
            messages=distribution([e.messages for e in stats]),
            total_tokens=distribution([e.total_tokens for e in stats]),
            assistant_tokens=distribution([e.assistant_tokens for e in stats]),
        )


def _ranges(numbers: Sequence[int], limit: int = 12) -> str:
    """'3, 7-9, 12' for a sorted list of line numbers (first `limit` runs, then '...')."""
    runs: list[str] = []
    start = prev = None
    for n in [*numbers, None]:
        if n is not None and prev is not None and n == prev + 1:
            prev = n
            continue
        if start is not None:
            runs.append(str(start) if start == prev else f"{start}-{prev}")
        start = prev = n
    return ", ".join(runs[:limit]) + (", ..." if len(runs) > limit else "")


def _message_problems(line: int, index: int, message: Any) -> list[LineProblem]:
    where = f"message {index + 1}"
    if not isinstance(message, dict):
        return [LineProblem(line=line, code="message_not_an_object", message=f"{where} is not an object")]
    found: list[LineProblem] = []
    unknown = sorted(set(message) - set(MESSAGE_KEYS))
    if unknown:
        found.append(LineProblem(line=line, code="unknown_message_key",
                                 message=f"{where} has unrecognised key(s) {', '.join(unknown)}"))
    role = message.get("role")
    if "role" not in message:
        found.append(LineProblem(line=line, code="missing_role", message=f"{where} has no role"))
    elif role not in ROLES:
        found.append(LineProblem(line=line, code="unknown_role",
                                 message=f"{where} has role {role!r}; expected one of {', '.join(ROLES)}"))
    content = message.get("content")
    if "content" not in message or content is None:
        found.append(LineProblem(line=line, code="missing_content", message=f"{where} has no content"))
    elif not isinstance(content, str):
        found.append(LineProblem(line=line, code="non_string_content",
                                 message=f"{where} content is {type(content).__name__}, not a string"))
    elif not content.strip():
        found.append(LineProblem(line=line, code="missing_content", message=f"{where} content is empty"))
    if "name" in message and not isinstance(message["name"], str):
        found.append(LineProblem(line=line, code="unknown_message_key", message=f"{where} name is not a string"))
    if "weight" in message:
        weight = message["weight"]
        if role != "assistant":
            found.append(LineProblem(line=line, code="bad_weight",
                                     message=f"{where}: weight is only allowed on assistant messages"))
        elif isinstance(weight, bool) or weight not in (0, 1):
            found.append(LineProblem(line=line, code="bad_weight", message=f"{where}: weight must be 0 or 1"))
    return found


def example_tokens(messages: list[dict[str, Any]], counter: TokenCounter) -> tuple[int, int]:
    """(total tokens with chat overhead, assistant content tokens) of one example."""
    assistant = sum(counter.count(message_content(m)) for m in messages if m.get("role") == "assistant")
    return chat_tokens(messages, counter), assistant


def jsonl_lines(text: str) -> Iterator[str]:
    """The lines of a JSONL text as `text.split("\\n")` numbers them, without the newline ending the last one.

    Only "\\n" ends a line: `str.splitlines` also splits at U+2028, U+0085 and the like, which
    `json.dumps(..., ensure_ascii=False)` leaves unescaped inside strings. Files are read the same way
    line by line in binary mode (`for raw in stream: checker.add(raw.decode("utf-8"))`).
    """
    start = 0
    while start < len(text):
        end = text.find("\n", start)
        if end < 0:
            yield text[start:]
            return
        yield text[start:end]
        start = end + 1


class ChatFileChecker:
    """Checks a chat fine-tuning JSONL file one line at a time, so a large file is never held whole.

    `add` each line in order (lines are numbered from 1; one trailing newline is ignored), then `finish`.
    Examples over the token limit are errors by default: OpenAI would truncate them, cutting off the
    assistant's critique, which is the part the model learns from.
    """

    def __init__(self, counter: TokenCounter, name: str = "train.jsonl",
                 token_limit: int = DEFAULT_EXAMPLE_TOKEN_LIMIT,
                 over_limit: Literal["error", "warn"] = "error") -> None:
        self.counter = counter
        self.token_limit = token_limit
        self.over_limit = over_limit
        self.lines = 0
        self._result = CheckResult(name=name, token_limit=token_limit, token_method=counter.method,
                                   estimated=counter.estimated)

    def add(self, raw_line: str) -> None:
        self.lines += 1
        number, result = self.lines, self._result
        raw = raw_line[:-1] if raw_line.endswith("\n") else raw_line
        line_problems: list[LineProblem] = []
        if not raw.strip():
            result.problems.append(LineProblem(line=number, code="blank_line", message="the line is empty"))
            return
        try:
            row = json.loads(raw)
        except json.JSONDecodeError as err:
            result.problems.append(LineProblem(line=number, code="invalid_json", message=err.msg))
            return
        if not isinstance(row, dict):
            result.problems.append(LineProblem(line=number, code="not_an_object",
                                               message=f"the line is a JSON {type(row).__name__}"))
            return
        unknown = sorted(set(row) - set(EXAMPLE_KEYS))
        if unknown:
            line_problems.append(LineProblem(line=number, code="unknown_example_key",
                                             message=f"unrecognised key(s) {', '.join(unknown)}"))
        messages = row.get("messages")
        if not isinstance(messages, list) or not messages:
            line_problems.append(LineProblem(line=number, code="missing_messages_list",
                                             message="no non-empty 'messages' list"))
            result.problems.extend(line_problems)
            return
        for index, message in enumerate(messages):
            line_problems.extend(_message_problems(number, index, message))
        dicts = [m for m in messages if isinstance(m, dict)]
        roles = [m.get("role") for m in dicts]
        if "assistant" not in roles:
            line_problems.append(LineProblem(line=number, code="no_assistant_message",
                                             message="the example has no assistant message"))
        total, assistant = example_tokens(dicts, self.counter)
        if total > self.token_limit:
            text_ = f"{total} tokens, over the {self.token_limit}-token limit of one example"
            if self.over_limit == "error":
                line_problems.append(LineProblem(line=number, code="too_many_tokens", message=text_))
            else:
                result.warnings.append(f"line {number}: {text_}; it would be truncated in training")
        result.problems.extend(line_problems)
        result.examples.append(ExampleStats(
            line=number, messages=len(messages), total_tokens=total, assistant_tokens=assistant,
            has_system="system" in roles, has_user="user" in roles,
        ))

    def finish(self, min_examples: int | None = MIN_EXAMPLES) -> CheckResult:
        """The result with the file-level rules applied. `min_examples=None` skips the size rule (a
        validation file may be small). Calling it again gives the same result."""
        result = self._result.model_copy(update={
            "problems": list(self._result.problems), "examples": list(self._result.examples),
            "dataset_errors": list(self._result.dataset_errors), "warnings": list(self._result.warnings),
        })
        count = len(result.examples)
        if min_examples is not None and count < min_examples:
            result.dataset_errors.append(
                f"too_few_examples ({count} examples; fine-tuning needs at least {min_examples})")
        elif min_examples is not None and count < RECOMMENDED_EXAMPLES:
            result.warnings.append(
                f"only {count} examples; fine-tuning usually gains from {RECOMMENDED_EXAMPLES}-100")
        missing_system = sum(1 for e in result.examples if not e.has_system)
        missing_user = sum(1 for e in result.examples if not e.has_user)
        if missing_system:
            result.warnings.append(f"{missing_system} examples have no system message")
        if missing_user:
            result.warnings.append(f"{missing_user} examples have no user message")
        if self.counter.estimated:
            result.warnings.append(f"token counts are estimates ({self.counter.method}): the tokenizer's "
                                   "encoding could not be loaded")
        return result


def check_chat_jsonl(
    text: str,
    counter: TokenCounter,
    *,
    name: str = "train.jsonl",
    token_limit: int = DEFAULT_EXAMPLE_TOKEN_LIMIT,
    min_examples: int | None = MIN_EXAMPLES,
    over_limit: Literal["error", "warn"] = "error",
) -> CheckResult:
    """Check a whole chat fine-tuning JSONL text (see `ChatFileChecker`, which does the work)."""
    checker = ChatFileChecker(counter, name, token_limit, over_limit)
    for line in jsonl_lines(text):
        checker.add(line)
    return checker.finish(min_examples)


class ExampleOverlap:
    """Validation lines whose example also appears in the training file (they must not overlap).

    `add_train` every training line first, then `check_validation` each validation line; `overlapping`
    lists the offending validation line numbers in the order checked. Each training example costs a
    16-byte digest, not its text.
    """

    def __init__(self) -> None:
        self._train: set[bytes] = set()
        self.overlapping: list[int] = []

    def add_train(self, line: str) -> None:
        if line.strip():
            self._train.add(_example_fingerprint(line))

    def check_validation(self, line_number: int, line: str) -> bool:
        """True (and the line is recorded) when the validation line repeats a training example."""
        if line.strip() and _example_fingerprint(line) in self._train:
            self.overlapping.append(line_number)
            return True
        return False


def overlapping_examples(train_text: str, validation_text: str) -> list[int]:
    """Validation line numbers whose example also appears in the training file (see `ExampleOverlap`)."""
    overlap = ExampleOverlap()
    for line in jsonl_lines(train_text):
        overlap.add_train(line)
    for number, line in enumerate(jsonl_lines(validation_text), start=1):
        overlap.check_validation(number, line)
    return overlap.overlapping


def _example_fingerprint(line: str) -> bytes:
    """Equal for the same example however its JSON is spaced or its keys ordered."""
    try:
        canonical = json.dumps(json.loads(line), sort_keys=True, ensure_ascii=False)
    except json.JSONDecodeError:
        canonical = line.strip()
    return hashlib.blake2b(canonical.encode("utf-8"), digest_size=16).digest()


# -- distributions ----------------------------------------------------------------------------------------

def quantile(sorted_values: Sequence[float], q: float) -> float:
    """Linear interpolation between closest ranks (numpy's default), on an already sorted list."""
    if not sorted_values:
        return 0.0
    position = (len(sorted_values) - 1) * q
    low, high = math.floor(position), math.ceil(position)
    return sorted_values[low] + (sorted_values[high] - sorted_values[low]) * (position - low)


def distribution(values: Iterable[float]) -> Distribution:
    ordered = sorted(values)
    if not ordered:
        return Distribution()
    return Distribution(
        min=ordered[0], median=round(quantile(ordered, 0.5), 2), p90=round(quantile(ordered, 0.9), 2),
        max=ordered[-1], mean=round(sum(ordered) / len(ordered), 2),
    )


# -- deduplication ----------------------------------------------------------------------------------------

DuplicateReason = Literal["duplicate_story", "near_duplicate_critique"]


class DedupeItem(BaseModel):
    story_id: str
    story: str
    critique: str


class Duplicate(BaseModel):
    story_id: str
    duplicate_of: str
    reason: DuplicateReason
    similarity: float


class DedupeResult(BaseModel):
    kept: list[str]
    removed: list[Duplicate]

    def count(self, reason: DuplicateReason) -> int:
        return sum(1 for d in self.removed if d.reason == reason)


class DuplicateFilter:
    """`find_duplicates` one item at a time, for callers that stream items in story-id order.

    `add` takes what a shard can compute ahead and store: `story_fingerprint(story)` and
    `critique_signature(critique)`. The first story of a fingerprint is kept; a later one is a
    `duplicate_story`; a critique nearly repeating a kept critique is a `near_duplicate_critique`.
    Memory per kept item: a 16-byte story digest and the index's entry (see `NearDuplicateIndex`).
    """

    def __init__(self, threshold: float = DEFAULT_SIMILARITY) -> None:
        self._index = NearDuplicateIndex(threshold)
        self._first_by_story: dict[bytes, str] = {}

    def add(self, story_id: str, story_fingerprint: str, signature: bytes) -> Duplicate | None:
        """The duplicate record when the item is dropped, else None (the item is kept)."""
        digest = bytes.fromhex(story_fingerprint)[:16]
        first = self._first_by_story.get(digest)
        if first is not None:
            return Duplicate(story_id=story_id, duplicate_of=first, reason="duplicate_story", similarity=1.0)
        self._first_by_story[digest] = story_id
        match = self._index.add(story_id, signature)
        if match is None:
            return None
        return Duplicate(story_id=story_id, duplicate_of=match[0], reason="near_duplicate_critique",
                         similarity=round(match[1], 4))


def confirm_near_duplicates(removed: dict[str, Duplicate], critique_of: dict[str, str], *,
                            threshold: float = DEFAULT_SIMILARITY,
                            shingle_words: int = DEFAULT_SHINGLE_WORDS) -> list[str]:
    """Check each MinHash candidate against its kept critique with the exact word-shingle Jaccard.

    The estimate's standard error is about 0.05 at 0.8, so without this check pairs near 0.7 would go as
    duplicates. `critique_of` holds the texts of the candidates and of the critiques they repeat (a bounded
    set: the duplicates and their originals, never the whole dataset). A candidate under the threshold is
    taken out of `removed` and returned (it is kept after all); a confirmed one gets its exact similarity.
    """
    reinstated = []
    for story_id, duplicate in list(removed.items()):
        if duplicate.reason != "near_duplicate_critique":
            continue
        similarity = jaccard(shingles(critique_of[story_id], shingle_words),
                             shingles(critique_of[duplicate.duplicate_of], shingle_words))
        if similarity < threshold:
            del removed[story_id]
            reinstated.append(story_id)
        else:
            duplicate.similarity = round(similarity, 4)
    return reinstated


def find_duplicates(
    items: Iterable[DedupeItem],
    *,
    threshold: float = DEFAULT_SIMILARITY,
    shingle_words: int = DEFAULT_SHINGLE_WORDS,
) -> DedupeResult:
    """Drop the same story told twice, then critiques near-identical to a kept one: candidates from MinHash LSH
    (see `coach.domain.near_duplicates`), each confirmed by its exact word-shingle Jaccard >= threshold.

    Items are taken in story-id order and the first of a group is kept, so the result never depends on
    the order items arrive in. A story dropped as a repeat is not indexed, and neither is a dropped
    critique: later critiques are compared with kept ones only.
    """
    dedupe = DuplicateFilter(threshold)
    ordered = sorted(items, key=lambda i: i.story_id)
    removed: dict[str, Duplicate] = {}
    for item in ordered:
        duplicate = dedupe.add(item.story_id, story_fingerprint(item.story),
                               critique_signature(item.critique, shingle_words=shingle_words))
        if duplicate is not None:
            removed[item.story_id] = duplicate
    confirm_near_duplicates(removed, {i.story_id: i.critique for i in ordered}, threshold=threshold,
                            shingle_words=shingle_words)
    return DedupeResult(kept=[i.story_id for i in ordered if i.story_id not in removed],
                        removed=[removed[i.story_id] for i in ordered if i.story_id in removed])


# -- epochs and cost --------------------------------------------------------------------------------------

def default_epochs(n_examples: int) -> int:
    """OpenAI's default epoch rule: 3, raised for small sets, lowered for very large ones."""
    if n_examples <= 0:
        return 0
    if n_examples * 3 < 100:
        return min(25, 100 // n_examples)
    if n_examples * 3 > 25_000:
        return max(1, 25_000 // n_examples)
    return 3


def billable_training_tokens(example_tokens: Iterable[int], epochs: int, token_limit: int) -> int:
    """Each example is capped at the model's per-example limit, then multiplied by the epochs."""
    return sum(min(tokens, token_limit) for tokens in example_tokens) * epochs


class TrainingCost(BaseModel):
    examples: int
    epochs: int
    epochs_rule: Literal["given", "default"]
    token_limit: int
    tokens_per_epoch: int  # capped at the limit per example
    billable_tokens: int
    price_per_million: float | None  # None: unknown, so no dollar figure
    usd: float | None


def estimate_training_cost(
    example_tokens: Sequence[int],
    *,
    epochs: int | None,
    token_limit: int,
    price_per_million: float | None,
) -> TrainingCost:
    chosen = epochs if epochs else default_epochs(len(example_tokens))
    per_epoch = billable_training_tokens(example_tokens, 1, token_limit)
    billable = per_epoch * chosen
    return TrainingCost(
        examples=len(example_tokens), epochs=chosen, epochs_rule="given" if epochs else "default",
        token_limit=token_limit, tokens_per_epoch=per_epoch, billable_tokens=billable,
        price_per_million=price_per_million, usd=training_cost_usd(billable, price_per_million),
    )


def training_cost_usd(trained_tokens: int, price_per_million: float | None) -> float | None:
    """What `trained_tokens` (training tokens x epochs) cost at a training price; None when the price is
    unknown. The price itself comes from the price table (`PriceTable.training_price`)."""
    if price_per_million is None:
        return None
    return round(trained_tokens / 1_000_000 * price_per_million, 6)


def describe_cost(
    *, billable_tokens: int, epochs: int | None, epochs_rule: str | None, usd: float | None,
    price_per_million: float | None, estimated: bool = False,
) -> str:
    """One console line: 'fine-tune estimate: 123,456 billable tokens (41,152 x 3 epochs, default rule) ...'."""
    epochs = epochs or 0
    per_epoch = billable_tokens // epochs if epochs else 0
    rule = "the backend's default rule" if epochs_rule == "default" else "as given"
    approx = "~" if estimated else ""
    money = (f"${usd:.4f} at ${price_per_million:g}/1M training tokens" if usd is not None and
             price_per_million is not None else "price unknown for this base model")
    return (f"fine-tune estimate: {approx}{billable_tokens:,} billable tokens ({approx}{per_epoch:,} x {epochs} "
            f"epochs, {rule}) = {money}" + (" (token counts estimated)" if estimated else ""))
