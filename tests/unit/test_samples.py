"""The bundled sample stories: the demo corpus that `coach build` and the offline critic use by default."""

from __future__ import annotations

import re
from importlib.resources import files
from importlib.resources.abc import Traversable

import pytest

from coach.domain.records import STORY_ID_PATTERN

SLUG = re.compile(r"^[a-z0-9]+(?:-[a-z0-9]+)*$")
MIN_BODY, MAX_BODY = 300, 9_000
LONG_BODY = 5_000


def _samples_dir() -> Traversable:
    return files("coach") / "samples"


def _sample_files() -> list[Traversable]:
    return sorted((p for p in _samples_dir().iterdir() if p.name.endswith(".md")), key=lambda p: p.name)


def _split(sample: Traversable) -> tuple[str, str]:
    """Return (title, body) of a sample: the `# ` line, then everything after it."""
    text = sample.read_bytes().decode("utf-8")
    first, _, rest = text.partition("\n")
    assert first.startswith("# "), f"{sample.name}: first line must be a '# Title' line, got {first[:40]!r}"
    return first[2:].strip(), rest.strip()


SAMPLES = _sample_files()


def test_there_are_at_least_twenty_samples() -> None:
    assert len(SAMPLES) >= 20, f"only {len(SAMPLES)} samples bundled"


def test_notice_says_the_stories_are_original_and_licensed() -> None:
    notice = (_samples_dir() / "NOTICE").read_text(encoding="utf-8")
    assert "original" in notice.lower()
    assert "Creative Writing Coach" in notice


@pytest.mark.parametrize("sample", SAMPLES, ids=lambda p: p.name)
def test_sample_is_utf8_with_title_and_a_body_of_usable_length(sample: Traversable) -> None:
    title, body = _split(sample)
    assert title, f"{sample.name}: empty title"
    headings = [line for line in body.splitlines() if line.startswith("#")]
    assert not headings, f"{sample.name}: the body must be plain paragraphs, found heading {headings[0]!r}"
    assert MIN_BODY <= len(body) <= MAX_BODY, f"{sample.name}: body is {len(body)} characters"


@pytest.mark.parametrize("sample", SAMPLES, ids=lambda p: p.name)
def test_file_stem_makes_a_valid_story_id(sample: Traversable) -> None:
    stem = sample.name.removesuffix(".md")
    assert SLUG.match(stem), f"{sample.name}: file names are lowercase words joined by dashes"
    assert re.match(STORY_ID_PATTERN, f"sample-{stem}")


@pytest.mark.parametrize("sample", SAMPLES, ids=lambda p: p.name)
def test_title_is_followed_by_a_blank_line(sample: Traversable) -> None:
    lines = sample.read_bytes().decode("utf-8").split("\n")
    assert len(lines) > 2 and lines[1].strip() == "", f"{sample.name}: put a blank line after the title"


def test_at_least_three_samples_are_long() -> None:
    long_ones = [p.name for p in SAMPLES if len(_split(p)[1]) > LONG_BODY]
    assert len(long_ones) >= 3, f"samples over {LONG_BODY} characters: {long_ones}"


def test_titles_are_distinct() -> None:
    titles = [_split(p)[0].casefold() for p in SAMPLES]
    duplicates = sorted({t for t in titles if titles.count(t) > 1})
    assert not duplicates, f"duplicate titles: {duplicates}"
