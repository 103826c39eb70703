"""Planted flaws: known, detectable craft problems inserted into copies of held-out stories.

Each kind is a habit an editor is expected to name. A copy gets exactly one kind, placed where a hash of
the story id decides, so the same story always gets the same copy. `names_flaw` says whether a critique
names a kind of flaw; comparing how often it does on the planted copy and on the untouched story gives
the detection lift, and mentions on the untouched story are the false alarms.
"""

from __future__ import annotations

import hashlib
import re
from typing import Literal, get_args

from pydantic import BaseModel, ConfigDict, Field

FlawKind = Literal["adverb_tags", "filter_words", "suddenly_opening", "told_emotion", "repeated_word"]
FLAW_KINDS: tuple[FlawKind, ...] = get_args(FlawKind)

_PARAGRAPH_SPLIT = re.compile(r"\n[ \t]*\n\s*")
_QUOTED = re.compile(r"[\"“][^\"”\n]*[\"”]")
# Lines of speech with an adverb on the tag: (line ending in its own punctuation, tag verb, adverb).
_TAGGED_LINES = (
    ("Are you sure about this?", "asked", "nervously"),
    ("We should go back,", "said", "quietly"),
    ("It doesn't matter now,", "said", "sadly"),
    ("Then tell me what happened,", "said", "angrily"),
    ("I never wanted any of this,", "whispered", "softly"),
    ("Just wait a moment,", "replied", "impatiently"),
    ("You could have told me,", "said", "bitterly"),
)
_FILTER_PARAGRAPHS = (
    "{S} saw that the light had changed. {S} heard the clock in the hall and felt the cold come up through "
    "the floor. {S} noticed that nobody else had moved, and {s} realized that the waiting was the worst part.",
    "{S} watched the door for a long time. {S} heard footsteps somewhere below and felt {p} heart speed up. "
    "{S} noticed the smell of rain and realized that the window had been open all along.",
)
_TOLD_EMOTION_PARAGRAPHS = (
    "{S} was angry. {S} felt sad and lonely, and {s} was afraid of what would happen next. {S} was nervous "
    "about all of it.",
    "{S} felt happy for a moment, then {s} was sad again. {S} was scared, and {s} felt guilty about being scared.",
)
_SUDDENLY = ("Suddenly, everything changed.", "Suddenly, there was a noise at the door.",
             "Suddenly, the lights went out.")
_REPEATABLE = ("strange", "heavy", "silent", "narrow", "hollow", "bright", "gentle")
_REPEAT_TEMPLATE = ("The evening was {w}: the street was {w}, the house was {w}, and even the sky looked {w}.")
# First words that are ordinary sentence openers (safe to lowercase after "Suddenly, ").
_COMMON_OPENERS = frozenset((
    "the", "a", "an", "it", "there", "he", "she", "they", "we", "my", "his", "her", "their", "this", "that",
    "when", "in", "on", "at", "one", "after", "before", "as", "if", "nobody", "everyone", "someone", "no",
    "every", "all", "most",
))


class PlantedFlaw(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: FlawKind
    text: str
    planted: list[str] = Field(default_factory=list)  # the inserted passages, verbatim
    word: str | None = None  # repeated_word: the word repeated


def _hash(key: str) -> int:
    return int.from_bytes(hashlib.sha256(key.encode("utf-8")).digest()[:8], "big")


def _subject(text: str) -> tuple[str, str, str]:
    """(Subject, subject, possessive) matching the story's narration: I, he or she."""
    narration = _QUOTED.sub(" ", text)
    counts = {
        "I": len(re.findall(r"\bI\b", narration)),
        "he": len(re.findall(r"\bhe\b", narration, re.IGNORECASE)),
        "she": len(re.findall(r"\bshe\b", narration, re.IGNORECASE)),
    }
    chosen = max(counts, key=lambda k: (counts[k], k == "she"))
    if chosen == "I":
        return "I", "I", "my"
    return (chosen.capitalize(), chosen, "his" if chosen == "he" else "her")


def _insert_paragraphs(text: str, new: list[str], key: str) -> str:
    """Insert paragraphs after one of the story's inner paragraphs (never before the first)."""
    paragraphs = [p for p in _PARAGRAPH_SPLIT.split(text.strip()) if p.strip()]
    # Between two paragraphs, never before the first; a one-paragraph story gets it after.
    at = 1 if len(paragraphs) <= 2 else 1 + _hash(key) % (len(paragraphs) - 1)
    return "\n\n".join(paragraphs[:at] + new + paragraphs[at:])


def plant(text: str, kind: FlawKind, key: str) -> PlantedFlaw:
    """A copy of the story with one flaw of this kind; `key` (the story id) makes the choice repeatable."""
    seed = _hash(f"{key}:{kind}")
    S, s, p = _subject(text)
    if kind == "adverb_tags":
        start = seed % len(_TAGGED_LINES)
        lines = [_TAGGED_LINES[(start + i) % len(_TAGGED_LINES)] for i in range(3)]
        speaker = S if S == "I" else s
        new = [f'"{line}" {speaker} {verb} {adverb}.' for line, verb, adverb in lines]
        return PlantedFlaw(kind=kind, text=_insert_paragraphs(text, new, key), planted=new)
    if kind == "filter_words":
        paragraph = _FILTER_PARAGRAPHS[seed % len(_FILTER_PARAGRAPHS)].format(S=S, s=s, p=p)
        return PlantedFlaw(kind=kind, text=_insert_paragraphs(text, [paragraph], key), planted=[paragraph])
    if kind == "told_emotion":
        paragraph = _TOLD_EMOTION_PARAGRAPHS[seed % len(_TOLD_EMOTION_PARAGRAPHS)].format(S=S, s=s, p=p)
        return PlantedFlaw(kind=kind, text=_insert_paragraphs(text, [paragraph], key), planted=[paragraph])
    if kind == "suddenly_opening":
        body = text.strip()
        first_word = re.match(r"[A-Za-z']+", body)
        if first_word and first_word.group().lower() in _COMMON_OPENERS:
            lowered = body[0].lower() + body[1:] if first_word.group() != "I" else body
            sentence_end = re.search(r"[.!?…](?=\s|$)", lowered)
            opening = "Suddenly, " + (lowered[: sentence_end.end()] if sentence_end else lowered)
            return PlantedFlaw(kind=kind, text="Suddenly, " + lowered, planted=[opening])
        sentence = _SUDDENLY[seed % len(_SUDDENLY)]
        return PlantedFlaw(kind=kind, text=f"{sentence}\n\n{body}", planted=[sentence])
    if kind == "repeated_word":
        present = {w.lower() for w in re.findall(r"[A-Za-z]+", text)}
        choices = [w for w in _REPEATABLE if w not in present] or list(_REPEATABLE)
        word = choices[seed % len(choices)]
        sentence = _REPEAT_TEMPLATE.format(w=word)
        return PlantedFlaw(kind=kind, text=_insert_paragraphs(text, [sentence], key), planted=[sentence],
                           word=word)
    raise ValueError(f"unknown flaw kind {kind!r}")


# -- does a critique name the flaw? ----------------------------------------------------------------------

_SENTENCE_SPLIT = re.compile(r"(?<=[.!?…])[\"'”’)]*\s+|\n+")
_ADVERB = re.compile(r"\badverbs?\b|-ly\b")
_SPEECH = re.compile(r"\b(?:dialogue|tags?|speech|said|asked|replied|whispered|spoken)\b")
_FILTER = re.compile(r"\bfilter(?:s|ed|ing)?\b|\bperceiv\w*|\bperception\b")
_SUDDEN = re.compile(r"\bsudden(?:ly)?\b")
_OPENING = re.compile(r"\b(?:opening|first (?:line|sentence|words)|the way (?:you|it) (?:open|begin|start)s?)\b")
_STOCK = re.compile(r"\b(?:clich\w*|familiar|generic|abrupt\w*|crutch\w*|stock|overused|seen (?:often|before)"
                    r"|start(?:ing)? closer|in medias res)\b")
_EMOTION = re.compile(r"\b(?:emotions?|emotional|feelings?)\b")
_TELLING = re.compile(r"\b(?:tells?|told|telling|nam(?:e|es|ed|ing)|label\w*|stat(?:e|es|ed|ing)"
                      r"|rather than show\w*|instead of show\w*)\b")
_SHOW_DONT_TELL = re.compile(r"\bshow(?:ing)?,? (?:don'?t|not) tell\w*\b")
_REPETITION = re.compile(r"\b(?:repeat\w*|repetition|echo\w*|recur\w*|again|times|comes? back|overus\w*)\b")


def _sentences(critique: str) -> list[str]:
    folded = critique.lower().replace("’", "'").replace("‘", "'")
    return [s for s in _SENTENCE_SPLIT.split(folded) if s.strip()]


def names_flaw(critique: str, kind: FlawKind, *, word: str | None = None) -> bool:
    """Whether the critique names this kind of flaw (in one sentence: the habit and what it is about)."""
    for sentence in _sentences(critique):
        if kind == "adverb_tags" and _ADVERB.search(sentence) and _SPEECH.search(sentence):
            return True
        if kind == "filter_words" and _FILTER.search(sentence):
            return True
        if kind == "suddenly_opening" and (
                _SUDDEN.search(sentence) or (_OPENING.search(sentence) and _STOCK.search(sentence))):
            return True
        if kind == "told_emotion" and (
                (_EMOTION.search(sentence) and _TELLING.search(sentence)) or _SHOW_DONT_TELL.search(sentence)):
            return True
        if kind == "repeated_word" and word and re.search(rf"\b{re.escape(word.lower())}\b", sentence) and (
                _REPETITION.search(sentence)):
            return True
    return False
