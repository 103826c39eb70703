"""The StyleReport: measured figures of a story, plus short notes where a figure crosses a threshold.

Notes report densities against thresholds rather than every hit, quote one to three real hits with
their exact text, and each carries a severity the critique writer uses to pick what to raise first.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from coach.domain.critic import wordlists as wl
from coach.domain.critic.signals import (
    Analysis,
    Hit,
    analyse,
    dialogue_lines,
    mean_and_cv,
    phrase,
    sentence_start,
)

# Thresholds: densities are per 1,000 narration words and need a minimum number of hits as well,
# so a single adverb in a 60-word story does not count as a habit.
ADVERBS_PER_1000 = 15.0
FILTERS_PER_1000 = 10.0
PASSIVES_PER_1000 = 8.0
CRUTCHES_PER_1000 = 8.0
REPEATS_PER_1000 = 20.0
MIN_HITS = 3
LONG_PARAGRAPH_WORDS = 200
LONG_OPENING_WORDS = 40
CHOPPY_MEAN = 7.0
LONG_MEAN = 25.0
MONOTONE_CV = 0.35
MOSTLY_DIALOGUE = 0.8
_CLICHE_OPENING_RES = tuple((re.compile(p, re.IGNORECASE), label) for p, label in wl.CLICHE_OPENINGS)


class StyleNote(BaseModel):
    model_config = ConfigDict(extra="forbid")

    code: str
    message: str
    examples: list[str] = Field(default_factory=list)


class OpenerRunFigure(BaseModel):
    model_config = ConfigDict(extra="forbid")

    word: str
    length: int


class RepeatedWord(BaseModel):
    model_config = ConfigDict(extra="forbid")

    word: str
    repeats: int  # times it came back within 50 narration words of its previous use


class StyleReport(BaseModel):
    """What the offline critic measured. Densities are per 1,000 narration words (dialogue removed)."""

    model_config = ConfigDict(extra="forbid")

    words: int
    sentences: int
    paragraphs: int
    narration_words: int
    mean_words_per_sentence: float
    sentence_length_cv: float | None = None  # None under five sentences
    dialogue_share: float  # fraction of words inside quotations
    adverbs_per_1000: float
    dialogue_tag_adverbs: list[str] = Field(default_factory=list)
    said_bookisms: list[str] = Field(default_factory=list)
    filter_words_per_1000: float
    telling_emotion: list[str] = Field(default_factory=list)
    passive_voice_per_1000: float
    crutch_words_per_1000: float
    repeated_nearby: list[RepeatedWord] = Field(default_factory=list)
    hard_sentences: int  # ARI 10-13, sentences of 14+ words
    very_hard_sentences: int  # ARI 14+
    opener_runs: list[OpenerRunFigure] = Field(default_factory=list)
    opening_line: str = ""
    longest_paragraph_words: int = 0
    notes: list[StyleNote] = Field(default_factory=list)


@dataclass(slots=True)
class RankedNote:
    """A note with what the critique writer needs: how strong it is and phrases it may quote."""

    note: StyleNote
    severity: float
    group: str  # notes of one group overlap (tag adverbs and adverbs); the writer raises one per group
    quotes: list[str]  # exact, quotable spans of the story, best first
    figures: dict[str, Any]


def _num(count: int, one: str, many: str) -> str:
    return f"{count} {one if count == 1 else many}"


def _texts(analysis: Analysis, hits: list[Hit], limit: int = 3) -> list[str]:
    out: list[str] = []
    for hit in hits:
        text = analysis.doc.text[hit.start:hit.end]
        if text not in out:
            out.append(text)
        if len(out) == limit:
            break
    return out


def _phrases(analysis: Analysis, hits: list[Hit], limit: int = 3, **kwargs: Any) -> list[str]:
    out: list[str] = []
    for hit in hits:
        span = phrase(analysis.doc, hit.start, hit.end, **kwargs)
        if span and span not in out:
            out.append(span)
        if len(out) == limit:
            break
    return out


def sentence_text(analysis: Analysis, index: int) -> str:
    s = analysis.doc.sentences[index]
    return analysis.doc.text[s.start:s.end]


def opening_cliche(first_sentence: str) -> str | None:
    """What makes an opening familiar (waking up, the weather, "it was"), judged on the sentence's first
    twelve words; None for an opening that is not one of those."""
    head = " ".join(first_sentence.split()[:12])
    return next((label for pattern, label in _CLICHE_OPENING_RES if pattern.search(head)), None)


def _note(code: str, message: str, examples: list[str], severity: float, group: str, quotes: list[str],
          **figures: Any) -> RankedNote:
    return RankedNote(StyleNote(code=code, message=message, examples=examples), round(severity, 3), group,
                      quotes, dict(figures))


def _has_verse(analysis: Analysis) -> bool:
    return any(p.verse for p in analysis.doc.paragraphs)


def _start_quotes(analysis: Analysis, index: int, words: int) -> list[str]:
    """The first words of one sentence as a quote list: empty where they are not quotable."""
    start = sentence_start(analysis, index, words)
    return [start] if start else []


def _counted_note(analysis: Analysis, code: str, hits: list[Hit], message: str, *, base: float, cap: int,
                  group: str) -> RankedNote:
    """A note about a habit counted hit by hit; its severity grows with the count, up to `cap` hits."""
    n = len(hits)
    return _note(code, message, _texts(analysis, hits), base + 0.3 * min(n, cap), group, _texts(analysis, hits),
                 count=n)


def _density_note(analysis: Analysis, code: str, hits: list[Hit], density: float, message: str, *,
                  threshold: float, weight: float, group: str, phrase_options: dict[str, Any],
                  **figures: Any) -> RankedNote | None:
    """A note about a habit measured per 1,000 narration words: raised above `threshold` and MIN_HITS hits.

    `message` is formatted with the density, the threshold and the figures.
    """
    if density <= threshold or len(hits) < MIN_HITS:
        return None
    return _note(code, message.format(density=density, threshold=threshold, **figures), _texts(analysis, hits),
                 weight * density / threshold, group, _phrases(analysis, hits, **phrase_options),
                 density=density, count=len(hits), **figures)


def _dialogue_tag_adverbs_note(analysis: Analysis) -> RankedNote | None:
    n = len(analysis.tag_adverbs)
    if not n:
        return None
    message = (f"{_num(n, 'dialogue tag leans', 'dialogue tags lean')} on an adverb; let the line itself, "
               "or a gesture, show how it is spoken.")
    return _counted_note(analysis, "dialogue_tag_adverbs", analysis.tag_adverbs, message, base=1.2, cap=6,
                         group="adverbs")


def _said_bookisms_note(analysis: Analysis) -> RankedNote | None:
    non_speech = [h for h in analysis.bookisms if h.kind == "non_speech"]
    if not non_speech and len(analysis.bookisms) < 2:
        return None
    n = len(analysis.bookisms)
    return _note("said_bookisms",
                 f"{_num(n, 'dialogue tag uses', 'dialogue tags use')} a showy speech verb or an action "
                 "(smiled, hissed) where said or asked would disappear.",
                 _texts(analysis, analysis.bookisms), 1.0 + 0.3 * min(n, 5), "tags",
                 _texts(analysis, non_speech + [h for h in analysis.bookisms if h.kind != "non_speech"]),
                 count=n, non_speech=len(non_speech))


def _adverbs_note(analysis: Analysis) -> RankedNote | None:
    # Adverbs in dialogue tags and crutch words have notes of their own; this one is about the rest.
    doc, narration = analysis.doc, analysis.narration_words
    adverbs = [h for h in analysis.adverbs
               if doc.text[h.start:h.end].lower() not in wl.CRUTCH_WORDS
               and not any(t.start <= h.start < t.end for t in analysis.tag_adverbs)]
    density = round(1000.0 * len(adverbs) / narration, 1) if narration else 0.0
    return _density_note(
        analysis, "adverbs", adverbs, density,
        "Outside dialogue tags, narration has {density:g} -ly adverbs per 1,000 words (above {threshold:g}); "
        "a sharper verb can often replace verb plus adverb.",
        threshold=ADVERBS_PER_1000, weight=1.0, group="adverbs", phrase_options={"target": 3, "prefer": "left"})


def _filter_words_note(analysis: Analysis) -> RankedNote | None:
    return _density_note(
        analysis, "filter_words", [h for h in analysis.filters if h.kind != "weak"],
        analysis.per_1000(analysis.filters, skip_kind="weak"),
        "Filter words (saw, felt, noticed, realized) come {density:g} times per 1,000 narration words "
        "(above {threshold:g}); they keep the reader one step away from the scene.",
        threshold=FILTERS_PER_1000, weight=1.1, group="filters",
        phrase_options={"min_words": 3, "max_words": 7, "target": 5})


def _telling_emotion_note(analysis: Analysis) -> RankedNote | None:
    n = len(analysis.telling)
    if n < 2:
        return None
    message = (f"{_num(n, 'phrase names', 'phrases name')} an emotion outright; show it through action, "
               "the body or dialogue instead.")
    return _counted_note(analysis, "telling_emotion", analysis.telling, message, base=1.1, cap=6, group="telling")


def _passive_voice_note(analysis: Analysis) -> RankedNote | None:
    return _density_note(
        analysis, "passive_voice", analysis.passives, analysis.per_1000(analysis.passives),
        "Passive constructions come {density:g} times per 1,000 narration words (above {threshold:g}); "
        "naming who acts makes those sentences move.",
        threshold=PASSIVES_PER_1000, weight=0.9, group="passive",
        phrase_options={"min_words": 3, "max_words": 6, "target": 4})


def _crutch_words_note(analysis: Analysis) -> RankedNote | None:
    words = Counter(analysis.doc.text[h.start:h.end].lower() for h in analysis.crutches)
    return _density_note(
        analysis, "crutch_words", analysis.crutches, analysis.per_1000(analysis.crutches),
        "Crutch words ({top}) come {density:g} times per 1,000 narration words (above {threshold:g}); "
        "most sentences stand up better without them.",
        threshold=CRUTCHES_PER_1000, weight=0.9, group="crutch", phrase_options={"min_words": 3, "max_words": 6},
        top=", ".join(w for w, _ in words.most_common(3)))


def _repeated_words_note(analysis: Analysis) -> RankedNote | None:
    density = analysis.per_1000(analysis.repeats)
    if density <= REPEATS_PER_1000 or len(analysis.repeats) < 5:
        return None
    counts = Counter(h.kind for h in analysis.repeats)
    word, times = counts.most_common(1)[0]
    listed = ", ".join(f"{w} ({c + 1} times)" for w, c in counts.most_common(3))
    hits = [h for h in analysis.repeats if h.kind == word]
    return _note("repeated_words",
                 f"Words come back within a few lines {len(analysis.repeats)} times, most often {listed}.",
                 _texts(analysis, hits, 1) + [w for w, _ in counts.most_common(3)][1:],
                 0.7 * density / REPEATS_PER_1000, "repetition",
                 _phrases(analysis, hits, min_words=3, max_words=6), word=word, times=times + 1)


def _hard_sentences_note(analysis: Analysis) -> RankedNote | None:
    sentences = analysis.doc.sentences
    hard_total = len(analysis.hard) + len(analysis.very_hard)
    if len(analysis.very_hard) < 3 and (hard_total < 3 or hard_total <= 0.2 * len(sentences)):
        return None
    longest = max(analysis.very_hard + analysis.hard, key=lambda i: len(sentences[i].words))
    quotes = _start_quotes(analysis, longest, 7)
    return _note("hard_sentences",
                 f"{hard_total} of {len(sentences)} sentences are hard to read (ARI 10 or more), "
                 f"{len(analysis.very_hard)} of them very hard; the longest runs to "
                 f"{len(sentences[longest].words)} words.",
                 quotes, min(2.0, 0.7 + 0.1 * len(analysis.very_hard)), "rhythm",
                 quotes, words=len(sentences[longest].words))


def _sentence_rhythm_note(analysis: Analysis) -> RankedNote | None:
    """Too many short sentences, too many long ones, or lengths that hardly vary (verse aside)."""
    doc = analysis.doc
    total_sentences = len(doc.sentences)
    mean, cv = mean_and_cv(analysis.sentence_lengths)
    if _has_verse(analysis):
        return None
    if total_sentences >= 15 and mean < CHOPPY_MEAN and analysis.dialogue_share < 0.5:
        shorts = [i for i, s in enumerate(doc.sentences)
                  if 3 <= len(s.words) <= 6 and not any(w.in_quote for w in s.words)]
        quotes = [q for q in (sentence_start(analysis, i, 6) for i in shorts[1:4]) if q]
        return _note("sentence_rhythm",
                     f"Sentences average {mean:.1f} words; so many short ones in a row give every beat the "
                     "same weight.",
                     quotes[:2], 1.6 + (CHOPPY_MEAN - mean) / 4, "rhythm", quotes, mean=round(mean, 1),
                     kind="choppy")
    if total_sentences >= 5 and mean > LONG_MEAN:
        longest = max(range(total_sentences), key=lambda i: len(doc.sentences[i].words))
        quotes = _start_quotes(analysis, longest, 7)
        return _note("sentence_rhythm",
                     f"Sentences average {mean:.1f} words; a few short ones would let the key moments land.",
                     quotes, 1.2 + (mean - LONG_MEAN) / 10, "rhythm", quotes, mean=round(mean, 1), kind="long")
    if cv is not None and total_sentences >= 8 and cv < MONOTONE_CV:
        quotes = _start_quotes(analysis, total_sentences // 2, 6)
        return _note("sentence_rhythm",
                     f"Sentence lengths vary little (coefficient of variation {cv:.2f}, average {mean:.1f} "
                     "words), which gives the prose an even, lulling beat.",
                     quotes, 1.3, "rhythm", quotes, mean=round(mean, 1), cv=round(cv, 2), kind="monotone")
    return None


def _repeated_openers_note(analysis: Analysis) -> RankedNote | None:
    runs = analysis.opener_runs
    if not runs:
        return None
    longest_run = max(runs, key=lambda r: r.length)
    quotes = _start_quotes(analysis, longest_run.sentence_index, 3)
    listed = ", ".join(f"{analysis.doc.sentences[r.sentence_index].words[0].text} x{r.length}"
                       for r in runs[:4])
    count = len(runs)
    return _note("repeated_openers",
                 f"{_num(count, 'run', 'runs')} of three or more sentences in a row "
                 f"{'begins' if count == 1 else 'begin'} with the same word ({listed}).",
                 quotes, 0.9 + 0.15 * min(longest_run.length, 8) + 0.1 * count,
                 "openers", quotes, length=longest_run.length, runs=count)


def _opening_line_note(analysis: Analysis) -> RankedNote | None:
    doc = analysis.doc
    if not doc.sentences:
        return None
    first_words = len(doc.sentences[0].words)
    cliche = None if doc.sentences[0].words[0].in_quote else opening_cliche(sentence_text(analysis, 0))
    if cliche:
        quotes = _start_quotes(analysis, 0, min(first_words, 10))
        return _note("opening_line",
                     f"The opening line starts with a familiar move ({cliche}) in its first "
                     f"{min(first_words, 12)} words; readers decide quickly whether to stay.",
                     quotes, 1.4, "opening", quotes, kind="cliche")
    if first_words > LONG_OPENING_WORDS:
        quotes = _start_quotes(analysis, 0, 7)
        return _note("opening_line",
                     f"The first sentence runs to {first_words} words before the reader has a foothold.",
                     quotes, 1.1, "opening", quotes, kind="long", words=first_words)
    return None


def _long_paragraph_note(analysis: Analysis) -> RankedNote | None:
    doc = analysis.doc
    longest = max(doc.paragraphs, key=lambda p: p.words, default=None)
    if longest is None or longest.words <= LONG_PARAGRAPH_WORDS:
        return None
    inside = [i for i, s in enumerate(doc.sentences) if longest.start <= s.start < longest.end]
    # The paragraph's first words, else a sentence from its middle (a natural place to break).
    candidates = [sentence_start(analysis, i, 6) for i in (inside[0], inside[len(inside) // 2])]
    quotes = [q for q in candidates if q]
    return _note("long_paragraph",
                 f"The longest paragraph runs to {longest.words} words without a break.",
                 quotes[:1], min(2.2, longest.words / LONG_PARAGRAPH_WORDS), "paragraphs",
                 quotes, words=longest.words, paragraphs=len(doc.paragraphs))


def _dialogue_balance_note(analysis: Analysis) -> RankedNote | None:
    """Almost all dialogue, or a long story with none (verse aside)."""
    doc = analysis.doc
    total_words = len(doc.words)
    if analysis.dialogue_share >= MOSTLY_DIALOGUE and total_words >= 100:
        lines = dialogue_lines(analysis)
        return _note("dialogue_balance",
                     f"{analysis.dialogue_share:.0%} of the words are dialogue; a few beats of action or "
                     "setting would anchor who speaks and where.",
                     lines[:2], 0.9, "dialogue", lines, share=analysis.dialogue_share, kind="mostly_dialogue")
    if analysis.dialogue_share == 0 and total_words >= 400 and not _has_verse(analysis):
        return _note("dialogue_balance",
                     f"There is no dialogue in {total_words} words; a line or two of speech would let the "
                     "characters show themselves.",
                     [], 0.6, "dialogue", _start_quotes(analysis, len(doc.sentences) // 2, 6), share=0.0,
                     kind="no_dialogue")
    return None


# One rule per note code, in the order that breaks ties between equal severities.
_NOTE_RULES: tuple[Callable[[Analysis], RankedNote | None], ...] = (
    _dialogue_tag_adverbs_note,
    _said_bookisms_note,
    _adverbs_note,
    _filter_words_note,
    _telling_emotion_note,
    _passive_voice_note,
    _crutch_words_note,
    _repeated_words_note,
    _hard_sentences_note,
    _sentence_rhythm_note,
    _repeated_openers_note,
    _opening_line_note,
    _long_paragraph_note,
    _dialogue_balance_note,
)


def ranked_notes(analysis: Analysis) -> list[RankedNote]:
    """Every note whose figure crosses its threshold, strongest first (ties keep the order of _NOTE_RULES)."""
    notes = [note for rule in _NOTE_RULES if (note := rule(analysis)) is not None]
    notes.sort(key=lambda n: -n.severity)  # stable: equal severities keep the rule order
    return notes


def build_report(analysis: Analysis) -> StyleReport:
    doc = analysis.doc
    mean, cv = mean_and_cv(analysis.sentence_lengths)
    repeat_counts = Counter(h.kind for h in analysis.repeats)
    return StyleReport(
        words=len(doc.words),
        sentences=len(doc.sentences),
        paragraphs=len(doc.paragraphs),
        narration_words=analysis.narration_words,
        mean_words_per_sentence=round(mean, 1),
        sentence_length_cv=round(cv, 2) if cv is not None else None,
        dialogue_share=analysis.dialogue_share,
        adverbs_per_1000=analysis.per_1000(analysis.adverbs),
        dialogue_tag_adverbs=[doc.text[h.start:h.end] for h in analysis.tag_adverbs],
        said_bookisms=[doc.text[h.start:h.end] for h in analysis.bookisms],
        filter_words_per_1000=analysis.per_1000(analysis.filters, skip_kind="weak"),
        telling_emotion=[doc.text[h.start:h.end] for h in analysis.telling],
        passive_voice_per_1000=analysis.per_1000(analysis.passives),
        crutch_words_per_1000=analysis.per_1000(analysis.crutches),
        repeated_nearby=[RepeatedWord(word=w, repeats=c) for w, c in repeat_counts.most_common(10)],
        hard_sentences=len(analysis.hard),
        very_hard_sentences=len(analysis.very_hard),
        opener_runs=[OpenerRunFigure(word=r.word, length=r.length) for r in analysis.opener_runs],
        opening_line=sentence_text(analysis, 0).strip() if doc.sentences else "",
        longest_paragraph_words=max((p.words for p in doc.paragraphs), default=0),
        notes=[n.note for n in ranked_notes(analysis)],
    )


def analyse_style(text: str) -> StyleReport:
    """Measure a story's style. Pure and deterministic; never raises on any string."""
    return build_report(analyse(text))
