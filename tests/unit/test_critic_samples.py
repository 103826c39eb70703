"""The offline critic on every bundled sample story: a valid critique that the validator accepts."""

from __future__ import annotations

from importlib.resources import files

import pytest

from coach.domain.critic import analyse_style, write_critique
from coach.domain.validation import validate_feedback
from tests.unit.test_critic_writer import QUOTE_RE, assert_valid_critique


def _samples() -> list[tuple[str, str, str]]:
    """(file name, title, body) of each sample: the first line is '# Title', the body follows."""
    found = []
    for path in sorted(files("coach").joinpath("samples").iterdir(), key=lambda p: p.name):
        if path.name.endswith(".md"):
            first, _, body = path.read_text(encoding="utf-8").partition("\n")
            found.append((path.name, first.removeprefix("# ").strip(), body.strip()))
    return found


SAMPLES = _samples()


def test_there_are_samples_to_critique() -> None:
    assert len(SAMPLES) >= 10


@pytest.mark.parametrize(("title", "body"), [(t, b) for _, t, b in SAMPLES], ids=[n for n, _, _ in SAMPLES])
def test_every_sample_gets_a_valid_critique_the_validator_accepts(title: str, body: str) -> None:
    critique = write_critique(body, title=title)
    assert_valid_critique(critique, body, min_quotes=2)
    verdict = validate_feedback(critique, story=body, story_id="sample")
    assert verdict.accepted, (verdict.reasons, [e.detail for e in verdict.evidence])


@pytest.mark.parametrize(("title", "body"), [(t, b) for _, t, b in SAMPLES], ids=[n for n, _, _ in SAMPLES])
def test_every_sample_style_note_is_concise_and_quotes_the_story(title: str, body: str) -> None:
    for note in analyse_style(body).notes:
        assert note.message.count(". ") == 0 and note.message.endswith("."), "one sentence"
        assert any(ch.isdigit() for ch in note.message), "carries its figure"
        assert all(example in body for example in note.examples)


def test_the_samples_do_not_all_get_the_same_critique_shape() -> None:
    critiques = [write_critique(body, title=title) for _, title, body in SAMPLES]
    openings = {c.split("\n\n")[0].split(".")[0].split(":")[0][:40] for c in critiques}
    closings = {c.rsplit(". ", 1)[-1] for c in critiques}
    assert len(openings) >= len(critiques) // 3
    assert len(closings) >= 3
    # Every critique quotes the story it is about, and no two critiques quote the same passages.
    quoted = [tuple(QUOTE_RE.findall(c)) for c in critiques]
    assert len(set(quoted)) == len(quoted)
