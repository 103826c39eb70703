"""Token counting: exact with tiktoken when its encoding is available, otherwise a flagged estimate.

tiktoken downloads encodings on first use; with no network that fails, so the estimate (about four
characters per token for English prose) is the fallback and every figure says which one it is.
"""

from __future__ import annotations

import functools
import math
import os
from dataclasses import dataclass

CHARS_PER_TOKEN = 4.0
DEFAULT_ENCODING = "o200k_base"


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


@functools.cache
def get_counter(encoding: str = DEFAULT_ENCODING) -> TokenCounter:
    if os.environ.get("COACH_TOKENIZER", "").lower() == "estimate":
        return TokenCounter(method=f"chars/{CHARS_PER_TOKEN:g}", estimated=True)
    try:
        import tiktoken

        enc = tiktoken.get_encoding(encoding)
        return TokenCounter(method=f"tiktoken:{encoding}", estimated=False, _encode=enc.encode)
    except Exception:
        return TokenCounter(method=f"chars/{CHARS_PER_TOKEN:g}", estimated=True)


def count_tokens(text: str) -> int:
    return get_counter().count(text)


def count_chat_tokens(messages: list[dict[str, str]]) -> int:
    """Tokens of a chat conversation, with the usual per-message and per-reply overhead."""
    counter = get_counter()
    return sum(3 + counter.count(m.get("content", "")) + counter.count(m.get("role", "")) for m in messages) + 3
