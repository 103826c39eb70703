"""The evaluation set of a build: held-out stories, their planted-flaw copies and the teacher's references.

Built only from what the build held out of training (its validation split), so a model is never scored
on a story it was trained on. Deterministic: the same held-out stories give the same set, byte for byte.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence

from pydantic import BaseModel, ConfigDict, Field

from coach.domain.evaluation.flaws import FLAW_KINDS, FlawKind, plant

EVAL_SET_VERSION = "eval-set-v1"


class HeldOutStory(BaseModel):
    """One held-out story as the model sees it (already cut to the prompt's length), with the teacher's
    accepted critique when there is one."""

    model_config = ConfigDict(extra="forbid")

    story_id: str
    title: str = ""
    text: str
    reference: str | None = None


class EvalItem(BaseModel):
    model_config = ConfigDict(extra="forbid")

    item_id: str
    story_id: str
    title: str = ""
    text: str
    flaw: FlawKind | None = None  # None: the story as written
    planted: list[str] = Field(default_factory=list)
    word: str | None = None
    reference: str | None = None  # the teacher's accepted critique (stories as written only)


class EvalSet(BaseModel):
    model_config = ConfigDict(extra="forbid")

    version: str = EVAL_SET_VERSION
    build_id: str
    origin: str  # what the stories were taken from, e.g. "builds/x/dataset/validation.jsonl"
    flaws: list[FlawKind]
    items: list[EvalItem]

    @property
    def stories(self) -> int:
        return sum(1 for item in self.items if item.flaw is None)

    def dumps(self) -> str:
        """One stable serialisation (sorted keys), so the same set is the same bytes."""
        return json.dumps(self.model_dump(mode="json"), ensure_ascii=False, sort_keys=True, indent=1) + "\n"


def item_id(story_id: str, flaw: FlawKind | None) -> str:
    return story_id if flaw is None else f"{story_id}~{flaw}"


def make_eval_set(build_id: str, stories: Iterable[HeldOutStory], *, origin: str,
                  flaws: Sequence[FlawKind] = FLAW_KINDS, max_stories: int | None = None) -> EvalSet:
    """Each story as written, then one copy per flaw kind; stories in id order, at most `max_stories`."""
    chosen = sorted({s.story_id: s for s in stories}.values(), key=lambda s: s.story_id)
    if max_stories is not None:
        chosen = chosen[:max_stories]
    items: list[EvalItem] = []
    for story in chosen:
        items.append(EvalItem(item_id=item_id(story.story_id, None), story_id=story.story_id, title=story.title,
                              text=story.text, reference=story.reference))
        for kind in flaws:
            planted = plant(story.text, kind, story.story_id)
            items.append(EvalItem(item_id=item_id(story.story_id, kind), story_id=story.story_id,
                                  title=story.title, text=planted.text, flaw=kind, planted=planted.planted,
                                  word=planted.word))
    return EvalSet(build_id=build_id, origin=origin, flaws=list(flaws), items=items)
