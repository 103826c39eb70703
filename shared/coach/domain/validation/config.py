"""Every threshold the validator uses, in one place.

The defaults are tuned on the labelled fixtures in tests/fixtures/validator/: a good critique is one to
three paragraphs of roughly 120-400 words, so the length limits sit well outside that band and the
structural rules need several hits before they fire. Change a number here, re-run the fixture tests.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class ValidatorConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    # Length, in words of the cleaned text.
    min_words: int = Field(40, ge=1, description="fewer words than this is too short to be useful")
    max_words: int = Field(450, ge=1, description="more words than this is far longer than a critique")

    # A critique that ends on a comma or a dangling function word was cut off mid-sentence.
    flag_unterminated_ending: bool = True

    # Lists and headings.
    min_list_items: int = Field(2, ge=1, description="list-item lines (1. / - / *) before it is a list")
    min_label_lines: int = Field(2, ge=1, description="short 'Heading:' lines before it is a sectioned list")
    min_inline_enumerators: int = Field(3, ge=2, description="'1) ... 2) ... 3)' inside a paragraph")

    # Annotations such as "(positive)" or a "Negative:" label at the start of a line.
    min_annotations: int = Field(1, ge=1)

    # Line-by-line quoting.
    min_quote_led_lines: int = Field(3, ge=2, description="lines that open with a quotation of the story")
    min_quote_comment_pairs: int = Field(3, ge=2, description='"quote" - comment pairs inside paragraphs')
    max_quoted_fraction: float = Field(0.4, gt=0, le=1, description="share of words inside quotations")
    min_quotes_for_fraction: int = Field(4, ge=1, description="quotations needed before the share counts")

    # Third person: "the author" / "the writer" outside quotations. Neutral craft talk that never says "you"
    # ("The story opens with a strong image") is kept unless the stricter rule is switched on.
    min_third_person_mentions: int = Field(1, ge=1)
    require_second_person: bool = Field(False, description="reject critiques that never address the writer")
    min_second_person: int = Field(1, ge=0, description="with require_second_person: 'you' at least this often")

    # Story continuation or retelling.
    overlap_ngram: int = Field(6, ge=3, description="word n-gram length for overlap with the story")
    max_copied_fraction: float = Field(0.3, gt=0, le=1, description="share of words copied from the story")
    max_copied_run: int = Field(35, ge=5, description="longest run of consecutive copied words")
    min_narrative_run: int = Field(3, ge=2, description="consecutive sentences of narrative, not critique")
    min_narrative_run_words: int = Field(35, ge=1)
    max_narrative_fraction: float = Field(0.5, gt=0, le=1, description="share of sentences that narrate")
    min_sentences_for_fraction: int = Field(4, ge=1)
    min_invented_dialogue: int = Field(2, ge=1, description="dialogue lines with tags not in the story")

    # Repetition loops.
    min_sentence_repeats: int = Field(3, ge=2, description="the same sentence this often anywhere")
    min_consecutive_sentence_words: int = Field(4, ge=1, description="a sentence said twice in a row")
    phrase_ngram: int = Field(8, ge=3, description="word n-gram length for phrase loops")
    min_phrase_repeats: int = Field(3, ge=2)
    loop_max_period: int = Field(60, ge=1, description="longest repeating unit (words) for a tail loop")
    loop_min_repeats_short: int = Field(3, ge=2, description="repeats of a unit under loop_long_unit words")
    loop_long_unit: int = Field(4, ge=1)
    loop_min_repeats_long: int = Field(2, ge=2)

    # Evidence kept per rule in a verdict.
    max_evidence_per_rule: int = Field(3, ge=1)


DEFAULT_CONFIG = ValidatorConfig()
