"""What the rules read: one critique with its story and configuration, and the pieces of text they
share (quotations, sentences, lines, words), each computed once and only when a rule asks for it.
"""

from __future__ import annotations

import functools
import itertools
import re
from dataclasses import dataclass

from coach.domain.records import Evidence
from coach.domain.validation.config import ValidatorConfig
from coach.domain.validation.loops import find_tail_loop
from coach.domain.validation.text import (
    SECOND_PERSON_RE,
    WORD_RE,
    Span,
    count_words,
    excerpt,
    fold,
    mask_spans,
    paragraphs,
    quotations,
    sentences,
    story_flat,
)


def word_set(words: str) -> frozenset[str]:
    return frozenset(words.split())


# Line patterns are matched line by line (a MULTILINE "^" makes the engine try every character).
BLOCKQUOTE_RE = re.compile(r"[ \t]*>[ \t]*\S.*")


@dataclass
class Context:
    text: str
    story: str
    config: ValidatorConfig
    finish_reason: str | None = None

    @functools.cached_property
    def quotes(self) -> list[Span]:
        # Quotation marks, and "> " blockquote lines, which quote just as surely.
        quotes = quotations(self.text)
        blocks = match_lines(self, BLOCKQUOTE_RE) if ">" in self.text else []
        if blocks:
            quotes = sorted(quotes + [b for b in blocks if not any(q.start < b.end and b.start < q.end
                                                                     for q in quotes)], key=lambda q: q.start)
        return quotes

    @functools.cached_property
    def lines(self) -> list[tuple[int, str]]:
        """(offset, line) for every line of the critique."""
        found, pos = [], 0
        for line in self.text.split("\n"):
            found.append((pos, line))
            pos += len(line) + 1
        return found

    @functools.cached_property
    def label_lines(self) -> list[tuple[Span, str]]:
        return label_lines(self)

    @functools.cached_property
    def story_quotes(self) -> list[Span]:
        """Quotations whose words come from the story (the rest are the critic's own, or invented)."""
        return [q for q in self.quotes if quote_in_story(q.text, self.story)]

    @functools.cached_property
    def tail_loop(self) -> tuple[int, int, int] | None:
        return find_tail_loop(self.text, self.config)

    @functools.cached_property
    def loop_free_end(self) -> int:
        """Where a trailing repetition loop starts (or the end): overlap is not counted twice in a loop."""
        return self.tail_loop[0] if self.tail_loop else len(self.text)

    @functools.cached_property
    def masked(self) -> str:
        """The critique with the inside of every quotation blanked: the critic's own words only."""
        return mask_spans(self.text, self.quotes)

    @functools.cached_property
    def folded(self) -> str:
        """The masked text, lowercased with straight apostrophes (same offsets)."""
        return fold(self.masked)

    @functools.cached_property
    def word_count(self) -> int:
        return count_words(self.text)

    @functools.cached_property
    def sentence_words(self) -> list[list[str]]:
        """The critic's own words (quotations left out) of each sentence, folded."""
        return [WORD_RE.findall(self.folded, s.start, s.end) for s in self.sentences]

    @functools.cached_property
    def own_words(self) -> list[str]:
        """The critic's own words of the whole critique, folded, in order."""
        return list(itertools.chain.from_iterable(self.sentence_words))

    @functools.cached_property
    def sentences(self) -> list[Span]:
        # Split the masked text so a quoted "What?" does not end a sentence; report the real text.
        return [Span(s.start, s.end, self.text[s.start:s.end]) for s in sentences(self.masked)]

    @functools.cached_property
    def paragraphs(self) -> list[Span]:
        return paragraphs(self.text)

    @functools.cached_property
    def second_person_story(self) -> bool:
        return is_second_person_story(self.story)


@functools.lru_cache(maxsize=512)
def is_second_person_story(story: str) -> bool:
    """A story told in the second person, whose "you" is no sign of a critique."""
    told = mask_spans(story, quotations(story))
    count = len(SECOND_PERSON_RE.findall(told))
    return count >= 3 and count / max(count_words(told), 1) >= 0.02


_QUOTE_TRIM = " \t\n\"'“”‘’>.,;:!?…-–—"


def quote_in_story(quote: str, story: str) -> bool:
    inner = " ".join(quote.strip(_QUOTE_TRIM).split()).lower().replace("’", "'")
    if not inner:
        return True
    return inner in story_flat(story)


def evidence(ctx: Context, rule: str, reason: str, start: int, end: int, detail: str = "") -> Evidence:
    return Evidence(
        rule=rule, reason=reason, span=excerpt(ctx.text, start, end), start=start, end=end, detail=detail
    )


def match_lines(ctx: Context, pattern: re.Pattern[str]) -> list[Span]:
    """Matches of a pattern at the start of each line, with offsets into the whole critique."""
    found = []
    for start, line in ctx.lines:
        m = pattern.match(line)
        if m:
            found.append(Span(start + m.start(), start + m.end(), m.group()))
    return found


def first(ctx: Context, items: list[Evidence]) -> list[Evidence]:
    """The first few pieces of evidence, as many as the configuration keeps per rule."""
    return items[: ctx.config.max_evidence_per_rule]


# A short "Label:" at the start of a line (bold or not), followed by text or by nothing.
MAX_LABEL_WORDS = 4
LABEL_LINE_RE = re.compile(
    r"[ \t]*(?:\*\*|__)?(?P<label>[A-Z][\w'’ ,&/-]{0,38}?)(?:\*\*|__)?[ \t]*:(?:\*\*|__)?(?:[ \t]+\S.*)?[ \t]*$"
    r"|[ \t]*(?:\*\*|__)(?P<bold>[^*_\n]{1,50})(?:\*\*|__)[ \t]*$",
)


def label_lines(ctx: Context) -> list[tuple[Span, str]]:
    """Lines that open with a short "Label:" (or are a bold label alone), with the label."""
    found = []
    for start, line in ctx.lines:
        if ":" not in line and "**" not in line and "__" not in line:
            continue
        m = LABEL_LINE_RE.match(line)
        if m:
            label = (m.group("label") or m.group("bold") or "").strip()
            if label and len(label.split()) <= MAX_LABEL_WORDS:
                found.append((Span(start + m.start(), start + m.end(), m.group()), label))
    return found
