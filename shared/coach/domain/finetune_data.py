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
import re
import unicodedata
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from typing import Any, Literal

from pydantic import BaseModel, Field

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


def check_chat_jsonl(
    text: str,
    counter: TokenCounter,
    *,
    name: str = "train.jsonl",
    token_limit: int = DEFAULT_EXAMPLE_TOKEN_LIMIT,
    min_examples: int | None = MIN_EXAMPLES,
    over_limit: Literal["error", "warn"] = "error",
) -> CheckResult:
    """Check a chat fine-tuning JSONL file line by line (lines are numbered from 1).

    `min_examples=None` skips the size rule (a validation file may be small). Examples over the token
    limit are errors by default: OpenAI would truncate them, cutting off the assistant's critique, which
    is the part the model learns from.
    """
    result = CheckResult(name=name, token_limit=token_limit, token_method=counter.method,
                         estimated=counter.estimated)
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()  # the newline that ends the last line
    for number, raw in enumerate(lines, start=1):
        line_problems: list[LineProblem] = []
        if not raw.strip():
            result.problems.append(LineProblem(line=number, code="blank_line", message="the line is empty"))
            continue
        try:
            row = json.loads(raw)
        except json.JSONDecodeError as err:
            result.problems.append(LineProblem(line=number, code="invalid_json", message=err.msg))
            continue
        if not isinstance(row, dict):
            result.problems.append(LineProblem(line=number, code="not_an_object",
                                               message=f"the line is a JSON {type(row).__name__}"))
            continue
        unknown = sorted(set(row) - set(EXAMPLE_KEYS))
        if unknown:
            line_problems.append(LineProblem(line=number, code="unknown_example_key",
                                             message=f"unrecognised key(s) {', '.join(unknown)}"))
        messages = row.get("messages")
        if not isinstance(messages, list) or not messages:
            line_problems.append(LineProblem(line=number, code="missing_messages_list",
                                             message="no non-empty 'messages' list"))
            result.problems.extend(line_problems)
            continue
        for index, message in enumerate(messages):
            line_problems.extend(_message_problems(number, index, message))
        dicts = [m for m in messages if isinstance(m, dict)]
        roles = [m.get("role") for m in dicts]
        if "assistant" not in roles:
            line_problems.append(LineProblem(line=number, code="no_assistant_message",
                                             message="the example has no assistant message"))
        total, assistant = example_tokens(dicts, counter)
        if total > token_limit:
            text_ = f"{total} tokens, over the {token_limit}-token limit of one example"
            if over_limit == "error":
                line_problems.append(LineProblem(line=number, code="too_many_tokens", message=text_))
            else:
                result.warnings.append(f"line {number}: {text_}; it would be truncated in training")
        result.problems.extend(line_problems)
        result.examples.append(ExampleStats(
            line=number, messages=len(messages), total_tokens=total, assistant_tokens=assistant,
            has_system="system" in roles, has_user="user" in roles,
        ))
    count = len(result.examples)
    if min_examples is not None and count < min_examples:
        result.dataset_errors.append(
            f"too_few_examples ({count} examples; fine-tuning needs at least {min_examples})")
    elif min_examples is not None and count < RECOMMENDED_EXAMPLES:
        result.warnings.append(f"only {count} examples; fine-tuning usually gains from {RECOMMENDED_EXAMPLES}-100")
    missing_system = sum(1 for e in result.examples if not e.has_system)
    missing_user = sum(1 for e in result.examples if not e.has_user)
    if missing_system:
        result.warnings.append(f"{missing_system} examples have no system message")
    if missing_user:
        result.warnings.append(f"{missing_user} examples have no user message")
    if counter.estimated:
        result.warnings.append(f"token counts are estimates ({counter.method}): the tokenizer's encoding "
                               "could not be loaded")
    return result


def overlapping_examples(train_text: str, validation_text: str) -> list[int]:
    """Validation line numbers whose example also appears in the training file (they must not overlap)."""
    seen = {_example_fingerprint(line) for line in train_text.splitlines() if line.strip()}
    return [number for number, line in enumerate(validation_text.splitlines(), start=1)
            if line.strip() and _example_fingerprint(line) in seen]


def _example_fingerprint(line: str) -> str:
    try:
        canonical = json.dumps(json.loads(line), sort_keys=True, ensure_ascii=False)
    except json.JSONDecodeError:
        canonical = line.strip()
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


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
DEFAULT_SIMILARITY = 0.8
DEFAULT_SHINGLE_WORDS = 3
_WORD = re.compile(r"[a-z0-9]+(?:'[a-z0-9]+)*")


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


def _words(text: str) -> list[str]:
    folded = unicodedata.normalize("NFKC", text).lower().replace("\u2019", "'")
    return _WORD.findall(folded)


def story_fingerprint(text: str) -> str:
    """Equal for the same story posted twice (case, punctuation, quotes and spacing ignored)."""
    return hashlib.sha256(" ".join(_words(text)).encode("utf-8")).hexdigest()


def shingles(text: str, size: int = DEFAULT_SHINGLE_WORDS) -> frozenset[str]:
    words = _words(text)
    if len(words) <= size:
        return frozenset([" ".join(words)]) if words else frozenset()
    return frozenset(" ".join(words[i:i + size]) for i in range(len(words) - size + 1))


def jaccard(a: frozenset[str], b: frozenset[str]) -> float:
    if not a and not b:
        return 1.0
    return len(a & b) / len(a | b)


def find_duplicates(
    items: Iterable[DedupeItem],
    *,
    threshold: float = DEFAULT_SIMILARITY,
    shingle_words: int = DEFAULT_SHINGLE_WORDS,
) -> DedupeResult:
    """Drop the same story told twice, then critiques near-identical to a kept one (word-shingle Jaccard).

    Items are taken in story-id order and the first of a group is kept, so the result never depends on
    the order items arrive in. Candidate pairs come from prefix filtering (rarest shingles first): two sets
    with Jaccard >= t always share a shingle among the first |s| - ceil(t|s|) + 1 of each, so only those
    are indexed and compared, and the search stays far from quadratic on real critiques.
    """
    if not 0 < threshold <= 1:
        raise ValueError("the similarity threshold must be in (0, 1]")
    ordered = sorted(items, key=lambda i: i.story_id)
    removed: list[Duplicate] = []
    first_by_story: dict[str, str] = {}
    survivors: list[DedupeItem] = []
    for item in ordered:
        fingerprint = story_fingerprint(item.story)
        if fingerprint in first_by_story:
            removed.append(Duplicate(story_id=item.story_id, duplicate_of=first_by_story[fingerprint],
                                     reason="duplicate_story", similarity=1.0))
            continue
        first_by_story[fingerprint] = item.story_id
        survivors.append(item)

    sets = [shingles(item.critique, shingle_words) for item in survivors]
    frequency = Counter(token for s in sets for token in s)
    index: dict[str, list[int]] = defaultdict(list)
    kept: list[str] = []
    for position, (item, tokens) in enumerate(zip(survivors, sets, strict=True)):
        ranked = sorted(tokens, key=lambda t: (frequency[t], t))
        prefix = ranked[: len(ranked) - math.ceil(threshold * len(ranked)) + 1] if ranked else []
        candidates = sorted({other for token in prefix for other in index.get(token, ())})
        best: tuple[int, float] | None = None
        for other in candidates:
            small, large = sorted((len(tokens), len(sets[other])))
            if small < threshold * large:  # sizes alone rule the pair out
                continue
            similarity = jaccard(tokens, sets[other])
            if similarity >= threshold and (best is None or similarity > best[1]):
                best = (other, similarity)
        if best is not None:
            removed.append(Duplicate(story_id=item.story_id, duplicate_of=survivors[best[0]].story_id,
                                     reason="near_duplicate_critique", similarity=round(best[1], 4)))
            continue
        kept.append(item.story_id)
        for token in prefix:
            index[token].append(position)
    return DedupeResult(kept=kept, removed=sorted(removed, key=lambda d: d.story_id))


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
