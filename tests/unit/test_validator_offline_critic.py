"""The offline critic writes what the validator keeps: every bundled sample's critique is accepted as is."""

from __future__ import annotations

from importlib.resources import files

import pytest

from coach.domain.critic import write_critique
from coach.domain.validation import validate_feedback

SAMPLES = sorted((p for p in (files("coach") / "samples").iterdir() if p.name.endswith(".md")),
                 key=lambda p: p.name)


@pytest.mark.parametrize("sample", SAMPLES, ids=[p.name[:-3] for p in SAMPLES])
def test_the_offline_critique_of_each_sample_passes_the_validator(sample) -> None:  # type: ignore[no-untyped-def]
    first, _, body = sample.read_text(encoding="utf-8").partition("\n")
    critique = write_critique(body.strip(), title=first.removeprefix("# ").strip())
    verdict = validate_feedback(critique, story=body.strip(), story_id=f"sample-{sample.name[:-3]}")
    assert verdict.accepted, f"rejected for {verdict.reasons}: {[e.detail for e in verdict.evidence]}"
    assert verdict.cleaned == [], "the critic's output should need no cleaning"
