"""Fake fine-tuned critics, as reply functions for FakeOpenAIServer(replies_by_model=...).

Each imitates one way a distilled critic turns out: a good one (it writes what the offline critic writes,
which quotes the story and names what it measures), one that loops at the end, one that retells the story
instead of critiquing it, and one that writes tidy, grounded praise but never names a problem.
"""

from __future__ import annotations

import re
from typing import Any

from coach.domain.critic import write_critique
from tests.fakes.openai_server import story_from_messages

GOOD = "ft:gpt-4o-mini-2024-07-18:acme:coach-good:g00d1"
LOOPING = "ft:gpt-4o-mini-2024-07-18:acme:coach-loops:l00p1"
RETELLING = "ft:gpt-4o-mini-2024-07-18:acme:coach-retells:r3t3l"
BLIND = "ft:gpt-4o-mini-2024-07-18:acme:coach-blind:bl1nd"

_SENTENCE = re.compile(r"[^.!?\n\"“”]{20,}?[.!?]")


def _story(messages: list[dict[str, Any]]) -> str:
    return story_from_messages(messages)


def good(messages: list[dict[str, Any]]) -> str:
    return write_critique(_story(messages))


def looping(messages: list[dict[str, Any]]) -> str:
    """A sound critique whose last sentence then repeats, as a model that missed its stop does."""
    critique = good(messages)
    last = critique.rsplit(". ", 1)[-1].strip()
    return critique + (" " + last) * 12


def retelling(messages: list[dict[str, Any]]) -> str:
    """Summarises the plot in the story's own words instead of giving feedback."""
    story = _story(messages)
    words = story.split()
    return "Your story goes like this. " + " ".join(words[:170])


def _phrase(story: str, which: float) -> str:
    """Five words of a narration sentence somewhere in the story, copied exactly."""
    sentences = [s.strip() for s in _SENTENCE.findall(story) if len(s.split()) >= 6]
    if not sentences:
        return " ".join(story.split()[:5])
    sentence = sentences[min(len(sentences) - 1, int(len(sentences) * which))]
    return " ".join(sentence.split()[:5]).strip(",;:")


def blind(messages: list[dict[str, Any]]) -> str:
    """Well-formed and grounded, and silent about every problem the story has."""
    story = _story(messages)
    first, second = _phrase(story, 0.4), _phrase(story, 0.7)
    return (
        f'You have a real feel for a scene. A line like "{first}" draws the reader in, and the details you '
        "choose feel lived in rather than listed, so the world of the piece is easy to believe.\n\n"
        "To take the piece further, think about where its turning point sits and give it a little more room: "
        f'slow down around "{second}" so the moment can land before you move on, and let the quieter beats '
        "around it breathe.\n\n"
        "Your voice is steady from start to finish, and the ending leaves a clear impression. Keep trusting "
        "your ear for the rhythm of a scene as you revise."
    )


BEHAVIOURS = {GOOD: good, LOOPING: looping, RETELLING: retelling, BLIND: blind}
