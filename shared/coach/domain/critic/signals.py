"""The style measurements: each signal finds its hits in the narration and keeps their offsets.

Narration is the story with every quotation blanked out (same offsets), so dialogue, which may break
the rules on purpose, is never linted. Densities are per 1,000 narration words.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field

from coach.domain.critic import wordlists as wl
from coach.domain.critic.text import WORD_RE, Document, Sentence, Word, parse

# Characters that never belong inside a phrase quoted back to the writer.
_UNQUOTABLE = set('"“”«»„\n\r*_#<>[]|\\`~')
_SUBJECT = r"(?:he|she|they|I|we|you|it|He|She|They|We|You|It|[A-Z][\w’']+)"
_NON_SPEECH_TAGS = wl.NON_SPEECH_TAGS


@dataclass(frozen=True, slots=True)
class Hit:
    start: int
    end: int
    kind: str = ""  # a sub-kind where a signal has several ("weak", "speech", "non_speech", a word)


@dataclass(slots=True)
class OpenerRun:
    word: str
    length: int
    start: int  # offset of the first sentence of the run
    sentence_index: int


@dataclass(slots=True)
class Analysis:
    doc: Document
    sentence_lengths: list[int]
    dialogue_share: float
    tag_adverbs: list[Hit] = field(default_factory=list)
    bookisms: list[Hit] = field(default_factory=list)
    adverbs: list[Hit] = field(default_factory=list)
    filters: list[Hit] = field(default_factory=list)  # kind "weak" for concrete sensation
    telling: list[Hit] = field(default_factory=list)
    passives: list[Hit] = field(default_factory=list)
    crutches: list[Hit] = field(default_factory=list)
    repeats: list[Hit] = field(default_factory=list)  # kind is the repeated word
    hard: list[int] = field(default_factory=list)  # sentence indexes, ARI 10-13
    very_hard: list[int] = field(default_factory=list)  # ARI 14+
    opener_runs: list[OpenerRun] = field(default_factory=list)

    @property
    def narration_words(self) -> int:
        return self.doc.narration_word_count

    def per_1000(self, hits: list[Hit], *, skip_kind: str | None = None) -> float:
        count = sum(1 for h in hits if h.kind != skip_kind) if skip_kind else len(hits)
        return round(1000.0 * count / self.narration_words, 1) if self.narration_words else 0.0


def _ci(words: frozenset[str] | tuple[str, ...]) -> str:
    return "|".join(sorted((re.escape(w) for w in words), key=len, reverse=True))


_TAG_ADVERB_RES = (
    re.compile(rf"\b(?:{_ci(wl.TAG_VERBS)})(?:\s+{_SUBJECT})?,?\s+([a-z]+ly)\b", re.IGNORECASE),
    re.compile(rf"\b([a-z]+ly)\s+(?:{_ci(wl.TAG_VERBS)})\b", re.IGNORECASE),
)
_BOOKISM = _ci(wl.SAID_BOOKISMS)
_AFTER_QUOTE_RE = re.compile(
    rf"\s*((?:{_SUBJECT})(?:\s+[a-z]+ly)?\s+({_BOOKISM})|({_BOOKISM})\s+{_SUBJECT})\b"
)
_BEFORE_QUOTE_RE = re.compile(rf"\b{_SUBJECT}\s+(?:[a-z]+ly\s+)?({_BOOKISM})\s*[,:]\s*$")
_FILTER_PHRASE_RE = re.compile(rf"\b(?:{_ci(wl.FILTER_PHRASES)})\b", re.IGNORECASE)
_TELLING_RE = re.compile(
    rf"\b(?:{_ci(wl.TELLING_VERBS)})\s+(?:(?:{_ci(wl.INTENSIFIERS)})\s+){{0,2}}(?:{_ci(wl.EMOTIONS)})\b",
    re.IGNORECASE,
)
_PASSIVE_RE = re.compile(
    rf"\b(?:{_ci(wl.BE_FORMS)})\s+(?:(?:not|never|also|already|still|just|[a-z]+ly)\s+)?"
    rf"([a-z]+ed|{_ci(wl.IRREGULAR_PARTICIPLES)})\b(?!-)",
    re.IGNORECASE,
)
_CRUTCH_PHRASE_RE = re.compile(rf"\b(?:{_ci(wl.CRUTCH_PHRASES)})\b", re.IGNORECASE)


def _is_adverb(word: str) -> bool:
    return len(word) >= 5 and word.endswith("ly") and word not in wl.NOT_ADVERBS and word.isascii()


def _quote_sentences(doc: Document) -> list[Sentence]:
    """Sentences that contain or touch a quotation (where dialogue tags live)."""
    if not doc.quotes:
        return []
    out = []
    qi = 0
    for sentence in doc.sentences:
        while qi < len(doc.quotes) and doc.quotes[qi][1] < sentence.start:
            qi += 1
        if qi < len(doc.quotes) and doc.quotes[qi][0] <= sentence.end:
            out.append(sentence)
    return out


def _tag_adverbs(doc: Document) -> list[Hit]:
    hits: dict[int, Hit] = {}
    for sentence in _quote_sentences(doc):
        for pattern in _TAG_ADVERB_RES:
            for m in pattern.finditer(doc.narration, sentence.start, sentence.end):
                if _is_adverb(m.group(1).lower()):
                    hits.setdefault(m.start(), Hit(m.start(), m.end()))
    return sorted(hits.values(), key=lambda h: h.start)


def _bookisms(doc: Document) -> list[Hit]:
    hits: list[Hit] = []
    text = doc.text
    for q_start, q_end in doc.quotes:
        inner = text[q_start:q_end].rstrip('"”»“’ ')
        last = inner[-1:] if inner else ""
        after = _AFTER_QUOTE_RE.match(text, q_end, min(len(text), q_end + 60))
        if after:
            verb = after.group(2) or after.group(3)
            kind = "non_speech" if verb in _NON_SPEECH_TAGS else "speech"
            # After a comma the words are a tag; after ! or ? a capitalised action is a beat, not a tag.
            if last in ",—-–" or (last in "!?…" and (after.group(1)[0].islower() or kind == "speech")):
                hits.append(Hit(after.start(1), after.end(1), kind))
                continue
        line_start = max(0, q_start - 60)
        before = _BEFORE_QUOTE_RE.search(doc.narration[line_start:q_start])
        if before:
            kind = "non_speech" if before.group(1) in _NON_SPEECH_TAGS else "speech"
            hits.append(Hit(line_start + before.start(), line_start + before.end(1), kind))
    return hits


def _word_hits(doc: Document) -> tuple[list[Hit], list[Hit], list[Hit]]:
    """Adverbs, filter words and crutch words, from the narration words one by one."""
    adverbs, filters, crutches = [], [], []
    for sentence in doc.sentences:
        words = sentence.words
        for i, word in enumerate(words):
            if word.in_quote:
                continue
            low = word.lower
            if _is_adverb(low) and (i == 0 or not word.text[0].isupper()):
                adverbs.append(Hit(word.start, word.end))
            if low in wl.FILTER_WORDS:
                nxt = words[i + 1].lower if i + 1 < len(words) else ""
                weak = low.startswith("fe") and nxt in wl.DETERMINERS
                filters.append(Hit(word.start, word.end, "weak" if weak else ""))
            if low in wl.CRUTCH_WORDS:
                crutches.append(Hit(word.start, word.end))
    for m in _FILTER_PHRASE_RE.finditer(doc.narration):
        filters.append(Hit(m.start(), m.end()))
    for m in _CRUTCH_PHRASE_RE.finditer(doc.narration):
        crutches.append(Hit(m.start(), m.end()))
    return adverbs, sorted(filters, key=lambda h: h.start), sorted(crutches, key=lambda h: h.start)


def _regex_hits(pattern: re.Pattern[str], doc: Document) -> list[Hit]:
    return [Hit(m.start(), m.end()) for m in pattern.finditer(doc.narration)]


def _passives(doc: Document) -> list[Hit]:
    hits = []
    for m in _PASSIVE_RE.finditer(doc.narration):
        participle = m.group(1).lower()
        if participle in wl.STATE_WORDS or participle in wl.EMOTIONS or participle.endswith("eed"):
            continue
        if len(participle) < 4:
            continue
        hits.append(Hit(m.start(), m.end()))
    return hits


def _repeats(doc: Document, window: int = 50) -> list[Hit]:
    """A content word of 5+ letters used again within `window` narration words (names excluded)."""
    last_seen: dict[str, int] = {}
    hits = []
    index = 0
    for word in doc.words:
        if word.in_quote:
            continue
        index += 1
        low = word.lower
        if len(low) < 5 or word.text[0].isupper() or low in wl.REPETITION_STOPWORDS or not low.isalpha():
            continue
        seen = last_seen.get(low)
        if seen is not None and index - seen <= window:
            hits.append(Hit(word.start, word.end, low))
        last_seen[low] = index
    return hits


def ari(words: list[Word]) -> float:
    """Automated Readability Index of one sentence (letters per word and words per sentence only)."""
    if not words:
        return 0.0
    chars = sum(sum(1 for c in w.text if c.isalnum()) for w in words)
    return 4.71 * chars / len(words) + 0.5 * len(words) - 21.43


def _hard_sentences(doc: Document) -> tuple[list[int], list[int]]:
    hard, very_hard = [], []
    for i, sentence in enumerate(doc.sentences):
        words = sentence.words
        if len(words) < 14 or len(sentence.narration_words) * 2 < len(words):
            continue
        score = ari(words)
        if score >= 14:
            very_hard.append(i)
        elif score >= 10:
            hard.append(i)
    return hard, very_hard


def _opener_runs(doc: Document, minimum: int = 3) -> list[OpenerRun]:
    runs: list[OpenerRun] = []
    current: OpenerRun | None = None
    for i, sentence in enumerate(doc.sentences):
        first = sentence.words[0]
        opener = None if first.in_quote else first.lower
        if opener is not None and current is not None and current.word == opener:
            current.length += 1
            continue
        if current is not None and current.length >= minimum:
            runs.append(current)
        current = OpenerRun(opener, 1, sentence.start, i) if opener is not None else None
    if current is not None and current.length >= minimum:
        runs.append(current)
    return runs


def analyse(text: str) -> Analysis:
    """Measure everything once; the report and the critique writer both read this."""
    doc = parse(text)
    lengths = [len(s.words) for s in doc.sentences]
    total = len(doc.words)
    quoted = total - doc.narration_word_count
    share = round(quoted / total, 3) if total else 0.0
    analysis = Analysis(doc=doc, sentence_lengths=lengths, dialogue_share=share)
    analysis.tag_adverbs = _tag_adverbs(doc)
    analysis.bookisms = _bookisms(doc)
    analysis.adverbs, analysis.filters, analysis.crutches = _word_hits(doc)
    analysis.telling = _regex_hits(_TELLING_RE, doc)
    analysis.passives = _passives(doc)
    analysis.repeats = _repeats(doc)
    analysis.hard, analysis.very_hard = _hard_sentences(doc)
    analysis.opener_runs = _opener_runs(doc)
    return analysis


def mean_and_cv(lengths: list[int]) -> tuple[float, float | None]:
    """Mean sentence length, and the coefficient of variation over five or more sentences."""
    if not lengths:
        return 0.0, None
    mean = sum(lengths) / len(lengths)
    if len(lengths) < 5 or mean == 0:
        return mean, None
    variance = sum((n - mean) ** 2 for n in lengths) / len(lengths)
    return mean, math.sqrt(variance) / mean


def phrase(doc: Document, start: int, end: int, *, min_words: int = 2, max_words: int = 7,
           target: int | None = None, prefer: str = "right", exhaust: bool = False) -> str | None:
    """An exact, quotable span of the story around [start, end): whole words within one sentence, all
    narration or all inside one quotation, never crossing a quotation mark or a line break.

    The hit grows to `target` words, alternating sides starting with `prefer` ("right" suits a verb
    whose object follows, "left" an adverb or a number whose noun comes before); with `exhaust`, the
    preferred side grows as far as it can before the other side is tried."""
    sentence = next((s for s in doc.sentences if s.start <= start < s.end), None)
    if sentence is None:
        return None
    words = sentence.words
    first = next((i for i, w in enumerate(words) if w.end > start), None)
    if first is None:
        return None
    last = first
    while last + 1 < len(words) and words[last + 1].start < end:
        last += 1
    in_quote = words[first].in_quote

    def ok(i: int, j: int) -> bool:
        span = doc.text[words[i].start:words[j].end]
        return not (_UNQUOTABLE & set(span)) and all(w.in_quote == in_quote for w in words[i:j + 1])

    if not ok(first, last) or last - first + 1 > max_words:
        return None
    size = last - first + 1
    if target is None:
        target = size + (2 if size == 1 else 1)
    target = min(max_words, max(min_words, target))
    hit_last = last
    right = prefer == "right"
    stuck = 0
    hit_first = first
    while last - first + 1 < target and stuck < 2:
        if right and last + 1 < len(words) and ok(first, last + 1):
            last += 1
            stuck = 0
        elif not right and first > 0 and ok(first - 1, last):
            first -= 1
            stuck = 0
        else:
            stuck += 1
            right = not right
            continue
        if not exhaust:
            right = not right
    # A fragment ending on "the" or "and" reads as cut off: trim it, then make up the length on the left.
    while last > hit_last and words[last].lower in wl.DANGLING:
        last -= 1
    while first < hit_first and words[first].lower in wl.WEAK_STARTS:
        first += 1
    while last - first + 1 < min_words and first > 0 and ok(first - 1, last):
        first -= 1
    if last - first + 1 < min_words:
        return None
    return doc.text[words[first].start:words[last].end]


def quotable(span: str) -> bool:
    """True for a span fit to quote back: 2 to 12 words, no quotation marks, markup or line breaks."""
    return 2 <= len(WORD_RE.findall(span)) <= 12 and not (_UNQUOTABLE & set(span)) and span == span.strip()


def sentence_start(analysis: Analysis, index: int, count: int = 6) -> str | None:
    """The first words of a sentence (up to `count`, at least two) as an exact quotable span that does
    not end on a function word."""
    text = analysis.doc.text
    words = analysis.doc.sentences[index].words
    # Prefer to stop at a clause boundary ("On a hill above the barley fields," not "... fields there").
    for n in range(min(count, len(words) - 1), 3, -1):
        span = text[words[0].start:words[n - 1].end]
        if text[words[n - 1].end:words[n - 1].end + 1] in (",", ";", ":", "—") and quotable(span):
            return span
    for n in range(min(count, len(words)), 1, -1):
        if n < len(words) and words[n - 1].lower in wl.DANGLING:
            continue
        span = text[words[0].start:words[n - 1].end]
        if quotable(span):
            return span
    return None


def dialogue_lines(analysis: Analysis) -> list[str]:
    """Lines of dialogue (the words inside the quotation marks, end punctuation trimmed) that are
    exact quotable spans, in story order."""
    doc = analysis.doc
    out: list[str] = []
    for q_start, q_end in doc.quotes:
        closed = doc.text[q_end - 1] in '"”»“’'
        inner = doc.text[q_start + 1:q_end - 1 if closed else q_end]
        inner = inner.strip().rstrip(".,;:!?…—–- ")
        if inner and quotable(inner) and inner not in out:
            out.append(inner)
    return out


__all__ = [
    "Analysis", "Hit", "OpenerRun", "analyse", "ari", "dialogue_lines", "mean_and_cv", "parse", "phrase",
    "quotable", "sentence_start",
]
