"""Text primitives the validator's rules share: words, sentences, paragraphs and quotations, with offsets.

Everything keeps character offsets into the text it was given, so a rule's evidence points at the exact
span that made it fire. Regexes are compiled once; the story's n-gram set is cached per story text.
"""

from __future__ import annotations

import functools
import re
from typing import NamedTuple

from coach.domain.plain_text import normalise_whitespace as normalise_whitespace  # re-exported

WORD_RE = re.compile(r"[^\W_]+(?:['’][^\W_]+)*")
# Quotations: straight and curly double quotes, curly single quotes, and straight single quotes that
# open after a non-word character (so the apostrophe in "don't" never opens one).
# The leading lookahead lets the engine skip to a quotation mark instead of trying every alternative
# at every character (four times faster on a typical critique).
QUOTE_RE = re.compile(
    r"(?=[\"“‘'])(?:\"[^\"\n]{1,600}\"|“[^”\n]{1,600}”|(?<!\w)‘(?:[^’\n]|’(?=\w)){1,300}’(?!\w)"
    r"|(?<![\w'])'(?=\S)(?:[^'\n]|'(?=\w)){1,300}(?<=\S)'(?!\w))"
)
# A sentence ends at terminal punctuation (with any closing quotes or brackets) before a space, or a line end.
_SENTENCE_END_RE = re.compile(r"[.!?…]+[\"'”’)\]*_]*(?=\s|\Z)|\n")
_SPACE_RE = re.compile(r"\s*")
PARAGRAPH_SPLIT_RE = re.compile(r"\n[ \t]*\n\s*")
SECOND_PERSON_RE = re.compile(r"\b(?:you|your|yours|yourself|yourselves)(?:['’](?:re|ve|ll|d))?\b", re.I)


class Span(NamedTuple):
    """A piece of text and where it sits. A tuple, because validation makes many of them."""

    start: int
    end: int
    text: str


def words(text: str) -> list[Span]:
    return [Span(m.start(), m.end(), m.group()) for m in WORD_RE.finditer(text)]


def fold(text: str) -> str:
    """Lowercase with curly apostrophes straightened; the same length, so offsets still line up."""
    return text.lower().replace("’", "'")


def word_keys(text: str) -> list[str]:
    """Lowercased words with curly apostrophes straightened: the unit of every overlap comparison."""
    return WORD_RE.findall(fold(text))


def count_words(text: str) -> int:
    return len(WORD_RE.findall(text))


def sentences(text: str) -> list[Span]:
    spans: list[Span] = []
    start = 0
    for m in _SENTENCE_END_RE.finditer(text):
        end = m.start() if m.group() == "\n" else m.end()
        lead = _SPACE_RE.match(text, start).end()  # type: ignore[union-attr]
        if lead < end:
            spans.append(Span(lead, end, text[lead:end]))
        start = m.end()
    lead = _SPACE_RE.match(text, start).end()  # type: ignore[union-attr]
    if lead < len(text):
        spans.append(Span(lead, len(text), text[lead:]))
    return spans


def paragraphs(text: str) -> list[Span]:
    spans: list[Span] = []
    pos = 0
    for m in PARAGRAPH_SPLIT_RE.finditer(text):
        if text[pos:m.start()].strip():
            spans.append(Span(pos, m.start(), text[pos:m.start()]))
        pos = m.end()
    if text[pos:].strip():
        spans.append(Span(pos, len(text), text[pos:]))
    return spans


def quotations(text: str) -> list[Span]:
    return [Span(m.start(), m.end(), m.group()) for m in QUOTE_RE.finditer(text)]


def mask_spans(text: str, spans: list[Span]) -> str:
    """The text with each span's inside blanked out (same length, so offsets still line up)."""
    if not spans:
        return text
    parts: list[str] = []
    pos = 0
    for span in spans:
        parts.append(text[pos:span.start + 1])
        parts.append(" " * max(span.end - span.start - 2, 0))
        pos = span.end - 1
    parts.append(text[pos:])
    return "".join(parts)


@functools.lru_cache(maxsize=512)
def story_ngrams(story: str, n: int) -> frozenset[tuple[str, ...]]:
    """Every word n-gram of a story, as tuples; cached because one story is judged against many critiques."""
    keys = word_keys(story)
    return frozenset(zip(*(keys[i:] for i in range(n)), strict=False))


@functools.lru_cache(maxsize=512)
def story_lower(story: str) -> str:
    return story.lower().replace("’", "'")


@functools.lru_cache(maxsize=512)
def story_flat(story: str) -> str:
    """The story lowercased on one line, for finding a quotation in it."""
    return " ".join(story.split()).lower().replace("’", "'")


def excerpt(text: str, start: int, end: int, limit: int = 160) -> str:
    """The span itself, shortened in the middle when it is long."""
    span = text[start:end].strip()
    if len(span) <= limit:
        return span
    half = limit // 2 - 2
    return f"{span[:half].rstrip()} ... {span[-half:].lstrip()}"
