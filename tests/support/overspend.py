"""A build that runs out of money part-way: the test server answers critiques longer than a build's estimate
assumes, at $1 a token, so a budget that fits on paper is spent before every story is critiqued."""

from __future__ import annotations

import json
import random
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from coach import runtime
from coach.domain.tokens import get_counter
from tests.fakes.openai_server import FakeOpenAIServer

MODEL = "house-model"
WORDS = ("harbour", "lantern", "kettle", "orchard", "ferry", "letter", "winter", "violin", "ledger", "candle",
         "station", "mirror", "quietly", "waited", "remembered", "laughed", "she", "he", "the", "a")
LONG_CRITIQUE = ("You keep the opening line short and it works: the image lands before the explanation. "
                 * 40)[:3000]  # about 750 tokens as the server counts them, more than the estimate assumes


def write_stories(path: Path, count: int, *, seed: int, prefix: str) -> None:
    """`count` stories of 90 words drawn from WORDS, one JSON object a line."""
    rng = random.Random(seed)
    path.write_text("".join(json.dumps({
        "id": f"{prefix}-{n}", "title": f"Piece {n}",
        "text": " ".join(rng.choice(WORDS) for _ in range(90)).capitalize() + "."}) + "\n" for n in range(count)))


@contextmanager
def overspending_server(monkeypatch: pytest.MonkeyPatch, key: str, **options: Any) -> Iterator[FakeOpenAIServer]:
    """The test server answering LONG_CRITIQUE, with MODEL priced and the runtime pointed at it."""
    monkeypatch.setenv("COACH_PRICE_TABLE", json.dumps({MODEL: {"input": 1.0, "output": 1.0}}))
    monkeypatch.setenv("COACH_TOKENIZER", "estimate")  # count as the test server does (chars/4)
    get_counter.cache_clear()
    with FakeOpenAIServer(api_key=key, reply=LONG_CRITIQUE, **options) as fake:
        monkeypatch.setenv("OPENAI_API_KEY", key)
        monkeypatch.setenv("OPENAI_BASE_URL", fake.base_url)
        runtime.reset()
        yield fake
    runtime.reset()
    get_counter.cache_clear()
