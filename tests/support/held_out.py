"""A build's held-out stories as the assembler leaves them, for evaluation tests: the first bundled samples,
validation.jsonl with the offline critic's critiques standing in for the teacher's, and the manifest."""

from __future__ import annotations

import json
from typing import Any

from coach.adapters.storage import dataset_key
from coach.domain.critic import write_critique
from coach.domain.dataset import chat_example
from coach.domain.records import BuildManifest, Story
from tests.support.stories import samples


def sample_stories(count: int) -> list[Story]:
    """The first `count` bundled samples, whole."""
    stories = []
    for path in samples()[:count]:
        title, _, body = path.read_text(encoding="utf-8").partition("\n")
        stories.append(Story(story_id=f"sample-{path.stem}", title=title.lstrip("# ").strip(), text=body.strip(),
                             source="samples"))
    return stories


def seed_validation(store: Any, build_id: str, count: int) -> list[Story]:
    """Write validation.jsonl and the manifest of `build_id` to `store` (a BuildStore or DirectoryStore)."""
    stories = sample_stories(count)
    rows = [chat_example(s, write_critique(s.text, title=s.title)) for s in stories]
    store.put_text(dataset_key(build_id, "validation.jsonl"), "".join(json.dumps(r) + "\n" for r in rows))
    manifest = BuildManifest(build_id=build_id, provider="openai", model="gpt-4o-mini", prompt_version="editor-v1",
                             validation_ids=[s.story_id for s in stories])
    store.put_text(dataset_key(build_id, "manifest.json"), manifest.model_dump_json())
    return stories
