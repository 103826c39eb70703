"""Evaluation domain: planted flaws, naming them, grounding, the gate and the pairwise judge's arithmetic."""

from __future__ import annotations

from pathlib import Path

import pytest

from coach.api.guard import review
from coach.domain.critic import write_critique
from coach.domain.evaluation import (
    FLAW_KINDS,
    CriticScores,
    CritiqueResult,
    GateConfig,
    HeldOutStory,
    PairJudgement,
    aggregate,
    decide,
    make_eval_set,
    names_flaw,
    plant,
    score,
    wilson,
)
from coach.domain.evaluation.judge import combine, parse_preference
from coach.domain.evaluation.metrics import grounding_counts

SAMPLES = Path(__file__).resolve().parents[2] / "shared" / "coach" / "samples"
STORY = (
    "The kettle clicked off in the dark kitchen. Maria poured the water and watched the steam rise.\n\n"
    '"You are up early," her father said from the doorway.\n\n'
    "She did not turn around. The radio muttered about rain in the north, and the dog lifted its head.\n\n"
    "Outside, the first bus went past without stopping."
)


def sample_stories(limit: int | None = None) -> list[HeldOutStory]:
    stories = []
    for path in sorted(SAMPLES.glob("*.md"))[:limit]:
        title, _, body = path.read_text(encoding="utf-8").partition("\n")
        stories.append(HeldOutStory(story_id=path.stem, title=title.lstrip("# "), text=body.strip()))
    return stories


@pytest.mark.parametrize("kind", FLAW_KINDS)
def test_a_planted_copy_holds_its_flaw_and_the_rest_of_the_story(kind):
    planted = plant(STORY, kind, "story-1")

    assert planted.text != STORY
    assert planted.planted and all(span in planted.text for span in planted.planted)
    # Nothing of the story is lost: every original sentence is still there.
    for sentence in ("The radio muttered about rain in the north", "the first bus went past without stopping"):
        assert sentence in planted.text
    assert plant(STORY, kind, "story-1") == planted  # the same story id always gives the same copy


def test_each_flaw_looks_like_what_it_is_called():
    assert plant(STORY, "suddenly_opening", "s").text.startswith("Suddenly, the kettle clicked off")
    tags = plant(STORY, "adverb_tags", "s").planted
    assert len(tags) == 3 and all(t.startswith('"') and t.rstrip(".").split()[-1].endswith("ly") for t in tags)
    assert "she" in tags[0].lower()  # the story's narration is about a "she"
    repeated = plant(STORY, "repeated_word", "s")
    assert repeated.word and repeated.planted[0].count(repeated.word) == 4
    assert repeated.word not in STORY  # a word the story did not already use
    first_person = "I woke before the alarm. I made the coffee and I waited.\n\nNobody came."
    assert plant(first_person, "filter_words", "s").planted[0].startswith("I saw")
    assert "I was angry" in plant(first_person, "told_emotion", "x").text or "I felt happy" in plant(
        first_person, "told_emotion", "x").text


def test_the_evaluation_set_is_the_same_bytes_every_time_and_in_story_order():
    stories = sample_stories(4)
    first = make_eval_set("b", stories, origin="test")
    again = make_eval_set("b", list(reversed(stories)), origin="test")

    assert first.dumps() == again.dumps()
    assert first.stories == 4 and len(first.items) == 4 * (1 + len(FLAW_KINDS))
    assert [i.story_id for i in first.items if i.flaw is None] == sorted(s.story_id for s in stories)
    assert make_eval_set("b", stories, origin="test", max_stories=2).stories == 2


@pytest.mark.parametrize(("kind", "named", "not_named"), [
    ("adverb_tags", 'In "said quietly", the adverb tells the reader how the line sounds.',
     "You use a lot of adverbs in the narration, such as slowly."),
    ("filter_words", "Cut the filter verbs (saw, felt) so we experience the scene directly.",
     "You saw the scene clearly and the reader feels it."),
    ("suddenly_opening", 'Your first line, "Suddenly, everything changed", is a familiar way in.',
     "Your opening is vivid and specific."),
    ("told_emotion", 'Emotions are named rather than shown: "she was angry" tells us the feeling.',
     "The emotion in the last scene lands beautifully."),
])
def test_naming_a_flaw_needs_the_habit_and_what_it_is_about_in_one_sentence(kind, named, not_named):
    assert names_flaw(named, kind)
    assert not names_flaw(not_named, kind)


def test_a_repeated_word_is_named_only_with_that_word():
    critique = "Listen for echoes: strange recurs four times in quick succession."
    assert names_flaw(critique, "repeated_word", word="strange")
    assert not names_flaw(critique, "repeated_word", word="heavy")
    assert not names_flaw("The strange light is lovely.", "repeated_word", word="strange")


def test_grounding_counts_quotes_found_in_the_story_with_quotes_and_spaces_normalised():
    story = "She didn’t  look back at the\nharbour lights."
    assert grounding_counts('You write "didn\'t look back at the harbour" well.', story) == (1, 1)
    assert grounding_counts('You write "she never said goodbye" well.', story) == (1, 0)
    assert grounding_counts("No quotation here at all.", story) == (0, 0)


def _answer(item_id: str, text: str, **kw) -> CritiqueResult:
    return CritiqueResult(item_id=item_id, provider="openai", model="m", prompt_version="p", raw=text, text=text,
                          accepted=kw.pop("accepted", True), **kw)


def test_lift_and_false_alarms_come_from_the_same_story_with_and_without_the_flaw():
    es = make_eval_set("b", [HeldOutStory(story_id="s1", text=STORY), HeldOutStory(story_id="s2", text=STORY)],
                       origin="t", flaws=["filter_words"])
    names = "Cut the filter verbs and give us the thing itself, you will see."
    plain = "You write with a calm, sure hand; keep it."
    answers = [_answer("s1", plain), _answer("s1~filter_words", names),
               _answer("s2", names), _answer("s2~filter_words", names)]
    scores = score("c", es.items, answers, provider="openai", model="m", prompt_version="p")

    (flaw,) = scores.flaws
    assert (flaw.detected, flaw.false_alarms, flaw.lift) == (1.0, 0.5, 0.5)
    # A refused critique names nothing for the writer.
    answers[1] = _answer("s1~filter_words", names, accepted=False, reasons=["too_long"])
    assert score("c", es.items, answers, provider="o", model="m", prompt_version="p").flaws[0].detected == 0.5


def test_failed_calls_count_against_the_pass_rate_and_are_listed():
    es = make_eval_set("b", [HeldOutStory(story_id="s1", text=STORY)], origin="t", flaws=[])
    from coach.domain.records import ErrorInfo

    failed = CritiqueResult(item_id="s1", provider="openai", model="m", prompt_version="p",
                            error=ErrorInfo(code="upstream_timeout", message="slow"))
    scores = score("c", es.items, [failed], provider="openai", model="m", prompt_version="p")
    assert scores.pass_rate == 0.0 and scores.errors == 1 and scores.errors_by_code == {"upstream_timeout": 1}


def _scores(**kw) -> CriticScores:
    base = {"critic": "c", "provider": "openai", "model": "ft:m", "prompt_version": "p", "critiques": 60,
            "pass_rate": 0.95, "grounding": 0.98, "loop_rate": 0.0, "flaw_lift": 0.45, "false_alarms": 0.1}
    return CriticScores(**{**base, **kw})


@pytest.mark.parametrize(("changes", "reasons"), [
    ({}, []),
    ({"pass_rate": 0.5, "rejected_by_reason": {"third_person": 20, "numbered_list": 10}}, ["pass_rate_below_floor"]),
    ({"grounding": 0.7}, ["grounding_below_floor"]),
    ({"loop_rate": 0.3}, ["loop_rate_above_ceiling"]),
    ({"flaw_lift": 0.05}, ["flaw_lift_below_floor"]),
    ({"grounding": None}, []),  # a critic that quotes nothing invents no quotes
])
def test_the_gate_checks_every_floor_and_names_what_failed(changes, reasons):
    decision = decide(_scores(**changes), GateConfig())
    assert decision.reasons == reasons
    assert decision.passed is (not reasons)
    if "rejected_by_reason" in changes:
        assert "(rejections: third_person 20, numbered_list 10)" in decision.summary


def test_the_gate_allows_the_margin_below_the_baseline_and_no_more():
    baseline = _scores(model="ft:old", pass_rate=0.95)
    assert decide(_scores(pass_rate=0.91), GateConfig(), baseline).passed
    worse = decide(_scores(pass_rate=0.85), GateConfig(), baseline)
    assert worse.reasons == ["pass_rate_below_baseline"]
    assert "more than 5% below the baseline's 95%" in worse.summary
    assert decide(_scores(loop_rate=0.08), GateConfig(), _scores(loop_rate=0.0)).reasons == [
        "loop_rate_above_baseline"]


def test_a_judge_that_always_prefers_the_first_position_decides_nothing():
    judgements = [PairJudgement(item_id=str(i), candidate_first="A", candidate_second="A",
                                outcome=combine("A", "A"), candidate_accepted=True, other_accepted=True)
                  for i in range(10)]
    scores = aggregate("judge", "baseline", judgements)
    assert (scores.win.count, scores.tie.count, scores.loss.count) == (0, 10, 0)
    assert scores.order_consistency == 0.0


def test_judge_outcomes_intervals_and_agreement_with_the_house_standard():
    assert combine("A", "B") == "win" and combine("B", "A") == "loss" and combine("tie", "tie") == "tie"
    assert parse_preference("B.") == "B" and parse_preference("tie") == "tie" and parse_preference("dunno") is None
    assert wilson(0, 10) == (0.0, 0.2775)
    assert wilson(5, 10) == (0.2366, 0.7634)
    judgements = [
        PairJudgement(item_id="1", candidate_first="A", candidate_second="B", outcome="win",
                      candidate_accepted=True, other_accepted=False),
        PairJudgement(item_id="2", candidate_first="B", candidate_second="A", outcome="loss",
                      candidate_accepted=True, other_accepted=False),
        PairJudgement(item_id="3", candidate_first="A", candidate_second="B", outcome="win",
                      candidate_accepted=True, other_accepted=True),
    ]
    scores = aggregate("judge", "baseline", judgements)
    assert scores.validator_pairs == 2 and scores.validator_agreement == 0.5
    assert scores.win.share == round(2 / 3, 4) and scores.win.low < scores.win.share < scores.win.high


def test_the_offline_critic_clears_its_own_gate_on_the_bundled_samples():
    es = make_eval_set("samples", sample_stories(), origin="samples")
    answers = []
    for item in es.items:
        raw = write_critique(item.text, title=item.title)
        outcome = review(raw, story=item.text, finish_reason="stop")
        answers.append(CritiqueResult(item_id=item.item_id, provider="offline", model="offline",
                                      prompt_version="p", raw=raw, text=outcome.text, accepted=outcome.accepted,
                                      reasons=outcome.reasons, trimmed_loop=outcome.trimmed_loop))
    scores = score("offline", es.items, answers, provider="offline", model="offline", prompt_version="p")

    assert decide(scores, GateConfig()).passed, decide(scores, GateConfig()).summary
    by_kind = {f.kind: f for f in scores.flaws}
    # What it measures, it names: adverbs on tags and named emotions almost always.
    assert by_kind["adverb_tags"].detected >= 0.9 and by_kind["told_emotion"].detected >= 0.9
    assert all(f.lift > 0 for f in scores.flaws)
