"""The offline critique writer: three paragraphs to the writer, built from what the signals measured.

Shape: a specific strength (quoting a short phrase of the story), then the one to three strongest
measured issues (each with an exact short quote and a direction for the rewrite), then a different
strength and encouragement. Phrasing is chosen per slot from a hash of the story, so the same story
always gets the same critique while many stories do not read as one template.
"""

from __future__ import annotations

import re

from coach.domain.critic.advice import issue_text, soft_suggestions
from coach.domain.critic.chooser import Chooser
from coach.domain.critic.report import RankedNote, ranked_notes
from coach.domain.critic.signals import WORD_RE, Analysis, analyse, quotable
from coach.domain.critic.strengths import (
    PLAIN_STRENGTHS,
    STRENGTH_TEMPLATES,
    Strength,
    find_strengths,
    plain_strengths,
)

OFFLINE_MODEL = "coach-offline-critic-v1"
MAX_QUOTES = 4
MAX_WORDS = 350
MIN_WORDS = 90
_THIRD_PERSON_RE = re.compile(r"\b(?:the|this|that|our)\s+(?:author|writer)s?\b", re.IGNORECASE)
_TRUNCATION_RE = re.compile(r"\[\s*story truncated[^\]\n]*\]\s*\Z", re.IGNORECASE)

_EXTRA_ADVICE = (
    "Reading the draft aloud is the quickest test of rhythm: wherever you stumble, the reader will too.",
    "When you revise, ask of every sentence what it adds that the reader does not already know.",
    "Let one concrete detail (a sound, a texture, an object in someone's hand) carry the feeling you want.",
)

_ENCOURAGEMENTS = (
    "The foundations are here, and a focused revision pass will make them much easier to see.",
    "Keep that instinct as you revise, and the story will read as confidently as its best lines.",
    "With one careful revision aimed at the points above, this could be a piece you are proud to share.",
    "You clearly have the instincts; now it is a matter of trusting them on every page.",
    "Hold on to that as you revise, and the story will only get stronger.",
    "That is worth protecting in every draft, so build your revision around it.",
)

_ISSUE_LEADS = (
    "Where the draft could grow is in a few habits that are easy to fix.",
    "There are a few things I would work on in revision.",
    "The place to focus your revision is the prose at the level of the sentence.",
    "Now for what would lift the piece further.",
)

_SOFT_LEADS = (
    "There is little to fix at the level of the sentence, so my suggestion is about shape and emphasis.",
    "The prose is clean, so the revision I would suggest is a finer one.",
    "Since the sentence-level habits are largely under control, here is where I would push further.",
)

_CONNECTORS = ("Beyond that, ", "Also, ", "Separately, ", "In the same spirit, ")
_LAST_CONNECTORS = ("Finally, ", "Lastly, ", "Last of all, ")


# Praise that a raised issue (or a measured note) would contradict: never say both.
_CONFLICTS: dict[str, frozenset[str]] = {
    "dialogue_tag_adverbs": frozenset({"clean_tags"}),
    "said_bookisms": frozenset({"clean_tags"}),
    "adverbs": frozenset({"lean_adverbs"}),
    "passive_voice": frozenset({"active"}),
    "sentence_rhythm": frozenset({"rhythm", "varied_rhythm"}),
    "hard_sentences": frozenset({"rhythm", "varied_rhythm"}),
    "repeated_openers": frozenset({"rhythm", "varied_rhythm"}),
    "opening_line": frozenset({"opening", "committed"}),
    "long_paragraph": frozenset({"paragraphing"}),
    "dialogue_balance": frozenset({"dialogue", "clean_tags"}),
    # soft suggestions
    "short": frozenset({"brevity"}),
    "ending": frozenset({"ending"}),
    "opening": frozenset({"opening", "committed"}),
    "dialogue": frozenset({"dialogue"}),
    "longest": frozenset({"rhythm"}),
    "lines": frozenset({"verse"}),
}
_SUGGESTION_CONFLICTS: dict[str, frozenset[str]] = {
    "ending": frozenset({"ending"}),
    "opening": frozenset({"opening", "committed"}),
    "dialogue": frozenset({"dialogue"}),
    "rhythm": frozenset({"longest"}),
    "verse": frozenset({"lines"}),
}

_BRIDGES = (
    "It is the kind of choice that makes a reader settle in and trust the story.",
    "Moments like that show you know what the story needs.",
    "That kind of control is hard to teach, and you already have it.",
    "",
)
_CLOSING_LEADS = ("", "Above all, ", "Most of all, ")


def _lower_first(text: str) -> str:
    first_word = text.split(" ", 1)[0]
    acronym = len(first_word) > 1 and first_word.isupper()
    if first_word == "I" or first_word.startswith("I'") or acronym or not text[:1].isupper():
        return text
    return text[:1].lower() + text[1:]


def _word_count(text: str) -> int:
    return len(WORD_RE.findall(text))


def _strength_sentence(strength: Strength, chooser: Chooser, slot: str) -> str:
    template = chooser.pick(f"{slot}-{strength.kind}", STRENGTH_TEMPLATES[strength.kind])
    return template.format(q=strength.quote, **strength.figures)


def _empty_critique(chooser: Chooser) -> str:
    return "\n\n".join((
        chooser.pick("empty-1", (
            "You have sent something to read, and starting is the hardest part of any story. Right now, "
            "though, there is no prose here for me to respond to: no sentences yet with images, voices or "
            "rhythm that I can point to and praise.",
            "You have taken the first step by putting something on the page. At the moment, though, there "
            "are no sentences here yet, so there is no imagery, dialogue or rhythm I can point to.",
        )),
        "Write a scene of a few hundred words: one character in one place, wanting one thing, with at "
        "least one concrete detail the reader can see or hear and one line of dialogue. Then you will have "
        "something whose opening, pacing and word choice can be looked at closely.",
        "When you send a draft with a few paragraphs of prose, you will get notes on what already works in "
        "it and on the one or two habits that would lift it most. Keep writing.",
    ))


def _choose_notes(notes: list[RankedNote]) -> list[RankedNote]:
    """The strongest one to three notes, one per group; weaker ones only when they are strong enough."""
    chosen: list[RankedNote] = []
    groups: set[str] = set()
    for note in notes:
        if note.group in groups:
            continue
        if len(chosen) == 3 or (len(chosen) == 2 and note.severity < 1.5) or (
                len(chosen) == 1 and note.severity < 1.0):
            break
        chosen.append(note)
        groups.add(note.group)
    return chosen


def _middle(issue_texts: list[str], lead: str, chooser: Chooser) -> str:
    parts = [lead, issue_texts[0]]
    for k, sentence in enumerate(issue_texts[1:], start=1):
        connectors = _LAST_CONNECTORS if k == len(issue_texts) - 1 and k >= 2 else _CONNECTORS
        parts.append(chooser.pick(f"connector-{k}", connectors) + _lower_first(sentence))
    return " ".join(parts)


class _Quotes:
    """The passages of the story quoted so far: each quote is an exact span, and no passage is quoted twice."""

    def __init__(self, text: str) -> None:
        self._text = text
        self.used: list[tuple[int, int]] = []  # story offsets of the passages quoted so far

    def fits(self, quote: str | None) -> bool:
        if quote is None or len(self.used) >= MAX_QUOTES or not quotable(quote):
            return False
        if _THIRD_PERSON_RE.search(quote):  # even quoted, "the author" reads as talk about the writer
            return False
        start = self._text.find(quote)  # the guarantee every quote relies on: an exact span of the story
        if start < 0:
            return False
        end = start + len(quote)
        return not any(start < b and a < end for a, b in self.used)  # one passage is quoted once

    def take(self, quote: str | None) -> bool:
        if quote is None or not self.fits(quote):
            return False
        start = self._text.find(quote)
        self.used.append((start, start + len(quote)))
        return True


def _plain_strength(analysis: Analysis, chooser: Chooser, excluded: set[str], slot: str) -> tuple[str, str]:
    """(kind, sentence) of praise that needs no quote, for when no measured strength can be quoted."""
    kinds = [k for k in plain_strengths(analysis) if k not in excluded] or ["committed"]
    kind = chooser.pick(f"plain-{slot}", kinds)
    # Changing a slot name changes the phrasing every story gets, so they stay as they are.
    text_slot = f"plain-{kind}" if slot == "open" else f"plain-close-{kind}"
    return kind, chooser.pick(text_slot, PLAIN_STRENGTHS[kind])


def _opening_paragraph(strengths: list[Strength], analysis: Analysis, chooser: Chooser, quotes: _Quotes,
                       excluded: set[str]) -> tuple[Strength | None, str]:
    """Paragraph 1, what works: the first quotable strength, else plain praise (whose kind is then used)."""
    opening = next((s for s in strengths if quotes.take(s.quote)), None)
    if opening is None:
        kind, paragraph = _plain_strength(analysis, chooser, excluded, "open")
        excluded.add(kind)
        return None, paragraph
    paragraph = _strength_sentence(opening, chooser, "open")
    return opening, f"{paragraph} {chooser.pick('bridge', _BRIDGES)}".strip()


def _measured_issues(notes: list[RankedNote], chooser: Chooser, quotes: _Quotes) -> list[str]:
    """The chosen notes as advice, each with its own quote."""
    issue_texts: list[str] = []
    for note in _choose_notes(notes):
        # Keep one quote for the closing praise unless a third issue is strong enough to need it.
        if len(quotes.used) >= MAX_QUOTES - (1 if len(issue_texts) < 2 else 0):
            break
        quote = next((q for q in note.quotes if quotes.fits(q)), None)
        sentence = issue_text(note, quote, chooser)
        if sentence and quotes.take(quote):
            issue_texts.append(sentence)
    return issue_texts


def _finer_suggestions(analysis: Analysis, chooser: Chooser, quotes: _Quotes, blocked: frozenset[str],
                       excluded: set[str]) -> list[str]:
    """Suggestions for a story with no measured issue worth raising; praise they contradict is excluded."""
    issue_texts: list[str] = []
    for kind, quote, sentence in soft_suggestions(analysis, chooser):
        if kind in blocked or len(quotes.used) >= MAX_QUOTES - 1 or not quotes.take(quote):
            continue
        issue_texts.append(sentence)
        excluded |= _CONFLICTS.get(kind, frozenset())
        if len(issue_texts) == 2 or len(analysis.doc.words) >= 150:
            break
    return issue_texts


def _middle_lead(issue_texts: list[str], soft: bool, chooser: Chooser) -> str:
    if issue_texts:
        return chooser.pick("soft-lead" if soft else "lead", _SOFT_LEADS if soft else _ISSUE_LEADS)
    return chooser.pick("fallback-middle", (
        "To take the piece further, read it aloud from start to finish and mark every place where your "
        "attention drifts; those are the sentences to cut or sharpen, and the rhythm will tell you where "
        "a scene needs a pause or a faster beat.",
        "For the next draft, pick the single moment that matters most and slow it down: give it one more "
        "concrete detail, one more beat of action, and let the sentences around it move faster.",
    ))


def _closing_paragraph(strengths: list[Strength], opening: Strength | None, analysis: Analysis,
                       chooser: Chooser, quotes: _Quotes, excluded: set[str]) -> str:
    """Paragraph 3: a strength different from the opening one, then encouragement."""
    closing_strength = None
    for strength in strengths:
        different = opening is None or strength.kind != opening.kind
        if different and strength.kind not in excluded and quotes.take(strength.quote):
            closing_strength = _strength_sentence(strength, chooser, "close")
            break
    if closing_strength is None:
        _, closing_strength = _plain_strength(analysis, chooser, excluded, "close")
    closing_lead = chooser.pick("closing-lead", _CLOSING_LEADS)
    return f"{closing_lead}{_lower_first(closing_strength) if closing_lead else closing_strength} " + (
        chooser.pick("encourage", _ENCOURAGEMENTS))


def _within_word_budget(first: str, issue_texts: list[str], lead: str, closing: str, chooser: Chooser) -> str:
    """The three paragraphs, dropping the weakest issues above MAX_WORDS and adding general advice
    below MIN_WORDS (a very short story can leave the critique thin)."""
    while True:
        middle = _middle(issue_texts, lead, chooser) if issue_texts else lead
        critique = "\n\n".join((first, middle, closing))
        if _word_count(critique) <= MAX_WORDS or len(issue_texts) <= 1:
            break
        issue_texts.pop()
    extras = list(_EXTRA_ADVICE)
    start = chooser.index("extra", len(extras))
    extras = extras[start:] + extras[:start]
    while _word_count(critique) < MIN_WORDS and extras:
        middle = f"{middle} {extras.pop(0)}"
        critique = "\n\n".join((first, middle, closing))
    return critique


def write_critique(text: str, *, title: str = "") -> str:
    """A deterministic second-person critique of a story: praise, the strongest issues, praise.

    Pure: no network, no randomness. Never raises on any string; a story with no words gets a short,
    honest critique saying there is no prose to respond to yet.
    """
    chooser = Chooser(text, title)
    # A story cut for length may carry a closing notice; its ending is then not the writer's ending.
    notice = _TRUNCATION_RE.search(text)
    analysis = analyse(text[:notice.start()] if notice else text)
    if not analysis.doc.words:
        return _empty_critique(chooser)

    quotes = _Quotes(text)
    notes = ranked_notes(analysis)
    excluded: set[str] = {"ending"} if notice else set()
    for note in notes:
        excluded |= _CONFLICTS.get(note.note.code, frozenset())

    strengths = [s for s in find_strengths(analysis, chooser) if s.kind not in excluded]
    # Rotate the order of the leading strengths by the story's hash so openings vary across a dataset.
    if len(strengths) > 1:
        shift = chooser.index("strength-order", min(len(strengths), 3))
        strengths = strengths[shift:] + strengths[:shift]

    opening, first_paragraph = _opening_paragraph(strengths, analysis, chooser, quotes, excluded)
    # Paragraph 2: what to improve, from the measured notes; or finer suggestions for a clean story.
    issue_texts = _measured_issues(notes, chooser, quotes)
    soft = not issue_texts
    if soft:
        blocked = _SUGGESTION_CONFLICTS.get(opening.kind, frozenset()) if opening else frozenset()
        if notice:
            blocked |= {"ending"}
        issue_texts = _finer_suggestions(analysis, chooser, quotes, blocked, excluded)
    lead = _middle_lead(issue_texts, soft, chooser)
    closing = _closing_paragraph(strengths, opening, analysis, chooser, quotes, excluded)
    return _within_word_budget(first_paragraph, issue_texts, lead, closing, chooser)
