"""Token counting: exact with tiktoken when its encoding is available, otherwise a flagged estimate.

tiktoken downloads encodings on first use; with no network that fails, so the estimate (about four
characters per token for English prose) is the fallback and every figure says which one it is.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from coach.once import built_once

CHARS_PER_TOKEN = 4.0
DEFAULT_ENCODING = "o200k_base"
# OpenAI's chat overhead: every message's framing, a name when a message has one, and the reply's priming.
TOKENS_PER_MESSAGE = 3
TOKENS_PER_NAME = 1
TOKENS_PER_REPLY = 3


@dataclass(frozen=True)
class TokenCounter:
    method: str  # "tiktoken:o200k_base" or "chars/4"
    estimated: bool
    _encode: object | None = None

    def count(self, text: str) -> int:
        if self._encode is not None:
            return len(self._encode(text, disallowed_special=()))  # type: ignore[operator]
        return estimate_tokens(text)


def estimate_tokens(text: str) -> int:
    return math.ceil(len(text) / CHARS_PER_TOKEN) if text else 0


@built_once
def get_counter(encoding: str = DEFAULT_ENCODING, *, estimate: bool | None = None) -> TokenCounter:
    """The counter for `encoding`, made once per process: tiktoken, or the estimate when `estimate` is True
    or the encoding cannot load. None leaves the choice to the deployment (COACH_TOKENIZER)."""
    if estimate is None:
        from coach.settings import estimate_tokens_only  # the environment is read there, not here

        estimate = estimate_tokens_only()
    if estimate:
        return TokenCounter(method=f"chars/{CHARS_PER_TOKEN:g}", estimated=True)
    try:
        import tiktoken

        enc = tiktoken.get_encoding(encoding)
        return TokenCounter(method=f"tiktoken:{encoding}", estimated=False, _encode=enc.encode)
    except Exception:
        return TokenCounter(method=f"chars/{CHARS_PER_TOKEN:g}", estimated=True)


def count_tokens(text: str) -> int:
    return get_counter().count(text)


def message_content(message: Mapping[str, Any]) -> str:
    """A message's text; anything but a string (a missing or malformed content) counts as empty."""
    content = message.get("content")
    return content if isinstance(content, str) else ""


def chat_tokens(messages: Iterable[Mapping[str, Any]], counter: TokenCounter) -> int:
    """Tokens of a chat conversation with `counter`, with the per-message, per-name and per-reply overhead."""
    total = TOKENS_PER_REPLY
    for message in messages:
        total += TOKENS_PER_MESSAGE + counter.count(str(message.get("role", ""))) + counter.count(
            message_content(message))
        if isinstance(message.get("name"), str):
            total += TOKENS_PER_NAME + counter.count(message["name"])
    return total


def count_chat_tokens(messages: Iterable[Mapping[str, Any]]) -> int:
    """Tokens of a chat conversation with the process's counter."""
    return chat_tokens(messages, get_counter())
