"""Splitting a story into paragraphs, sentences, words and quotations, with offsets into the original."""

from __future__ import annotations

from coach.domain.critic.text import parse


def _sentences(text: str) -> list[str]:
    doc = parse(text)
    return [text[s.start:s.end] for s in doc.sentences]


def test_sentences_split_at_terminal_punctuation_but_not_abbreviations_or_initials() -> None:
    text = "Mr. Smith met Dr. Jones at 3.15 p.m. on the pier. J. R. Hartley waved! Was it late? It was."
    assert _sentences(text) == [
        "Mr. Smith met Dr. Jones at 3.15 p.m. on the pier.",
        "J. R. Hartley waved!",
        "Was it late?",
        "It was.",
    ]


def test_a_dialogue_tag_after_a_question_stays_in_the_same_sentence() -> None:
    text = '"Are you coming?" she asked. "Wait," he said. "No." She left.'
    assert _sentences(text) == ['"Are you coming?" she asked.', '"Wait," he said.', '"No."', "She left."]


def test_headings_and_scene_breaks_are_not_prose() -> None:
    text = "# The Title\n\nFirst paragraph here.\n\n---\n\n* * *\n\nSecond paragraph here."
    doc = parse(text)
    assert [text[p.start:p.end] for p in doc.paragraphs] == ["First paragraph here.", "Second paragraph here."]
    assert all(w.text != "Title" for w in doc.words)


def test_straight_and_curly_quotations_are_found_and_blanked_from_the_narration() -> None:
    text = 'She said, "Go home." He said, “Not yet.” Then nothing.'
    doc = parse(text)
    assert [text[a:b] for a, b in doc.quotes] == ['"Go home."', "“Not yet.”"]
    assert len(doc.narration) == len(text)
    assert "Go home" not in doc.narration and "Not yet" not in doc.narration
    assert doc.narration.startswith("She said,") and doc.narration.endswith("Then nothing.")
    quoted = [w.text for w in doc.words if w.in_quote]
    assert quoted == ["Go", "home", "Not", "yet"]


def test_an_unclosed_quotation_ends_with_its_paragraph() -> None:
    text = '"This speech runs on\n\nand this is narration.'
    doc = parse(text)
    assert [text[a:b] for a, b in doc.quotes] == ['"This speech runs on']
    assert [w.text for w in doc.words if not w.in_quote] == ["and", "this", "is", "narration"]


def test_apostrophes_do_not_open_quotations() -> None:
    doc = parse("It wasn’t the dog’s fault, and Ma'am knew it.")
    assert doc.quotes == []
    assert "wasn’t" in [w.text for w in doc.words]


def test_verse_is_split_line_by_line() -> None:
    text = "the sea at night\nholds its breath\nfor no one\n\nand the gulls\nsleep on the water"
    doc = parse(text)
    assert all(p.verse for p in doc.paragraphs)
    assert _sentences(text) == ["the sea at night", "holds its breath", "for no one", "and the gulls",
                                "sleep on the water"]


def test_wrapped_prose_lines_join_into_one_sentence() -> None:
    text = "This is a long line of ordinary prose that a text editor happened to wrap here\nand it goes on."
    assert _sentences(text) == [text]


def test_words_cover_other_scripts_and_skip_emoji() -> None:
    doc = parse("שלום עולם 😀 مرحبا")
    assert [w.text for w in doc.words] == ["שלום", "עולם", "مرحبا"]


def test_offsets_point_into_the_original_text() -> None:
    text = "\ufeffCarriage\r\nreturns here.\r\n\r\nSecond\tparagraph, with “curly” quotes."
    doc = parse(text)
    for word in doc.words:
        assert text[word.start:word.end] == word.text
    assert len(doc.paragraphs) == 2
