"""Reddit markdown to plain story text, and telling stories from bots and deleted replies."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from coach.domain.reddit_text import (
    SCENE_BREAK,
    clean_plain_text,
    decode_entities,
    has_bot_footer,
    is_bot,
    is_bot_name,
    is_deleted,
    markdown_to_plain,
    prompt_title,
)


def test_paragraphs_stay_apart_and_wrapped_lines_join() -> None:
    body = "The tide went out\nand did not come back.\n\n\n\nNobody noticed for a week."
    assert markdown_to_plain(body) == "The tide went out and did not come back.\n\nNobody noticed for a week."


def test_emphasis_keeps_its_words_without_the_markers() -> None:
    body = "She was *very* sure. **Certain**, even. ***Absolutely.*** _Quietly_ __loud__ ~~gone~~."
    assert markdown_to_plain(body) == "She was very sure. Certain, even. Absolutely. Quietly loud gone."


def test_links_keep_their_words_and_lose_the_url() -> None:
    body = ("Read [part one](https://www.reddit.com/r/WritingPrompts/comments/abc/x/) or "
            "[the wiki](https://en.wikipedia.org/wiki/Sea_(disambiguation)) and [my sub][1].\n\n"
            "[1]: https://reddit.com/r/mysub")
    assert markdown_to_plain(body) == "Read part one or the wiki and my sub."


def test_html_entities_are_decoded_and_spacer_lines_vanish() -> None:
    body = "Salt &amp; iron &lt;3\n\n&#x200B;\n\n&nbsp;\n\nNext&nbsp;paragraph &quot;here&quot;."
    assert markdown_to_plain(body) == 'Salt & iron <3\n\nNext paragraph "here".'


def test_escaped_markdown_characters_stay_literal() -> None:
    assert markdown_to_plain(r"He whispered \*nothing\* and paid \$5 for item \#3.") == (
        "He whispered *nothing* and paid $5 for item #3."
    )


def test_horizontal_rules_become_one_scene_break() -> None:
    body = "First scene.\n\n---\n\n***\n\nSecond scene.\n\n___"
    assert markdown_to_plain(body) == f"First scene.\n\n{SCENE_BREAK}\n\nSecond scene."


def test_dash_line_right_under_text_is_a_scene_break_not_a_heading() -> None:
    assert markdown_to_plain("The door shut.\n---\nMorning.") == f"The door shut.\n\n{SCENE_BREAK}\n\nMorning."


def test_headings_quotes_spoilers_and_superscript_lose_their_markup() -> None:
    body = ("# Part Two\n\n> She remembered\n> the sea.\n\n>!It was him all along!<\n\n"
            "^(thanks for reading) and ^more\n\nChapter One\n===========\n\nText.")
    assert markdown_to_plain(body) == (
        "Part Two\n\nShe remembered the sea.\n\nIt was him all along\n\nthanks for reading and more\n\n"
        "Chapter One\n\nText."
    )


def test_hard_breaks_and_list_items_keep_their_own_lines() -> None:
    body = "Roses are red,  \nviolets are blue\\\nthe end\n\n- milk\n- eggs\n\n1. first\n2. second"
    assert markdown_to_plain(body) == (
        "Roses are red,\nviolets are blue\nthe end\n\nmilk\neggs\n\n1. first\n2. second"
    )


def test_code_is_kept_literally() -> None:
    body = "```\nprint(*args)\n```\n\nUse `__init__` here."
    assert markdown_to_plain(body) == "print(*args)\n\nUse __init__ here."


def test_words_with_underscores_and_arithmetic_stars_are_left_alone() -> None:
    assert markdown_to_plain("file_name_here and 5 * 3 * 2") == "file_name_here and 5 * 3 * 2"


def test_windows_line_endings_and_bom() -> None:
    assert markdown_to_plain("\ufeffOne\r\nline.\r\n\r\nTwo.\rThree.") == "One line.\n\nTwo. Three."


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet=st.characters(codec="utf-8"), max_size=400))
def test_output_is_always_tidy_plain_paragraphs(body: str) -> None:
    plain = markdown_to_plain(body)
    assert "\r" not in plain
    assert "\n\n\n" not in plain
    assert plain == plain.strip()
    assert all(line == line.strip() for line in plain.split("\n"))


@pytest.mark.parametrize("author", ["AutoModerator", "RemindMeBot", "timezone_bot", "converter-bot",
                                    "WritingPromptsRobot", "sneakpeekbot"])
def test_bot_accounts_are_recognised(author: str) -> None:
    assert is_bot_name(author)


@pytest.mark.parametrize("author", ["Talbot", "abbot_of_words", "robotics_fan_writes", "Bottlecap", None])
def test_people_whose_names_contain_bot_are_not_bots(author: str | None) -> None:
    assert not is_bot_name(author)


def test_bot_footer_in_the_last_paragraph_marks_a_bot() -> None:
    body = "Your reminder is set.\n\n*****\n\n^(I am a bot, and this action was performed automatically.)"
    assert has_bot_footer(body)
    assert is_bot("helpful_person", body)


def test_a_robot_narrator_saying_i_am_a_bot_mid_story_is_still_a_story() -> None:
    story = "\"I am a bot,\" it said. " + "The rain kept falling on the tin roof. " * 40 + "\n\nThe end."
    assert not has_bot_footer(story)
    assert not is_bot("storyteller", story)
    assert not is_bot("storyteller", '"I am a bot," said the unit in the corner, "and I want to garden."')


@pytest.mark.parametrize("body", ["[deleted]", "[removed]", "[ Removed by Reddit ]", "  [deleted]\n", "", None])
def test_deleted_and_removed_bodies(body: str | None) -> None:
    assert is_deleted(body)


def test_a_story_that_starts_with_a_bracket_is_not_deleted() -> None:
    assert not is_deleted("[Deleted scenes] were the best part of the film, she said.")


def test_prompt_title_drops_tags_and_decodes_entities() -> None:
    assert prompt_title("[WP] [TT] The sea &amp; the sky  are gone") == "The sea & the sky are gone"
    assert prompt_title("(EU) Harry keeps the stone") == "Harry keeps the stone"
    assert prompt_title("[WP]") == "[WP]"


def test_decode_entities_removes_invisible_characters() -> None:
    assert decode_entities("a&#x200B;b&nbsp;c &amp; d") == "ab c & d"


def test_clean_plain_text_keeps_lines_but_tidies_whitespace() -> None:
    assert clean_plain_text("\ufeffLine one   \r\nline two\r\r\r\n\n\nThird\n\n") == "Line one\nline two\n\nThird"


@pytest.mark.parametrize(("body", "expected"), [
    ("Read [The Lighthouse [Part 2][FINAL]](https://www.reddit.com/r/WritingPrompts/comments/1/x/) now.",
     "Read The Lighthouse [Part 2][FINAL] now."),
    ("Written for [[WP] The sea comes home](https://www.reddit.com/r/WritingPrompts/comments/abc/) today.",
     "Written for [WP] The sea comes home today."),
    ("[**Part one**](https://example.com/one) and [part *two*](https://example.com/two)", "Part one and part two"),
])
def test_links_whose_text_holds_brackets_leak_no_markdown_or_url(body: str, expected: str) -> None:
    plain = markdown_to_plain(body)
    assert plain == expected and "http" not in plain and "](" not in plain


@pytest.mark.parametrize("body", ["#**THE LAST LIGHT**\n\nThe sea came home.", "#THE LAST LIGHT\n\nThe sea came home.",
                                  "THE LAST LIGHT\n=\n\nThe sea came home."])
def test_headings_without_a_space_and_one_character_underlines_lose_their_markup(body: str) -> None:
    assert markdown_to_plain(body) == "THE LAST LIGHT\n\nThe sea came home."


def test_a_number_sign_before_a_digit_is_text() -> None:
    assert markdown_to_plain("#1 on the list was the sea.") == "#1 on the list was the sea."
