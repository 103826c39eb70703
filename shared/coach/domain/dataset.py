"""Dataset assembly: chat fine-tuning examples and a deterministic train/validation split."""

from __future__ import annotations

import hashlib

# The epoch rule and billing moved to finetune_data; re-exported for existing callers.
from coach.domain.finetune_data import billable_training_tokens, default_epochs
from coach.domain.prompt import DEFAULT_MAX_STORY_TOKENS, build_messages
from coach.domain.records import Story

__all__ = ["billable_training_tokens", "chat_example", "default_epochs", "split_bucket", "split_ids"]


def chat_example(story: Story, feedback: str, *, max_story_tokens: int = DEFAULT_MAX_STORY_TOKENS) -> dict:
    """System and user messages are exactly what the API sends a fine-tuned model (compact layout)."""
    prompt = build_messages(story.text, story.title, layout="compact", max_story_tokens=max_story_tokens)
    return {"messages": [*prompt.messages, {"role": "assistant", "content": feedback.strip()}]}


def split_bucket(story_id: str, seed: int = 0) -> float:
    """A stable number in [0, 1) for a story: the split never depends on order or on other stories."""
    digest = hashlib.sha256(f"{seed}:{story_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def split_ids(story_ids: list[str], fraction: float, seed: int = 0, *, min_train: int = 0) -> tuple[
        list[str], list[str]]:
    """(train, validation) ids. With 10+ stories and a non-zero fraction, validation is never empty.

    `min_train` keeps at least that many ids in training when there are enough (OpenAI refuses a training
    file under 10 examples): validation ids go back to training, highest bucket first, until it holds.
    """
    ordered = sorted(set(story_ids))
    validation = [s for s in ordered if split_bucket(s, seed) < fraction]
    if fraction > 0 and not validation and len(ordered) >= 10:
        validation = [min(ordered, key=lambda s: split_bucket(s, seed))]
    while validation and len(ordered) - len(validation) < min(min_train, len(ordered)):
        validation.remove(max(validation, key=lambda s: split_bucket(s, seed)))
    chosen = set(validation)
    return [s for s in ordered if s not in chosen], validation
