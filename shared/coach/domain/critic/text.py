"""Splitting a story into paragraphs, sentences, words and quotations, keeping character offsets.

Every unit keeps its (start, end) offsets into the original text, so whatever the critic quotes back to
the writer is an exact substring of what they wrote. Markdown remnants (headings, scene-break rules) are
recognised and left out of the prose; verse (short lines, little punctuation) is split line by line.
"""

from __future__ import annotations

import bisect
import re
from dataclasses import dataclass, field

from coach.domain.critic.wordlists import ABBREVIATIONS

WORD_RE = re.compile(r"[^\W_]+(?:['’\-][^\W_]+)*")
_HEADING_RE = re.compile(r"^\s{0,3}#{1,6}(?:\s|$)")
# A line with no letters or digits at all: "---", "* * *", "~~~", "###", "&nbsp;" is handled as text.
_RULE_RE = re.compile(r"^[\s\W_]*$")
_TERMINATOR_RE = re.compile(r"[.!?…]+[\"'”’»)\]*_]*")
_VERSE_LINE_CHARS = 60


@dataclass(frozen=True, slots=True)
class Word:
    start: int
    end: int
    text: str
    in_quote: bool
    lower: str  # lowercased, curly apostrophe straightened: the form word lists are matched against


@dataclass(slots=True)
class Sentence:
    start: int
    end: int
    paragraph: int
    words: list[Word] = field(default_factory=list)

    @property
    def narration_words(self) -> list[Word]:
        return [w for w in self.words if not w.in_quote]


@dataclass(slots=True)
class Paragraph:
    start: int
    end: int
    verse: bool
    words: int = 0


@dataclass(slots=True)
class Document:
    text: str
    paragraphs: list[Paragraph]
    sentences: list[Sentence]
    words: list[Word]
    quotes: list[tuple[int, int]]  # spans including the quotation marks
    narration: str  # the text with every quotation blanked to spaces (same length, same offsets)
    narration_word_count: int  # words outside quotations


def _lines(text: str) -> list[tuple[int, int]]:
    """(start, end) of every line, without the newline."""
    spans, pos = [], 0
    for line in text.split("\n"):
        spans.append((pos, pos + len(line)))
        pos += len(line) + 1
    return spans


def _paragraph_blocks(text: str) -> list[list[tuple[int, int]]]:
    """Groups of consecutive content lines; blank lines, headings and rules separate them."""
    blocks: list[list[tuple[int, int]]] = []
    current: list[tuple[int, int]] = []
    for start, end in _lines(text):
        line = text[start:end]
        if not line.strip() or _HEADING_RE.match(line) or _RULE_RE.match(line):
            if current:
                blocks.append(current)
                current = []
            continue
        current.append((start, end))
    if current:
        blocks.append(current)
    return blocks


def _trimmed(text: str, start: int, end: int) -> tuple[int, int]:
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    return start, end


def _is_verse(text: str, lines: list[tuple[int, int]]) -> bool:
    if len(lines) < 3:
        return False
    short = sum(1 for s, e in lines if len(text[s:e].strip()) <= _VERSE_LINE_CHARS)
    return short >= 0.7 * len(lines)


def _quote_spans(text: str, blocks: list[list[tuple[int, int]]]) -> list[tuple[int, int]]:
    """Quotation spans, paragraph by paragraph; an unclosed quotation ends with its paragraph."""
    has_double = any(ch in text for ch in '"“”«»„')
    spans: list[tuple[int, int]] = []
    for lines in blocks:
        p_start, p_end = lines[0][0], lines[-1][1]
        open_at: int | None = None
        closer = ""
        for i in range(p_start, p_end):
            ch = text[i]
            if open_at is None:
                if ch == '"':
                    open_at, closer = i, '"'
                elif ch in "“„":
                    open_at, closer = i, "”“" if ch == "„" else "”"
                elif ch == "«":
                    open_at, closer = i, "»"
                elif not has_double and ch == "‘":
                    open_at, closer = i, "’"
            elif ch in closer:
                # In single-quote dialogue, an apostrophe inside a word ("don’t") is not a closer.
                if closer == "’" and i + 1 < p_end and text[i + 1].isalpha():
                    continue
                spans.append((open_at, i + 1))
                open_at = None
            elif ch == "“" and closer == "”":
                open_at = i  # an opener inside an open quotation: the earlier one was never closed
        if open_at is not None:
            spans.append((open_at, p_end))
    return spans


def _blank_quotes(text: str, quotes: list[tuple[int, int]]) -> str:
    if not quotes:
        return text
    parts, pos = [], 0
    for start, end in quotes:
        parts.append(text[pos:start])
        parts.append(" " * (end - start))
        pos = end
    parts.append(text[pos:])
    return "".join(parts)


def _is_abbreviation(text: str, dot: int) -> bool:
    """True when the period at `dot` ends an abbreviation or an initial ("Mr.", "J.")."""
    start = dot
    while start > 0 and (text[start - 1].isalpha() or text[start - 1] == "."):
        start -= 1
    token = text[start:dot].lower()
    if not token:
        return False
    if token == "no":  # "No. 7", not "No." as an answer
        return text[dot + 1:dot + 3].strip()[:1].isdigit()
    return token in ABBREVIATIONS or (len(token) == 1 and text[start].isupper())


def _sentence_spans(text: str, start: int, end: int) -> list[tuple[int, int]]:
    """Split text[start:end] at terminal punctuation followed by space and a non-lowercase start."""
    spans: list[tuple[int, int]] = []
    seg_start = start
    for match in _TERMINATOR_RE.finditer(text, start, end):
        stop = match.end()
        nxt = stop
        if nxt < end and not text[nxt].isspace():
            continue
        while nxt < end and text[nxt].isspace():
            nxt += 1
        if nxt < end and text[nxt].islower():
            continue  # '"Wait," she said' or '... and then' continues the sentence
        # "Mr." is an abbreviation; "No." closing a line of dialogue is not.
        if match.group() == "." and _is_abbreviation(text, match.start()):
            continue
        spans.append((seg_start, stop))
        seg_start = nxt
    if seg_start < end:
        spans.append((seg_start, end))
    return [s for s in (_trimmed(text, a, b) for a, b in spans) if s[0] < s[1]]


def parse(text: str) -> Document:
    """Parse a story into a Document. Never raises on any string."""
    blocks = _paragraph_blocks(text)
    quotes = _quote_spans(text, blocks)
    quote_starts = [s for s, _ in quotes]

    def in_quote(pos: int) -> bool:
        i = bisect.bisect_right(quote_starts, pos) - 1
        return i >= 0 and quotes[i][0] <= pos < quotes[i][1]

    paragraphs: list[Paragraph] = []
    sentences: list[Sentence] = []
    words: list[Word] = []
    verse_flags = [_is_verse(text, lines) for lines in blocks]
    if any(verse_flags):
        # In a poem, a short stanza of two lines is verse too.
        verse_flags = [v or (len(lines) >= 2 and _is_verse(text, lines * 2)) for v, lines in zip(verse_flags, blocks,
                                                                                                strict=True)]
    for lines, verse in zip(blocks, verse_flags, strict=True):
        p_start, p_end = _trimmed(text, lines[0][0], lines[-1][1])
        index = len(paragraphs)
        paragraph = Paragraph(start=p_start, end=p_end, verse=verse)
        units = lines if verse else [(p_start, p_end)]
        for u_start, u_end in units:
            for s_start, s_end in _sentence_spans(text, u_start, u_end):
                sentence = Sentence(start=s_start, end=s_end, paragraph=index)
                for m in WORD_RE.finditer(text, s_start, s_end):
                    word = m.group()
                    sentence.words.append(
                        Word(m.start(), m.end(), word, in_quote(m.start()), word.lower().replace("’", "'")))
                if sentence.words:
                    sentences.append(sentence)
                    words.extend(sentence.words)
                    paragraph.words += len(sentence.words)
        if paragraph.words:  # a block of emoji or punctuation alone is not a paragraph
            paragraphs.append(paragraph)
    return Document(
        text=text,
        paragraphs=paragraphs,
        sentences=sentences,
        words=words,
        quotes=quotes,
        narration=_blank_quotes(text, quotes),
        narration_word_count=sum(1 for w in words if not w.in_quote),
    )
