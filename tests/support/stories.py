"""Test stories cut from the bundled samples, each with a marker a test can find in what a fake model was
asked, and the offline critic standing in for a model that writes a different critique for each story."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from coach.domain.critic import write_critique
from coach.domain.prompt import extract_story

SAMPLES = Path(__file__).resolve().parents[2] / "shared" / "coach" / "samples"


def samples() -> list[Path]:
    return sorted(SAMPLES.glob("*.md"))


def paragraphs(sample: Path) -> list[str]:
    """A sample's paragraphs, without its title line."""
    return [p for p in re.split(r"\n\s*\n", sample.read_text().split("\n", 2)[2]) if p.strip()]


def marker(number: int) -> str:
    return f"Case file {number:03d}."


def write_rows(path: Path, rows: list[dict[str, Any]]) -> list[str]:
    """Write stories as JSON lines; their ids, in order."""
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return [row["id"] for row in rows]


def critique(messages: list[dict]) -> str:
    title, text = extract_story(messages)  # a different critique for each story, as a real model writes
    return write_critique(text, title=title)
