"""The validator against its labelled fixtures: critiques of the bundled samples that a human editor
would keep, clean, or throw out (tests/fixtures/validator/*.jsonl), scored rule by rule."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import cache
from importlib.resources import files
from pathlib import Path

import pytest

from coach.domain.records import Verdict
from coach.domain.validation import REASONS, validate_feedback

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "validator"
# holdout.jsonl was written after the rules were tuned on the other three, and is kept to check that
# they generalise; it mixes good and bad critiques.
FIXTURE_FILES = ("good.jsonl", "cleanable.jsonl", "bad.jsonl", "holdout.jsonl")


@cache
def sample_story(story_id: str) -> str:
    """The body of a bundled sample (everything after its `# Title` line) by its story id."""
    stem = story_id.removeprefix("sample-")
    text = (files("coach") / "samples" / f"{stem}.md").read_text(encoding="utf-8")
    return text.partition("\n")[2].strip()


@cache
def load(name: str) -> tuple[dict, ...]:
    rows = []
    with (FIXTURES / name).open(encoding="utf-8") as handle:
        for line in handle:
            if line.strip():
                rows.append(json.loads(line))
    return tuple(rows)


def all_fixtures() -> list[dict]:
    return [row for name in FIXTURE_FILES for row in load(name)]


GOOD = tuple(r for r in all_fixtures() if r["expected"] == "accepted" and "expected_feedback" not in r)
CLEANABLE = tuple(r for r in all_fixtures() if r["expected"] == "accepted" and "expected_feedback" in r)
BAD = tuple(r for r in all_fixtures() if r["expected"] == "rejected")


def judge(row: dict) -> Verdict:
    return validate_feedback(
        row["feedback"],
        story=sample_story(row["story_id"]),
        story_id=row["story_id"],
        finish_reason=row.get("finish_reason"),
    )


@dataclass
class RuleScore:
    reason: str
    true_positive: int = 0
    false_positive: int = 0
    false_negative: int = 0
    false_positive_ids: list[str] = field(default_factory=list)
    false_negative_ids: list[str] = field(default_factory=list)

    @property
    def precision(self) -> float:
        fired = self.true_positive + self.false_positive
        return self.true_positive / fired if fired else 1.0

    @property
    def recall(self) -> float:
        expected = self.true_positive + self.false_negative
        return self.true_positive / expected if expected else 1.0


def score(rows: list[dict]) -> dict[str, RuleScore]:
    """Per-reason precision and recall: a reason is expected when it is in a row's expected_reasons."""
    scores = {reason: RuleScore(reason) for reason in REASONS}
    for row in rows:
        fired = set(judge(row).reasons)
        expected = set(row["expected_reasons"])
        for reason in REASONS:
            entry = scores[reason]
            if reason in fired and reason in expected:
                entry.true_positive += 1
            elif reason in fired:
                entry.false_positive += 1
                entry.false_positive_ids.append(row["id"])
            elif reason in expected:
                entry.false_negative += 1
                entry.false_negative_ids.append(row["id"])
    return scores


def score_table(scores: dict[str, RuleScore]) -> str:
    lines = [f"{'reason':22s} {'expected':>8s} {'fired':>6s} {'precision':>9s} {'recall':>7s}"]
    for entry in scores.values():
        expected = entry.true_positive + entry.false_negative
        fired = entry.true_positive + entry.false_positive
        lines.append(f"{entry.reason:22s} {expected:8d} {fired:6d} {entry.precision:9.2f} {entry.recall:7.2f}")
    return "\n".join(lines)


# --- the tests ------------------------------------------------------------------------------------------


def _ids(rows: tuple[dict, ...]) -> list[str]:
    return [row["id"] for row in rows]


def test_the_fixture_set_is_large_and_covers_every_reason() -> None:
    rows = all_fixtures()
    assert len(rows) >= 80
    assert len(GOOD) >= 30
    assert len({row["id"] for row in rows}) == len(rows), "fixture ids must be unique"
    assert all(not row["expected_reasons"] for row in GOOD + CLEANABLE)
    assert all(row["expected_reasons"] for row in BAD)
    assert all(set(row["expected_reasons"]) <= set(REASONS) for row in BAD)
    for reason in REASONS:
        variants = sum(1 for row in BAD if row["expected_reasons"][0] == reason)
        assert variants >= 3, f"only {variants} fixtures whose main reason is {reason}"
    for row in rows:
        assert sample_story(row["story_id"]), f"{row['id']}: unknown story {row['story_id']}"


@pytest.mark.parametrize("row", GOOD, ids=_ids(GOOD))
def test_a_good_critique_is_accepted_unchanged(row: dict) -> None:
    verdict = judge(row)
    assert verdict.accepted, f"{row['id']} rejected: {verdict.reasons} {[e.detail for e in verdict.evidence]}"
    assert verdict.feedback == row["feedback"].strip()
    assert verdict.cleaned == []


@pytest.mark.parametrize("row", CLEANABLE, ids=_ids(CLEANABLE))
def test_a_cleanable_critique_is_cleaned_to_the_expected_text(row: dict) -> None:
    verdict = judge(row)
    assert verdict.accepted, f"{row['id']} rejected: {verdict.reasons}"
    assert verdict.feedback == row["expected_feedback"]
    assert verdict.cleaned, "a cleaner must say it changed the text"
    removed = [e for e in verdict.evidence if e.reason in verdict.cleaned]
    assert removed and all(e.span for e in removed), "each cleaning names what it removed"


def test_bad_critiques_are_rejected_for_the_right_reason() -> None:
    misses = []
    for row in BAD:
        verdict = judge(row)
        if verdict.accepted or row["expected_reasons"][0] not in verdict.reasons:
            misses.append(f"{row['id']}: expected {row['expected_reasons'][0]}, got {verdict.reasons}")
    caught = 1 - len(misses) / len(BAD)
    assert caught >= 0.95, f"only {caught:.0%} rejected with the right reason:\n" + "\n".join(misses)


def test_every_rejection_carries_evidence_for_each_reason() -> None:
    for row in BAD:
        verdict = judge(row)
        for reason in verdict.reasons:
            proof = [e for e in verdict.evidence if e.reason == reason]
            assert proof, f"{row['id']}: no evidence for {reason}"
            for e in proof:
                if e.start is not None and e.end is not None:
                    assert 0 <= e.start <= e.end <= len(verdict.feedback)
                    assert e.span, f"{row['id']}: empty span for {reason}"


def test_per_rule_precision_and_recall(capsys: pytest.CaptureFixture[str]) -> None:
    scores = score(all_fixtures())
    with capsys.disabled():
        print(f"\nvalidator rules on {len(all_fixtures())} labelled fixtures\n" + score_table(scores))
    for entry in scores.values():
        assert entry.precision >= 0.9, f"{entry.reason} fires wrongly on {entry.false_positive_ids}"
        assert entry.recall >= 0.9, f"{entry.reason} misses {entry.false_negative_ids}"


STRICT = tuple(r for r in all_fixtures() if r.get("strict_reasons"))


def test_neutral_craft_talk_is_kept_and_rejected_only_by_the_strict_switch() -> None:
    from coach.domain.validation import ValidatorConfig

    assert STRICT  # critiques an editor kept that never say "you"
    strict = ValidatorConfig(require_second_person=True)
    for row in STRICT:
        assert judge(row).accepted, row["id"]
        verdict = validate_feedback(row["feedback"], story=sample_story(row["story_id"]), config=strict)
        assert verdict.reasons == row["strict_reasons"], row["id"]
