"""The validator's rules and cleaners one at a time, on small hand-made critiques of a small story."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from coach.domain.validation import (
    DEFAULT_CONFIG,
    DROP_METHOD_PARAGRAPH,
    REASONS,
    STRIP_DELIMITERS,
    STRIP_LABEL,
    ValidatorConfig,
    build_report,
    trim_repetition_loop,
    validate_feedback,
)

STORY = """The lighthouse keeper's daughter counted the ships every night. She wrote their names in a green
notebook that had belonged to her mother, and she never missed one, not even in the storm of 1953, when the
lamp failed and she stood on the gallery with a hand lantern until dawn.

"You'll catch your death," her father said, bringing her tea.

"Then I'll catch it counting," said Ada.

In the spring a ship came in that was not in any register. Its name was painted over. Ada wrote it down anyway,
as a blank line, and underlined it twice."""

GOOD = """Your opening image of a girl counting ships every night is simple and strong, and the green notebook that
belonged to her mother gives the habit a history without a word of explanation. Ada's reply, "Then I'll catch
it counting", tells us everything about her stubbornness.

The middle passes too quickly. The storm of 1953 is mentioned in a single clause, and it is the most dramatic
night in the story; consider giving it a short scene of its own, with the failed lamp and the hand lantern, so
that the reader feels what the counting costs her.

The ending is lovely. Writing the unnamed ship down as a blank line and underlining it twice is a quiet,
exact gesture, and you should keep it exactly as it is."""


def judge(feedback: str, **kwargs: object) -> list[str]:
    return validate_feedback(feedback, story=STORY, **kwargs).reasons  # type: ignore[arg-type]


def test_a_good_critique_passes_untouched() -> None:
    verdict = validate_feedback(GOOD, story=STORY, story_id="sample-x")
    assert verdict.accepted and verdict.reasons == [] and verdict.cleaned == []
    assert verdict.feedback == GOOD
    assert verdict.story_id == "sample-x"
    assert verdict.verdict == "accepted"


# --- cleaners -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "raw",
    [
        "=== END STORY ===\n\n" + GOOD,
        "==========\n" + GOOD + "\n==========",
        GOOD + "\n\n<<END OF FEEDBACK>>",
        GOOD + " <<END OF FEEDBACK>>",
        "END STORY\n\n" + GOOD,
        "-----\n\n" + GOOD + "\n\n*****",
    ],
)
def test_banner_lines_copied_from_the_prompt_are_stripped(raw: str) -> None:
    verdict = validate_feedback(raw, story=STORY)
    assert verdict.accepted
    assert verdict.feedback == GOOD
    assert verdict.cleaned == [STRIP_DELIMITERS]


@pytest.mark.parametrize("label", ["FEEDBACK:", "Feedback:", "**Feedback:**", "Critique:", "My feedback:",
                                   "FEEDBACK", "## Feedback"])
def test_a_leading_label_is_stripped(label: str) -> None:
    verdict = validate_feedback(f"{label}\n\n{GOOD}", story=STORY)
    assert verdict.accepted and verdict.feedback == GOOD
    assert set(verdict.cleaned) <= {STRIP_LABEL, STRIP_DELIMITERS} and verdict.cleaned


def test_a_sentence_that_starts_with_the_word_feedback_is_not_a_label() -> None:
    text = "Feedback from a reader would help here, but " + GOOD[0].lower() + GOOD[1:]
    verdict = validate_feedback(text, story=STORY)
    assert STRIP_LABEL not in verdict.cleaned
    assert verdict.feedback.startswith("Feedback from a reader")


def test_a_method_paragraph_is_dropped_when_a_critique_remains() -> None:
    raw = ("The compliment sandwich is a way of giving feedback: praise, then criticism, then praise again. "
           "It helps the writer hear the criticism.\n\n" + GOOD)
    verdict = validate_feedback(raw, story=STORY)
    assert verdict.accepted
    assert verdict.feedback == GOOD
    assert verdict.cleaned == [DROP_METHOD_PARAGRAPH]
    removed = next(e for e in verdict.evidence if e.reason == DROP_METHOD_PARAGRAPH)
    assert removed.span.startswith("The compliment sandwich")


def test_a_method_explanation_with_nothing_after_it_is_rejected_for_that_reason() -> None:
    raw = ("First, I will commend you on your strengths, then I will point out what could be improved, and "
           "finally I will end with another compliment. This structure makes criticism easier to accept, "
           "because writers hear what they are doing well before they hear what needs work. Well done.")
    verdict = validate_feedback(raw, story=STORY)
    assert not verdict.accepted
    assert verdict.reasons == ["method_explanation"]


def test_story_order_words_are_not_mistaken_for_a_method_explanation() -> None:
    text = ("First you show Ada counting, then you break the routine with the storm, and the order works. "
            + GOOD)
    verdict = validate_feedback(text, story=STORY)
    assert verdict.accepted and verdict.cleaned == []


# --- false positives the rules must avoid -------------------------------------------------------------


@pytest.mark.parametrize(
    "sentence",
    [
        "Your narrator is a careful observer, and you let her stubbornness show in what she does.",
        'When Ada calls herself "the writer of this notebook", you give her a lovely dry pride.',
        "As a writer, you clearly trust small gestures, and that trust pays off here.",
        "As the writer, you decide how much of the storm we see, and you chose well.",
    ],
)
def test_third_person_rule_allows_the_narrator_quotes_and_direct_address(sentence: str) -> None:
    assert "third_person" not in judge(sentence + " " + GOOD)


@pytest.mark.parametrize(
    "opening",
    [
        "1953 is a good year to set a storm in, and you make it count.",
        "Three things stand out in your story, and the first is the green notebook.",
        "One detail carries the whole piece: the blank line underlined twice.",
    ],
)
def test_list_rule_allows_sentences_that_start_with_a_number_or_year(opening: str) -> None:
    assert judge(opening + "\n\n" + GOOD) == []


def test_overlap_rule_allows_a_couple_of_short_quotes() -> None:
    quote = '"she stood on the gallery with a hand lantern until dawn"'
    text = GOOD.replace("Ada's reply,", f"The line {quote} and Ada's reply,")
    assert judge(text) == []


def test_a_single_rewrite_suggestion_with_dialogue_is_still_a_critique() -> None:
    text = GOOD + ' You could even try "Then I\'ll catch it," she said, and stop there.'
    assert judge(text) == []


# --- rejections ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("feedback", "reason"),
    [
        ("1. Your opening is strong.\n2. The storm needs a scene.\n3. The ending is lovely.\n" + GOOD, "list_format"),
        ("- The notebook is a good detail.\n- The storm is rushed.\n\n" + GOOD, "list_format"),
        (GOOD.replace("The middle passes", "The author's middle passes"), "third_person"),
        (GOOD.replace("you should keep it", "the writer should keep it"), "third_person"),
        (GOOD.replace("tells us everything", "(positive) tells us everything"), "annotation_labels"),
        (GOOD + " You should keep writing. You should keep writing. You should keep writing.", "repetition_loop"),
        ("Great story!", "too_short"),
        ("", "empty"),
        ("GPT3 error: the server had an error while processing your request.", "error_text"),
        ("I'm sorry, but I can't provide feedback on this story.", "refusal"),
        ((GOOD + "\n\n") * 4, "too_long"),
    ],
)
def test_each_artifact_is_rejected_with_its_reason(feedback: str, reason: str) -> None:
    assert reason in judge(feedback)


def test_finish_reason_length_means_truncated_output() -> None:
    assert judge(GOOD, finish_reason="length") == ["truncated_output"]
    assert judge(GOOD, finish_reason="stop") == []


def test_an_ending_cut_mid_sentence_is_truncated_even_without_a_finish_reason() -> None:
    assert judge(GOOD.rstrip(".") + " and the") == ["truncated_output"]


NEUTRAL = (GOOD.replace("Your opening", "The opening").replace("tells us everything", "says everything")
           .replace("consider giving it", "it deserves")
           .replace("you should keep it", "it should stay"))
SUMMARY_FIRST = (
    "Ada counts the ships every night and writes their names in her mother's green notebook. In the spring a ship "
    "comes in with its name painted over, and she writes it down anyway.\n\n"
    "Your opening image is simple and strong, and the notebook gives the habit a history without a word of "
    "explanation. The storm of 1953 deserves a short scene of its own, so the reader feels what the counting "
    "costs her; keep the blank line underlined twice exactly as it is."
)


def test_neutral_craft_talk_is_kept_unless_the_strict_switch_is_on() -> None:
    assert not {"you", "your"} & set(NEUTRAL.lower().split())
    assert judge(NEUTRAL) == []
    assert judge(NEUTRAL, config=ValidatorConfig(require_second_person=True)) == ["third_person"]
    # Talking about the author stays a rejection either way.
    assert judge(NEUTRAL.replace("The middle passes", "The author's middle passes")) == ["third_person"]


def test_a_short_plot_summary_before_the_critique_is_kept() -> None:
    assert judge(SUMMARY_FIRST) == []
    # The same summary with no critique after it is still a retelling.
    assert "story_continuation" in judge(SUMMARY_FIRST.split("\n\n")[0] + " She underlines it twice. Her "
                                          "father brings her tea and she keeps counting until dawn.")


def test_retelling_the_story_is_a_continuation() -> None:
    retold = ("Ada counts the ships every night and writes their names in her mother's green notebook. In the "
              "storm of 1953 the lamp fails and she stands on the gallery with a hand lantern until dawn. Her "
              "father brings her tea and warns her she will catch her death. In the spring an unregistered ship "
              "arrives with its name painted over, and Ada records it as a blank line.")
    assert "story_continuation" in judge(retold)


def test_error_words_inside_a_real_critique_are_not_error_text() -> None:
    text = GOOD.replace("The middle passes too quickly.",
                        "The one error of judgement is pace: the middle passes too quickly.")
    assert judge(text) == []


# --- evidence and configuration -----------------------------------------------------------------------


def test_evidence_points_at_the_offending_span() -> None:
    text = GOOD.replace("The middle passes", "The author's middle passes")
    verdict = validate_feedback(text, story=STORY)
    proof = next(e for e in verdict.evidence if e.reason == "third_person")
    assert proof.start is not None and proof.end is not None
    assert verdict.feedback[proof.start:proof.end] == proof.span == "The author's"
    assert proof.rule and proof.detail


def test_thresholds_come_from_the_configuration() -> None:
    short = "Your notebook detail is lovely and the ending is exact; give the storm its own scene."
    assert "too_short" in judge(short)
    assert judge(short, config=ValidatorConfig(min_words=10)) == []
    assert "too_long" in judge(GOOD, config=ValidatorConfig(max_words=50))
    with pytest.raises(ValidationError):
        ValidatorConfig(min_words=0)
    with pytest.raises(ValidationError):
        ValidatorConfig(no_such_threshold=3)  # type: ignore[call-arg]


def test_the_default_configuration_is_the_documented_one() -> None:
    assert ValidatorConfig() == DEFAULT_CONFIG
    assert DEFAULT_CONFIG.min_words < DEFAULT_CONFIG.max_words


# --- trim_repetition_loop ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("The storm is rushed. Keep writing, you have a gift. Keep writing, you have a gift. Keep writing, you",
         "The storm is rushed. Keep writing, you have a gift."),
        ("Your ending works. Your ending works. Your ending works. Your ending works.", "Your ending works."),
        ("I loved it and and and and and and", "I loved it and"),
        ("The pacing is good. Ada is good. Ada is good. Ada is good.", "The pacing is good. Ada is good."),
    ],
)
def test_a_trailing_loop_is_cut_back_to_its_first_occurrence(text: str, expected: str) -> None:
    assert trim_repetition_loop(text) == (expected, True)


@pytest.mark.parametrize("text", [GOOD, "Keep going. Keep going.", "", "word", "very, very good."])
def test_text_without_a_loop_is_returned_unchanged(text: str) -> None:
    assert trim_repetition_loop(text) == (text, False)


def test_a_trimmed_loop_passes_the_validator() -> None:
    looping = GOOD + " Keep writing, you have a real gift. Keep writing, you have a real gift." * 3
    trimmed, cut = trim_repetition_loop(looping)
    assert cut
    assert judge(trimmed) == []


# --- report -------------------------------------------------------------------------------------------


def test_the_report_counts_reasons_and_keeps_one_example_of_each() -> None:
    verdicts = [
        validate_feedback(GOOD, story=STORY, story_id="a"),
        validate_feedback("FEEDBACK:\n" + GOOD, story=STORY, story_id="b"),
        validate_feedback("Great story!", story=STORY, story_id="c"),
        validate_feedback("Nice.", story=STORY, story_id="d"),
        validate_feedback(GOOD, story=STORY, story_id="e", finish_reason="length"),
    ]
    report = build_report(verdicts)
    assert report["accepted"] == 2 and report["rejected"] == 3
    assert report["by_reason"] == {"truncated_output": 1, "too_short": 2}
    assert list(report["by_reason"]) == [r for r in REASONS if r in report["by_reason"]]
    assert report["cleaned"] == {"strip_label": 1}
    example = report["examples"]["too_short"]
    assert example["story_id"] == "c" and example["excerpt"] == "Great story!"
    assert example["evidence"]["reason"] == "too_short"
    assert len(build_report(verdicts, examples=2)["examples"]["too_short"]) == 2
    json.dumps(report)


# --- robustness ---------------------------------------------------------------------------------------


@settings(max_examples=150, deadline=None)
@given(st.text(max_size=600), st.sampled_from([None, "stop", "length"]))
def test_any_text_gets_a_consistent_verdict(feedback: str, finish_reason: str | None) -> None:
    verdict = validate_feedback(feedback, story=STORY, finish_reason=finish_reason)
    assert verdict.accepted == (not verdict.reasons)
    assert set(verdict.reasons) <= set(REASONS)
    assert len(verdict.reasons) == len(set(verdict.reasons))
    for e in verdict.evidence:
        if e.reason in REASONS and e.start is not None and e.end is not None:
            assert 0 <= e.start <= e.end <= len(verdict.feedback)
    assert validate_feedback(feedback, story=STORY, finish_reason=finish_reason) == verdict
