"""Deterministic phrasing choices: the same story always gets the same words, different stories differ.

A choice is a hash of the story (and title) with the name of the slot being filled, so adding a slot
never changes the choices made for the others.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import TypeVar

T = TypeVar("T")
NUMBER_WORDS = ("no", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten")


class Chooser:
    """Deterministic choices keyed by the story text and a slot name (no randomness)."""

    def __init__(self, text: str, title: str) -> None:
        self._seed = hashlib.sha256(f"{title}\n{text}".encode("utf-8", "surrogatepass")).digest()

    def index(self, slot: str, size: int) -> int:
        digest = hashlib.sha256(self._seed + slot.encode()).digest()
        return int.from_bytes(digest[:8], "big") % size

    def pick(self, slot: str, options: Sequence[T]) -> T:
        return options[self.index(slot, len(options))]


def number_word(count: int, *, capital: bool = False) -> str:
    word = NUMBER_WORDS[count] if 0 <= count < len(NUMBER_WORDS) else str(count)
    return word[:1].upper() + word[1:] if capital else word


def per_1000(value: float) -> str:
    """A density rounded for prose: "about 26 per 1,000 words"."""
    return f"about {round(value)} per 1,000 words"
