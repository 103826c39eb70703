"""Token counters and JSONL text for the tests of the fine-tuning data checks."""

from __future__ import annotations

import json

from coach.domain.tokens import TokenCounter

# Four characters per token, rounded up: the tests' expected counts are computed by hand from it.
ESTIMATE = TokenCounter(method="chars/4", estimated=True)
# An exact counter (not an estimate) that is easy to count by hand: one token per word.
WORDS = TokenCounter(method="words", estimated=False, _encode=lambda text, **_: text.split())


def jsonl(rows: list) -> str:
    """Rows as JSONL text: a dict is dumped with its non-ASCII text as written, a string is the line itself."""
    return "".join((row if isinstance(row, str) else json.dumps(row, ensure_ascii=False)) + "\n" for row in rows)
