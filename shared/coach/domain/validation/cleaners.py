"""Cleaners: artifacts a human editor would simply delete, after which the rest is judged on its merits.

Each cleaner takes text and returns a Cleaning: the new text and the spans it removed (offsets into the
text it was given). The engine runs them in order and records the code of every cleaner that changed
something. A cleaner never invents text; it only removes.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass, field

from coach.domain.validation.text import Span, normalise_whitespace, paragraphs, sentences

STRIP_DELIMITERS = "strip_delimiters"
STRIP_LABEL = "strip_label"
DROP_METHOD_PARAGRAPH = "drop_method_paragraph"
CLEANERS = (STRIP_DELIMITERS, STRIP_LABEL, DROP_METHOD_PARAGRAPH)


@dataclass
class Cleaning:
    text: str
    removed: list[Span] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        return bool(self.removed)


# --- strip_delimiters -------------------------------------------------------------------------------

_BANNER_WORDS = (
    r"(?:(?:END|START|BEGIN)(?:\s+OF)?\s+)?(?:THE\s+)?(?:STORY|FEEDBACK|CRITIQUE)(?:\s+(?:ENDS|STARTS|BEGINS))?"
)
# A whole line that is a banner: rule characters with an optional banner word, "END STORY" on its own,
# the end-of-feedback marker, or a copied "Title:" line from the story block.
_DELIMITER_LINE_RE = re.compile(
    rf"[ \t]*(?:[=*#~_\-<>\[\]]{{3,}}[ \t]*(?:{_BANNER_WORDS})?[ \t]*[=*#~_\-<>\[\]]*"
    rf"|[=#<\[]{{1,}}[ \t]*{_BANNER_WORDS}[ \t]*[=#>\]]*"
    r"|END(?:\s+OF)?\s+(?:THE\s+)?(?:STORY|FEEDBACK)\.?"
    r"|<<\s*END\s+OF\s+FEEDBACK\s*>>"
    r"|Title:[^\n]*)[ \t]*",
    re.IGNORECASE,
)
_MAX_BANNER_LINE = 120
# Banners copied into the middle of a line ("... === END STORY === Your opening ...").
_DELIMITER_INLINE_RE = re.compile(
    rf"[ \t]*(?:[=#]{{2,}}[ \t]*{_BANNER_WORDS}[ \t]*[=#]{{2,}}|<<\s*END\s+OF\s+FEEDBACK\s*>>"
    r"|\bEND(?:\s+OF)?\s+STORY\b)[ \t]*",
)


_INLINE_HINTS = ("==", "##", "<<", "END")


def strip_delimiters(text: str) -> Cleaning:
    removed: list[Span] = []
    kept: list[str] = []
    # Whole banner lines first (only short lines can be banners), then banners left inside a line.
    pos = 0
    for line in text.split("\n"):
        if len(line) <= _MAX_BANNER_LINE and line.strip() and _DELIMITER_LINE_RE.fullmatch(line):
            removed.append(Span(pos, pos + len(line), line))
        else:
            kept.append(line)
        pos += len(line) + 1
    first = "\n".join(kept) if removed else text
    line_removed = list(removed)
    removed.clear()

    def cut(match: re.Match[str]) -> str:
        if match.group().strip():
            removed.append(Span(match.start(), match.end(), match.group()))
        return ""

    second = _DELIMITER_INLINE_RE.sub(cut, first) if any(h in first for h in _INLINE_HINTS) else first
    inline_removed = [_locate(text, span) for span in removed]
    if not line_removed and not inline_removed:
        return Cleaning(text)
    spans = sorted(line_removed + inline_removed, key=lambda s: s.start)
    return Cleaning(normalise_whitespace(second), spans)


def _locate(original: str, span: Span) -> Span:
    """Where a span removed from an intermediate text sits in the original (first match)."""
    at = original.find(span.text)
    return Span(at, at + len(span.text), span.text) if at >= 0 else span


# --- strip_label --------------------------------------------------------------------------------------

_LABEL_RE = re.compile(
    r"\A[ \t]*(?:[*_#]+[ \t]*)?"
    r"(?:(?:my|the|an?|editor'?s?|editorial|written|your)[ \t]+)*"
    r"(?:feedback|critique|response|review|answer|notes|editor'?s?\s+notes)"
    r"(?:[ \t]+(?:on|for)[ \t]+(?:your|the|this)[ \t]+story)?"
    r"[ \t]*(?:[*_]+[ \t]*)?(?::[ \t]*(?:[*_]+)?[ \t]*\n?|[ \t]*(?:[*_]+)?[ \t]*(?:\n|\Z))\s*",
    re.IGNORECASE,
)


def strip_label(text: str) -> Cleaning:
    """Drop a leading "FEEDBACK:" style label (the prompt's closing label, echoed back)."""
    match = _LABEL_RE.match(text)
    if not match:
        return Cleaning(text)
    return Cleaning(text[match.end():].lstrip(), [Span(match.start(), match.end(), match.group())])


# --- drop_method_paragraph ----------------------------------------------------------------------------

_META = (
    r"(?:commend|praise|compliment|positives?|negatives?|strengths?|weakness(?:es)?|what works|"
    r"what (?:you )?did well|what (?:could|can|might) (?:be )?improve|criticism|critique|critical|feedback|"
    r"areas?\s+(?:for|of|to|that)|improvement|improve|suggestions?|constructive)"
)
_METHOD_RES = (
    # Naming the method itself.
    re.compile(
        r"\b(?:compliment|feedback|praise|criticism|critique|hamburger|oreo)\s+sandwich"
        r"|\bsandwich\s+(?:method|technique|approach|format|structure|model)\b"
        r"|\b(?:slices?|bread|buns?|filling|layers?) of (?:the|my|this|a) sandwich\b",
        re.IGNORECASE,
    ),
    # Announcing the plan: "First, I will commend you ..., then ...".
    re.compile(
        r"^(?:(?:first(?:ly)?|to (?:start|begin)|before I (?:begin|start)|in (?:this|my) (?:feedback|critique|"
        r"review))\s*,?\s*)?(?:I will|I'll|I am going to|I'm going to|I want to|I'd like to|I would like to|"
        r"let me|we will|we'll|my (?:feedback|critique) will)\b[^.!?]*?" + _META + r"[^.!?]*?"
        r"\b(?:then|followed by|before|after that|and (?:finally|finish|end|close|conclude)|next|afterwards)\b",
        re.IGNORECASE,
    ),
    re.compile(
        r"^(?:first(?:ly)?|to (?:start|begin))\s*,?\s*(?:I will|I'll|I am going to|I'm going to|let me)\s+"
        r"(?:commend|praise|compliment|point out|highlight|tell you|start|begin)\b",
        re.IGNORECASE,
    ),
    # Describing a feedback method in general terms.
    re.compile(
        r"\b(?:feedback|critique|criticism|praise|compliment)\w*\b[^.!?]{0,40}\b(?:method|technique|approach|"
        r"format|framework|structure)\b[^.!?]{0,60}\b(?:is|involves|consists|means|works|where|which|that)\b"
        r"|\b(?:method|technique|approach|format|framework)\b[^.!?]{0,30}\b(?:of|for) (?:giving|delivering|"
        r"offering|providing|sharing) (?:feedback|criticism|critique)",
        re.IGNORECASE,
    ),
    # A preamble line: "Here is my feedback on your story:" / "Sure!".
    re.compile(
        r"^(?:(?:sure|certainly|of course|okay|ok|absolutely|happy to help)[!.,]*\s*)?"
        r"(?:here is|here's|below is|below are|what follows is|the following is|here are)\b[^.!?]{0,60}"
        r"\b(?:feedback|critique|review|thoughts|notes|assessment|comments)\b[^.!?]{0,40}[:.!]?$",
        re.IGNORECASE,
    ),
    re.compile(r"^(?:sure|certainly|of course|okay|absolutely|happy to help)[!.,]*$", re.IGNORECASE),
)
# Patterns that still mean "method talk" when they survive cleaning inside a paragraph.
RESIDUAL_METHOD_RES = _METHOD_RES[:4]


# Every method pattern needs one of these (lowercase) substrings, or opens like a preamble ("Here is my
# feedback", "Sure!"): a plain substring test rules out most sentences before any pattern runs.
METHOD_HINTS = (
    "sandwich", "i'll", "i’ll", "i will", "i am going", "i'm going", "i’m going", "i want", "i would like",
    "i'd like", "i’d like", "let me", "we'll", "we will", "my feedback", "my critique", "method", "technique",
    "approach", "format", "framework", "structure",
)
_PREAMBLE_START_RE = re.compile(
    r"(?:\A|\n)[^\w\n]*(?:here|below|what follows|the following|sure|certainly|of course|okay|ok|absolutely"
    r"|happy to)\b",
    re.IGNORECASE,
)


def has_method_hint(text: str, *, preamble: bool = True) -> bool:
    low = text.lower()
    return any(hint in low for hint in METHOD_HINTS) or (preamble and bool(_PREAMBLE_START_RE.search(text)))


def is_method_sentence(sentence: str) -> bool:
    sentence = sentence.strip()
    if not has_method_hint(sentence):
        return False
    return any(pattern.search(sentence) for pattern in _METHOD_RES)


# What ties a sentence to this particular story: a quotation, "your opening" and the like, or a name.
_STORY_REFERENCE_RE = re.compile(
    r"[\"“‘]|\b(?:story|stories|piece|tale|opening|endings?|dialogue|narrator|characters?|protagonist|scenes?"
    r"|prose|title|premise|plot|twist|climax|sentences?|paragraphs?|lines?|images?|imagery|voice|tone|pacing"
    r"|metaphors?|descriptions?|details?|moments?)\b",
    re.IGNORECASE,
)
_NAME_RE = re.compile(r"(?<=[a-z,;] )[A-Z][a-z]{2,}")


@functools.lru_cache(maxsize=256)
def story_names(story: str) -> frozenset[str]:
    """Capitalised words that appear mid-sentence in the story: its characters and places."""
    return frozenset(_NAME_RE.findall(story))


def _about_the_story(sentence: str, names: frozenset[str]) -> bool:
    if _STORY_REFERENCE_RE.search(sentence):
        return True
    return any(word in names for word in re.findall(r"[A-Z][a-z]{2,}", sentence))


def _method_sentences(sents: list[Span], names: frozenset[str]) -> int:
    """How many sentences at the start of a paragraph explain the method: a method sentence, and the
    general talk about feedback that follows it until the critique of this story begins."""
    cut = 0
    while cut < len(sents) and is_method_sentence(sents[cut].text):
        cut += 1
    if cut:
        while cut < len(sents) and not _about_the_story(sents[cut].text, names):
            cut += 1
    return cut


def drop_method_paragraph(text: str, story: str = "") -> Cleaning:
    """Drop leading sentences that explain the feedback method, and paragraphs made only of such talk."""
    if not has_method_hint(text):
        return Cleaning(text)
    names = story_names(story)
    removed: list[Span] = []
    kept: list[str] = []
    leading = True
    for para in paragraphs(text):
        sents = sentences(para.text)
        cut = _method_sentences(sents, names) if leading else 0
        if cut == len(sents) or all(is_method_sentence(s.text) for s in sents):
            removed.append(Span(para.start, para.end, para.text))
            continue
        if cut:
            end = sents[cut].start
            removed.append(Span(para.start, para.start + end, para.text[:end]))
            kept.append(para.text[end:])
        else:
            kept.append(para.text)
        leading = False
    if not removed:
        return Cleaning(text)
    return Cleaning(normalise_whitespace("\n\n".join(kept)), removed)
