"""The style measurements: planted flaws are found with their exact text, clean prose stays quiet."""

from __future__ import annotations

import pytest

from coach.domain.critic import StyleNote, StyleReport, analyse_style

CLEAN = (
    "The ferry left at six. Mara stood at the rail with her coat buttoned to the chin and watched nothing "
    "in particular, because there was nothing to watch: grey water, a grey gull, the long grey line of "
    "the breakwater sliding past.\n\n"
    "Her brother had promised to meet her on the quay. She did not expect him to keep the promise. He "
    "had not kept one since the winter their father sold the boat, and she had stopped counting.\n\n"
    '"Ticket," said the deckhand.\n\n'
    "She gave it to him. He punched a hole in it, handed it back, and moved along the rail to the next "
    "passenger, a boy with a cardboard box that scratched and shifted in his arms.\n\n"
    "When the quay came into view, the first thing she picked out was the red of her brother's van."
)


def _codes(report: StyleReport) -> set[str]:
    return {note.code for note in report.notes}


def _note(report: StyleReport, code: str) -> StyleNote:
    return next(note for note in report.notes if note.code == code)


def test_clean_prose_gets_no_notes_and_no_adverbs() -> None:
    report = analyse_style(CLEAN)
    assert report.notes == []
    assert report.adverbs_per_1000 == 0
    assert report.dialogue_tag_adverbs == [] and report.said_bookisms == [] and report.telling_emotion == []


@pytest.mark.parametrize("word", ["only", "early", "family", "lovely", "holy", "Emily", "reply", "July"])
def test_words_ending_in_ly_that_are_not_adverbs_are_not_counted(word: str) -> None:
    report = analyse_style(f"It was the {word} thing she had. He had a {word} look. They ate. {word} came.")
    assert report.adverbs_per_1000 == 0


def test_adverbs_in_dialogue_tags_are_found_with_their_exact_text() -> None:
    story = (
        '"I know," she said softly. "Then go," he replied quickly. Nobody moved, but '
        '"Fine," Tom said angrily, and "Is it?" asked Ann nervously.'
    )
    report = analyse_style(story)
    assert report.dialogue_tag_adverbs == ["said softly", "replied quickly", "said angrily", "asked Ann nervously"]
    note = _note(report, "dialogue_tag_adverbs")
    assert "4 dialogue tags" in note.message
    assert all(example in story for example in note.examples)


def test_plain_tags_and_adverbs_away_from_dialogue_are_not_tag_adverbs() -> None:
    report = analyse_style('"I know," she said. She walked slowly to the door and said nothing.')
    assert report.dialogue_tag_adverbs == []


def test_said_bookisms_after_a_comma_but_not_action_beats_after_a_full_stop() -> None:
    tagged = analyse_style('"You again," she smiled. "Out," he hissed. "Now," Ann snarled.')
    assert tagged.said_bookisms == ["she smiled", "he hissed", "Ann snarled"]
    assert "said_bookisms" in _codes(tagged)
    beats = analyse_style('"You again." She smiled. "Out." He turned away.')
    assert beats.said_bookisms == []


def test_filter_words_are_reported_as_a_density_with_real_examples() -> None:
    story = (
        "She saw the lights go out. She heard the door. She felt afraid of the dark. She noticed a smell of "
        "smoke. She realized the house was burning. She knew she had to run."
    )
    report = analyse_style(story)
    assert report.filter_words_per_1000 > 100
    note = _note(report, "filter_words")
    assert str(report.filter_words_per_1000).rstrip("0").rstrip(".") in note.message
    assert note.examples and all(example in story for example in note.examples)


def test_touching_something_concrete_is_a_weaker_signal_than_filtering() -> None:
    story = "She felt the rough bark under her palm. He felt the cold edge of the blade. They felt a draught."
    report = analyse_style(story)
    assert report.filter_words_per_1000 == 0
    assert "filter_words" not in _codes(report)


def test_named_emotions_are_telling() -> None:
    story = "He was very angry. She felt sad. They seemed nervous. It was a cold night. She was tired."
    report = analyse_style(story)
    assert report.telling_emotion == ["was very angry", "felt sad", "seemed nervous"]
    assert "telling_emotion" in _codes(report)


def test_passive_voice_but_not_states() -> None:
    passive = analyse_style(
        "The letter was written by her brother. The chair was dragged by a stranger. The dog was taken away. "
        "The house was sold in May. Nothing else happened that week."
    )
    assert passive.passive_voice_per_1000 > 100
    assert "passive_voice" in _codes(passive)
    states = analyse_style("She was tired. He was married. They were excited. It was red. We were worried.")
    assert states.passive_voice_per_1000 == 0


def test_dialogue_is_not_linted() -> None:
    story = '"I really, really just very much want it, honestly, truly," she said. She left.'
    report = analyse_style(story)
    assert report.crutch_words_per_1000 == 0
    assert report.adverbs_per_1000 == 0
    assert report.dialogue_share > 0.5


def test_crutch_words_in_narration_are_counted() -> None:
    story = "It was very late and she was just really tired. Suddenly the phone rang. It was quite loud, very."
    report = analyse_style(story)
    assert report.crutch_words_per_1000 > 100
    assert "crutch_words" in _codes(report)


def test_dialogue_share_counts_curly_and_straight_quotes() -> None:
    report = analyse_style('“One two three four,” she said. "Five six seven eight," he said.')
    assert report.dialogue_share == pytest.approx(8 / 12, abs=0.01)


def test_runs_of_the_same_sentence_opener() -> None:
    story = "He woke. He dressed. He ate. He left. The bus was late. He waited."
    report = analyse_style(story)
    assert [(run.word, run.length) for run in report.opener_runs] == [("he", 4)]
    assert "repeated_openers" in _codes(report)


def test_a_familiar_opening_line_is_noted_with_the_line_quoted() -> None:
    report = analyse_style("I woke up to the sound of my alarm clock. The room was cold.")
    note = _note(report, "opening_line")
    assert note.examples == ["I woke up to the sound of my alarm clock"]
    assert report.opening_line == "I woke up to the sound of my alarm clock."


def test_long_paragraphs_and_hard_sentences() -> None:
    sentence = ("Notwithstanding considerable organisational difficulties, the administrative committee "
                "eventually authorised comprehensive infrastructural improvements throughout the "
                "municipality's neighbouring agricultural territories. ")
    report = analyse_style(sentence * 12)
    assert report.very_hard_sentences == 12
    assert report.longest_paragraph_words > 200
    assert {"hard_sentences", "long_paragraph"} <= _codes(report)


def test_repeated_words_nearby_but_not_names() -> None:
    story = ("The lantern swung. The lantern dimmed and the lantern died, and the lantern smoked. "
             "Lantern-light is gone. Marguerite called Marguerite and Marguerite again.")
    report = analyse_style(story)
    words = {r.word: r.repeats for r in report.repeated_nearby}
    assert words.get("lantern") == 3
    assert "marguerite" not in words


def test_figures_of_an_ordinary_story() -> None:
    report = analyse_style(CLEAN)
    assert report.paragraphs == 5
    assert report.words == len(CLEAN.split()) - 0  # no hyphenated or numeric oddities in this text
    assert 0 < report.dialogue_share < 0.05
    assert report.sentence_length_cv is not None and report.sentence_length_cv > 0.3
    assert report.opening_line == "The ferry left at six."


def test_short_or_strange_inputs_never_raise() -> None:
    for text in ["", "   ", "😀", "a", '"', "“", "...", "# Heading only", "\n\n\n", "ab\x00cd", "‏שלום‏"]:
        report = analyse_style(text)
        assert report.words >= 0
        assert report.sentence_length_cv is None


def test_every_note_example_is_an_exact_span_of_the_story() -> None:
    story = (
        "It was a dark and stormy night. I felt very nervous. I saw the door open. I noticed a man. "
        'I realized he was my brother. "Hello," he smiled. "Hi," I said quietly. I was really scared. '
        "The window was broken by the wind. The glass was swept up by my mother. The floor was mopped."
    )
    report = analyse_style(story)
    assert len(report.notes) >= 4
    for note in report.notes:
        assert note.message.endswith(".")
        for example in note.examples:
            assert example in story, (note.code, example)
