"""What works in a story: strengths the figures support, each with a short quote where one fits.

Praise must be true of the story, so each strength has a measured condition (a short concrete opening,
a sentence dense in sensory words, a short line after a long one) and quotes the passage that meets it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from coach.domain.critic import wordlists as wl
from coach.domain.critic.chooser import Chooser
from coach.domain.critic.report import opening_cliche
from coach.domain.critic.signals import (
    WORD_RE,
    Analysis,
    Hit,
    dialogue_lines,
    mean_and_cv,
    phrase,
    quotable,
    sentence_start,
)


@dataclass(slots=True)
class Strength:
    kind: str
    quote: str | None
    figures: dict[str, object]


STRENGTH_TEMPLATES: dict[str, tuple[str, ...]] = {
    "opening": (
        'Your opening line does its job. "{q}" puts the reader inside the story at once, without '
        "throat-clearing, and makes us want the next sentence.",
        'You start well: "{q}" is short, specific and confident, and it drops the reader straight into '
        "the situation rather than warming up to it.",
        'The first line is a strong hook. With "{q}" you skip the preamble and trust the reader to catch '
        "up, which is exactly the right instinct for an opening.",
    ),
    "imagery": (
        'Your imagery is the strongest thing here. A detail like "{q}" is concrete and physical, so the '
        "reader sees and feels the scene instead of being told about it.",
        'You have a real eye for sensory detail: "{q}" gives the reader something to see, touch or hear, '
        "and that grounding makes the rest of the story believable.",
        'The physical detail is excellent. "{q}" does more than decorate; it builds the world through the '
        "senses, which is what showing rather than telling looks like in practice.",
    ),
    "dialogue": (
        'Your dialogue sounds like people talking. A line like "{q}" is natural and economical, and it '
        "reveals character through what is said rather than through explanation.",
        'You have a good ear for speech: "{q}" has the rhythm of a real voice, and you let the lines '
        "carry the scene instead of summarising the conversation.",
        'The dialogue is lively. "{q}" sounds spoken, not written, and lines like it move the scene '
        "forward while telling us who these people are.",
    ),
    "rhythm": (
        "You vary your sentence lengths well, from {lo} to {hi} words, and a short line like \"{q}\" "
        "lands with real force because of the longer sentences around it.",
        'Your pacing at the level of the sentence is good: after a long sentence, "{q}" stops the reader '
        "short, and that contrast gives the moment its weight.",
    ),
    "specifics": (
        'You use precise, specific details: "{q}" is exact where a vaguer draft would have stayed '
        "general, and that precision makes the world feel real.",
        'I like your specificity. A detail like "{q}" anchors the story in a particular time and place, '
        "and readers trust a narrator who knows the exact figure.",
    ),
    "verbs": (
        'Your verbs do real work. In "{q}", the verb carries the action and its manner at once, with no '
        "adverb needed to prop it up.",
        'You choose strong, physical verbs: "{q}" shows the action precisely, which keeps the prose lean '
        "and the reader close to the moment.",
    ),
    "ending": (
        'The ending is well judged: "{q}" closes the piece cleanly and leaves the reader with something '
        "to carry away rather than a summary.",
        'You end in the right place. "{q}" is brief, and it lets the final moment resonate without '
        "explaining it.",
    ),
    "figurative": (
        'Your figurative language earns its place. "{q}" makes the reader see something familiar from a '
        "new angle, and it does so in a few plain words instead of a flourish.",
        'I admire the comparison in "{q}", because it is specific to this story rather than borrowed, and '
        "it tells us how the narrator sees the world.",
    ),
    "verse": (
        'You let each line carry a single image or beat, and "{q}" shows how much weight a short line '
        "can hold when it stands on its own.",
        'Your line breaks are doing work: "{q}" is given room to breathe, and the white space around it '
        "slows the reader down in the right way.",
    ),
    "committed": (
        'You commit to your idea from the first words, "{q}", and say what you mean plainly, which is a '
        "real strength to build on.",
        'You begin plainly and directly with "{q}", without decoration, and that confidence in simple '
        "statement is a sound foundation for everything else.",
    ),
    "voice": (
        'There is a clear, direct voice in "{q}", where you trust plain words, and plain statement is a '
        "sound foundation for everything else.",
        'Your plainest sentences are among your best. "{q}" says exactly what it needs to, with no '
        "padding, and that economy is a real strength to build on.",
    ),
}

# Strengths stated from the figures alone, for when the quote budget is spent.
PLAIN_STRENGTHS: dict[str, tuple[str, ...]] = {
    "clean_tags": (
        "You keep your dialogue tags plain, so the talk itself carries the scene.",
        "Your dialogue tags stay out of the way, which lets each line of speech speak for itself.",
    ),
    "lean_adverbs": (
        "Your narration uses few adverbs, so the verbs and nouns do the work.",
        "You rarely lean on adverbs; your verbs are trusted to carry the action.",
    ),
    "active": (
        "You write almost entirely in the active voice, which keeps the prose moving.",
        "Your sentences keep their actors up front, so the narration moves briskly.",
    ),
    "paragraphing": (
        "Your paragraphs stay a readable length, which keeps the page open and the pace brisk.",
        "You break your paragraphs often enough that the page never feels heavy.",
    ),
    "varied_rhythm": (
        "You vary the length of your sentences, which gives the prose a natural, spoken rhythm.",
        "Your sentence lengths range widely, and that variety keeps the reader's ear engaged.",
    ),
    "brevity": (
        "You keep the piece short and let a single moment carry it, which is harder than it looks.",
        "You resist the urge to over-explain, and the brevity suits the idea.",
    ),
    "committed": (
        "You commit to your premise and never let go of it, scene after scene.",
        "You stay with your idea instead of drifting, which gives the piece focus.",
    ),
}

_COMPLETE_RE = re.compile(r"[.!?…][\"'”’)\]*_]*$")


def _narration_sentences(analysis: Analysis) -> list[int]:
    """Indexes of prose sentences with no dialogue in them that end with terminal punctuation."""
    doc = analysis.doc
    return [i for i, s in enumerate(doc.sentences)
            if not any(w.in_quote for w in s.words) and _complete(analysis, i)]


def _complete(analysis: Analysis, index: int) -> bool:
    """A whole sentence, not a heading-like line ("Skellan Island, 3rd September 1889") or a fragment."""
    s = analysis.doc.sentences[index]
    if analysis.doc.paragraphs[s.paragraph].verse:
        return True  # in verse the line is the unit, with or without punctuation
    return bool(_COMPLETE_RE.search(analysis.doc.text[s.start:s.end]))


def _span_of_words(analysis: Analysis, index: int, first: int, last: int) -> str | None:
    words = analysis.doc.sentences[index].words
    span = analysis.doc.text[words[first].start:words[last].end]
    return span if quotable(span) else None


def _whole_sentence(analysis: Analysis, index: int, max_words: int = 12) -> str | None:
    words = analysis.doc.sentences[index].words
    if not 2 <= len(words) <= max_words:
        return None
    return _span_of_words(analysis, index, 0, len(words) - 1)


def _hits_in(hits: list[Hit], start: int, end: int) -> bool:
    return any(start <= h.start < end for h in hits)


def find_strengths(analysis: Analysis, chooser: Chooser) -> list[Strength]:
    """Every strength the figures support, each with a quote where one fits."""
    sentences = analysis.doc.sentences
    if not sentences:
        return []
    narration = _narration_sentences(analysis)
    flaws = analysis.telling + [h for h in analysis.filters if h.kind != "weak"] + analysis.adverbs
    lengths = analysis.sentence_lengths
    quoted = (
        ("opening", _opening_line(analysis, flaws), {}),
        ("imagery", _imagery(analysis, narration, flaws), {}),
        ("figurative", _figurative(analysis, narration, flaws), {}),
        ("dialogue", _dialogue_line(analysis, chooser), {}),
        ("rhythm", _short_after_long(analysis, narration), {"lo": min(lengths), "hi": max(lengths)}),
        ("specifics", _specific_detail(analysis, narration), {}),
        ("verbs", _vivid_verb(analysis, narration), {}),
        ("ending", _ending(analysis, flaws), {}),
        ("verse", _verse_line(analysis, chooser), {}),
    )
    found = [Strength(kind, quote, figures) for kind, quote, figures in quoted if quote]
    # Always last: plain, true remarks for stories where nothing above applies (or was ruled out by an
    # issue it would contradict).
    return found + _clean_sentence_remarks(analysis, narration, flaws)


def _opening_line(analysis: Analysis, flaws: list[Hit]) -> str | None:
    """A short, complete, unflawed first sentence of narration that is not a familiar opening move."""
    doc = analysis.doc
    first = doc.sentences[0]
    if (3 <= len(first.words) <= 14 and not first.words[0].in_quote and _complete(analysis, 0)
            and not opening_cliche(doc.text[first.start:first.end])
            and not _hits_in(flaws, first.start, first.end)):
        return _whole_sentence(analysis, 0) or sentence_start(analysis, 0, 10)
    return None


def _dialogue_line(analysis: Analysis, chooser: Chooser) -> str | None:
    if not 0.05 <= analysis.dialogue_share <= 0.85:
        return None
    lines = [q for q in dialogue_lines(analysis) if 3 <= len(WORD_RE.findall(q)) <= 10]
    # Whole lines read best: ones that start with a capital, not the tail of an interrupted line.
    lines = [q for q in lines if q[:1].isupper()] or lines
    return chooser.pick("dialogue-line", lines) if lines else None


def _short_after_long(analysis: Analysis, narration: list[int]) -> str | None:
    """In prose whose sentence lengths vary widely, the first short sentence that follows a long one."""
    lengths = analysis.sentence_lengths
    _, cv = mean_and_cv(lengths)
    if cv is None or cv < 0.6:
        return None
    narration_set = set(narration)
    for i in range(1, len(lengths)):
        if 2 <= lengths[i] <= 6 and lengths[i - 1] >= 16 and i in narration_set:
            quote = _whole_sentence(analysis, i)
            if quote:
                return quote
    return None


def _specific_detail(analysis: Analysis, narration: list[int]) -> str | None:
    """A phrase around a number in a sentence of narration (a date, a price, a count)."""
    doc = analysis.doc
    for i in narration:
        s = doc.sentences[i]
        digit = next((w for w in s.words if any(c.isdigit() for c in w.text)), None)
        if digit is not None and len(s.words) >= 6:
            quote = phrase(doc, digit.start, digit.end, min_words=3, max_words=6, target=4, prefer="left",
                           exhaust=True)
            if quote and any(w.islower() for w in WORD_RE.findall(quote)):
                return quote
    return None


def _ending(analysis: Analysis, flaws: list[Hit]) -> str | None:
    """A short, complete, unflawed last sentence."""
    sentences = analysis.doc.sentences
    last_index = len(sentences) - 1
    last = sentences[last_index]
    if (last_index > 0 and 2 <= len(last.words) <= 9 and _complete(analysis, last_index)
            and not _hits_in(flaws + analysis.crutches, last.start, last.end)):
        return _whole_sentence(analysis, last_index)
    return None


def _verse_line(analysis: Analysis, chooser: Chooser) -> str | None:
    doc, lengths = analysis.doc, analysis.sentence_lengths
    lines = [i for i, s in enumerate(doc.sentences) if 2 <= lengths[i] <= 8 and doc.paragraphs[s.paragraph].verse]
    return _whole_sentence(analysis, chooser.pick("verse-line", lines)) if lines else None


def _clean_sentence_remarks(analysis: Analysis, narration: list[int], flaws: list[Hit]) -> list[Strength]:
    """Remarks about clean sentences of prose: a committed first sentence, then several candidates for
    voice, short whole sentences first, from the middle of the story (the writer skips any that another
    remark has already quoted)."""
    sentences, lengths = analysis.doc.sentences, analysis.sentence_lengths
    found: list[Strength] = []
    clean = [i for i in narration if not _hits_in(flaws + analysis.crutches + analysis.passives,
                                                  sentences[i].start, sentences[i].end)]
    if clean and clean[0] == 0:
        quote = sentence_start(analysis, 0, 8)
        if quote:
            found.append(Strength("committed", quote, {}))
    middle = len(clean) // 2
    ordered = clean[middle:] + clean[:middle]
    ordered.sort(key=lambda i: not 3 <= lengths[i] <= 10)
    for i in ordered[:4]:
        quote = _whole_sentence(analysis, i, 10) or sentence_start(analysis, i, 8)
        if quote:
            found.append(Strength("voice", quote, {}))
    if not clean:
        for i in range(min(len(sentences), 4)):
            quote = sentence_start(analysis, i, 8)
            if quote:
                found.append(Strength("voice", quote, {}))
    return found


def _imagery(analysis: Analysis, narration: list[int], flaws: list[Hit]) -> str | None:
    """The tightest run of at most seven words holding two different sensory words, from the sentence
    richest in them."""
    doc = analysis.doc
    best: tuple[int, int, int, int] | None = None  # (distinct sensory words, sentence, first, last)
    for i in narration:
        s = doc.sentences[i]
        if _hits_in(flaws, s.start, s.end):
            continue
        sensory = [k for k, w in enumerate(s.words) if w.lower in wl.SENSORY_WORDS]
        for a in range(len(sensory)):
            for b in range(len(sensory) - 1, a, -1):
                lo, hi = sensory[a], sensory[b]
                distinct = len({s.words[k].lower for k in sensory[a:b + 1]})
                if hi - lo + 1 <= 7 and distinct >= 2 and (best is None or distinct > best[0]):
                    best = (distinct, i, lo, hi)
                    break
    if best is None:
        return None
    _, i, lo, hi = best
    words = doc.sentences[i].words
    while hi - lo + 1 < 4 and lo > 0:
        lo -= 1  # take in the words before (usually the noun or verb the image belongs to)
    if lo > 0 and words[lo - 1].lower in wl.DETERMINERS and hi - lo + 1 < 8:
        lo -= 1  # "a door from one street", not "door from one street"
    while lo < hi and words[lo].lower in {"and", "or", "but", "of", "with", "to"}:
        lo += 1
    return _span_of_words(analysis, i, lo, hi)


_FIGURE_RE = re.compile(r"\b(?:like|as if|as though)\s+(\w+)", re.IGNORECASE)
# "like" that is a verb or a filler, not a comparison: "I like it", "would like to", "like that".
_NOT_FIGURE_BEFORE = wl.NOT_SIMILE_BEFORE
_NOT_FIGURE_AFTER = wl.NOT_SIMILE_AFTER


def _figurative(analysis: Analysis, narration: list[int], flaws: list[Hit]) -> str | None:
    """A simile ("like a step in an old church", "as if the ship had been teaching them")."""
    doc = analysis.doc
    for i in narration:
        s = doc.sentences[i]
        if _hits_in(flaws, s.start, s.end):
            continue
        for m in _FIGURE_RE.finditer(doc.text, s.start, s.end):
            before = next((w.lower for w in reversed(s.words) if w.end <= m.start()), "")
            if before in _NOT_FIGURE_BEFORE or m.group(1).lower() in _NOT_FIGURE_AFTER:
                continue
            first = next(k for k, w in enumerate(s.words) if w.start >= m.start())
            last = min(first + 7, len(s.words) - 1)
            while last > first + 2 and s.words[last].lower in wl.DANGLING:
                last -= 1
            if last - first >= 3:  # the comparison word and at least three more
                quote = _span_of_words(analysis, i, first, last)
                if quote:
                    return quote
    return None


def _vivid_verb(analysis: Analysis, narration: list[int]) -> str | None:
    """A vivid verb used as a verb: right after its subject (a pronoun, a name) or after "and"."""
    doc = analysis.doc
    for i in narration:
        s = doc.sentences[i]
        if _hits_in(analysis.adverbs, s.start, s.end):
            continue
        for k, w in enumerate(s.words[1:], start=1):
            before = s.words[k - 1]
            named = before.text[:1].isupper() and before.lower not in wl.DETERMINERS
            subject = before.lower in wl.SUBJECT_PRONOUNS or named or before.lower == "and"
            if w.lower in wl.VIVID_VERBS and subject:
                quote = phrase(doc, before.start, w.end, min_words=3, max_words=6, target=5)
                if quote:
                    return quote
    return None



def plain_strengths(analysis: Analysis) -> list[str]:
    doc = analysis.doc
    kinds: list[str] = []
    narration = analysis.narration_words
    if analysis.dialogue_share >= 0.05 and not analysis.tag_adverbs and not analysis.bookisms:
        kinds.append("clean_tags")
    if narration >= 100 and analysis.per_1000(analysis.adverbs) < 8:
        kinds.append("lean_adverbs")
    if narration >= 100 and analysis.per_1000(analysis.passives) < 3:
        kinds.append("active")
    if len(doc.paragraphs) >= 4 and max(p.words for p in doc.paragraphs) <= 150:
        kinds.append("paragraphing")
    _, cv = mean_and_cv(analysis.sentence_lengths)
    if cv is not None and cv >= 0.6:
        kinds.append("varied_rhythm")
    if 0 < len(doc.words) < 300:
        kinds.append("brevity")
    kinds.append("committed")
    return kinds
