"""Fine-tuning data checks, distributions, deduplication and training cost (pure domain code)."""

from __future__ import annotations

import json
import random

import pytest

from coach.domain.finetune_data import (
    DedupeItem,
    billable_training_tokens,
    check_chat_jsonl,
    default_epochs,
    describe_cost,
    distribution,
    encoding_for_model,
    estimate_training_cost,
    example_token_limit,
    find_duplicates,
    overlapping_examples,
    training_cost_usd,
)
from tests.support.chat_rows import ESTIMATE, WORDS, jsonl


def _example(user: str = "Story text here.", answer: str = "You open well.", system: str | None = "Editor.",
             **extra) -> dict:
    messages = ([{"role": "system", "content": system}] if system is not None else [])
    messages += [{"role": "user", "content": user}, {"role": "assistant", "content": answer}]
    return {"messages": messages, **extra}


def _valid_rows(n: int) -> list[dict]:
    return [_example(user=f"Story number {i}.", answer=f"You handle scene {i} with care.") for i in range(n)]


# -- format checks --------------------------------------------------------------------------------------

def test_a_clean_file_passes_with_no_problems():
    result = check_chat_jsonl(jsonl(_valid_rows(60)), WORDS)
    assert result.passed and result.problems == [] and result.warnings == []
    assert len(result.examples) == 60


@pytest.mark.parametrize(("line", "code"), [
    ("{not json", "invalid_json"),
    ("[1, 2]", "not_an_object"),
    (json.dumps({}), "missing_messages_list"),
    (json.dumps({"messages": []}), "missing_messages_list"),
    (json.dumps({"messages": "hi"}), "missing_messages_list"),
    (json.dumps({**_example(), "extra": 1}), "unknown_example_key"),
    (json.dumps({"messages": ["hello", {"role": "assistant", "content": "x"}]}), "message_not_an_object"),
    (json.dumps({"messages": [{"content": "x"}, {"role": "assistant", "content": "y"}]}), "missing_role"),
    (json.dumps({"messages": [{"role": "narrator", "content": "x"}, {"role": "assistant", "content": "y"}]}),
     "unknown_role"),
    (json.dumps({"messages": [{"role": "user"}, {"role": "assistant", "content": "y"}]}), "missing_content"),
    (json.dumps({"messages": [{"role": "user", "content": "  "}, {"role": "assistant", "content": "y"}]}),
     "missing_content"),
    (json.dumps({"messages": [{"role": "user", "content": ["a"]}, {"role": "assistant", "content": "y"}]}),
     "non_string_content"),
    (json.dumps({"messages": [{"role": "user", "content": "x", "tone": "warm"},
                              {"role": "assistant", "content": "y"}]}), "unknown_message_key"),
    (json.dumps({"messages": [{"role": "user", "content": "x", "weight": 1},
                              {"role": "assistant", "content": "y"}]}), "bad_weight"),
    (json.dumps({"messages": [{"role": "user", "content": "x"},
                              {"role": "assistant", "content": "y", "weight": 0.5}]}), "bad_weight"),
    (json.dumps({"messages": [{"role": "system", "content": "x"}, {"role": "user", "content": "y"}]}),
     "no_assistant_message"),
    ("", "blank_line"),
])
def test_each_malformed_line_is_named_by_number_and_code(line, code):
    rows: list = _valid_rows(12)
    rows.insert(4, line)  # becomes line 5
    result = check_chat_jsonl(jsonl(rows), ESTIMATE)
    assert not result.passed
    assert [(p.line, p.code) for p in result.problems] == [(5, code)]
    assert result.bad_lines == [5]
    assert "line 5" in result.one_line() and code in result.one_line()


def test_weight_on_an_assistant_message_is_allowed():
    rows = _valid_rows(10)
    rows[0]["messages"][-1]["weight"] = 0
    rows[1]["messages"][-1]["weight"] = 1
    assert check_chat_jsonl(jsonl(rows), ESTIMATE).passed


def test_several_bad_lines_are_all_reported_in_line_order():
    rows: list = _valid_rows(15)
    rows[2] = "{broken"
    rows[9] = json.dumps({"messages": [{"role": "user", "content": "only a question"}]})
    result = check_chat_jsonl(jsonl(rows), ESTIMATE)
    assert result.bad_lines == [3, 10]
    assert "offending lines: 3, 10" in result.one_line()


def test_fewer_than_ten_examples_fail_and_fewer_than_fifty_warn():
    small = check_chat_jsonl(jsonl(_valid_rows(9)), ESTIMATE)
    assert not small.passed and "too_few_examples" in small.dataset_errors[0]
    medium = check_chat_jsonl(jsonl(_valid_rows(10)), ESTIMATE)
    assert medium.passed and any("only 10 examples" in w for w in medium.warnings)
    # A validation file may be small: the size rule is off for it.
    assert check_chat_jsonl(jsonl(_valid_rows(2)), ESTIMATE, min_examples=None).passed


def test_missing_system_and_user_messages_are_counted_as_warnings():
    rows = _valid_rows(10)
    rows[0] = _example(system=None)
    rows[1] = {"messages": [{"role": "system", "content": "s"}, {"role": "assistant", "content": "a"}]}
    result = check_chat_jsonl(jsonl(rows), WORDS)
    summary = result.summary()
    assert result.passed
    assert summary.missing_system == 1 and summary.missing_user == 1
    assert "1 examples have no system message" in result.warnings
    assert "1 examples have no user message" in result.warnings


def test_an_example_over_the_token_limit_is_refused_or_warned_as_configured():
    rows = _valid_rows(10)
    rows[6] = _example(user="word " * 200)
    refused = check_chat_jsonl(jsonl(rows), WORDS, token_limit=100)
    assert [(p.line, p.code) for p in refused.problems] == [(7, "too_many_tokens")]
    assert refused.summary().over_token_limit == 1
    warned = check_chat_jsonl(jsonl(rows), WORDS, token_limit=100, over_limit="warn")
    assert warned.passed and any(w.startswith("line 7:") for w in warned.warnings)


def test_token_counts_and_distributions_match_a_hand_count():
    # Word "tokens": each message is 3 + role (1) + content words; the reply primer adds 3.
    rows = [
        _example(system="be kind", user="one two three", answer="a b"),          # 3*3 + 3 + 2+3+2 + 3 = 22
        _example(system="be kind", user="one", answer="a b c d"),                # 9 + 3 + 2+1+4 + 3 = 22
        _example(system=None, user="one two", answer="a"),                       # 6 + 2 + 2+1 + 3 = 14
    ]
    result = check_chat_jsonl(jsonl(rows), WORDS, min_examples=None)
    assert result.example_tokens == [22, 22, 14]
    assert [e.assistant_tokens for e in result.examples] == [2, 4, 1]
    summary = result.summary()
    assert (summary.total_tokens.min, summary.total_tokens.median, summary.total_tokens.max) == (14, 22, 22)
    assert summary.messages.min == 2 and summary.messages.max == 3
    assert summary.assistant_tokens.median == 2 and summary.assistant_tokens.p90 == pytest.approx(3.6)
    assert not summary.estimated and summary.token_method == "words"


def test_estimated_counts_are_flagged():
    result = check_chat_jsonl(jsonl(_valid_rows(60)), ESTIMATE)
    assert result.summary().estimated
    assert any("estimates" in w for w in result.warnings)


def test_distribution_percentiles_interpolate_like_numpy():
    d = distribution([1, 2, 3, 4, 5, 6, 7, 8, 9, 10])
    assert (d.min, d.median, d.p90, d.max, d.mean) == (1, 5.5, 9.1, 10, 5.5)
    assert distribution([]).max == 0


def test_validation_examples_that_repeat_training_examples_are_found():
    train = jsonl(_valid_rows(5))
    validation = jsonl([_valid_rows(5)[3], _example(user="new story")])
    assert overlapping_examples(train, validation) == [1]


# -- deduplication --------------------------------------------------------------------------------------

def _prose(seed: int, words: int = 80) -> str:
    rng = random.Random(seed)
    vocabulary = [f"w{i}" for i in range(400)]
    return " ".join(rng.choice(vocabulary) for _ in range(words))


def test_the_same_story_told_twice_keeps_the_first_by_id():
    story = "The rain fell on Alder Street.\n\nShe counted the windows."
    items = [
        DedupeItem(story_id="b-story", story=story.upper().replace("\n\n", "  "), critique=_prose(1)),
        DedupeItem(story_id="a-story", story=story, critique=_prose(2)),
        DedupeItem(story_id="c-other", story="A different tale entirely.", critique=_prose(3)),
    ]
    result = find_duplicates(items)
    assert result.kept == ["a-story", "c-other"]
    assert [(d.story_id, d.duplicate_of, d.reason) for d in result.removed] == [
        ("b-story", "a-story", "duplicate_story")]


def test_near_identical_critiques_are_dropped_and_distinct_ones_kept():
    base = _prose(10, 120)
    tweaked = base.replace("w1 ", "w2 ", 1) + " w399"  # one word changed, one added
    items = [DedupeItem(story_id=f"s{i}", story=f"story {i}", critique=_prose(100 + i)) for i in range(30)]
    items += [DedupeItem(story_id="x-original", story="x", critique=base),
              DedupeItem(story_id="y-copy", story="y", critique=tweaked)]
    result = find_duplicates(items)
    assert result.count("near_duplicate_critique") == 1
    (dup,) = result.removed
    assert (dup.story_id, dup.duplicate_of) == ("y-copy", "x-original") and dup.similarity >= 0.8
    assert len(result.kept) == 31


def test_dedupe_does_not_depend_on_input_order():
    base = _prose(5, 60)
    items = [DedupeItem(story_id=f"s{i:02}", story=f"story {i}", critique=_prose(i)) for i in range(20)]
    items += [DedupeItem(story_id="z1", story="z1", critique=base), DedupeItem(story_id="z0", story="z0",
                                                                               critique=base + " w7")]
    forward, backward = find_duplicates(items), find_duplicates(list(reversed(items)))
    assert forward == backward
    assert [(d.story_id, d.duplicate_of) for d in forward.removed] == [("z1", "z0")]


def _variants(seed: int, count: int = 60) -> list[str]:
    """Many variants of a few critiques: lots of near-duplicates at various levels."""
    rng = random.Random(seed)
    pool = [_prose(i, 50) for i in range(8)]
    critiques = []
    for _ in range(count):
        words = rng.choice(pool).split()
        for _ in range(rng.randint(0, 6)):
            words[rng.randrange(len(words))] = f"v{rng.randint(0, 999)}"
        critiques.append(" ".join(words))
    return critiques


def test_lsh_finds_the_same_candidates_as_comparing_every_signature_and_keeps_only_exact_matches():
    from coach.domain.finetune_data import jaccard, shingles
    from coach.domain.near_duplicates import critique_signature, estimate_similarity

    critiques = _variants(3)
    items = [DedupeItem(story_id=f"s{i:02}", story=f"story {i}", critique=c) for i, c in enumerate(critiques)]
    result = find_duplicates(items, threshold=0.7)
    # The brute-force reference: keep in id order, drop anything estimated >= 0.7 similar to a kept one.
    signatures = [critique_signature(c) for c in critiques]
    kept: list[int] = []
    for i, signature in enumerate(signatures):
        if all(estimate_similarity(signature, signatures[k]) < 0.7 for k in kept):
            kept.append(i)
    candidates = {f"s{i:02}" for i in range(len(critiques)) if i not in kept}
    by_id = {item.story_id: item.critique for item in items}
    assert 0 < len(result.removed) < 60
    # Every removal was a candidate, and is confirmed by the exact similarity; the others were not confirmed.
    assert {d.story_id for d in result.removed} <= candidates
    for duplicate in result.removed:
        exact = jaccard(shingles(by_id[duplicate.story_id]), shingles(by_id[duplicate.duplicate_of]))
        assert exact >= 0.7 and duplicate.similarity == round(exact, 4)


def test_similarity_is_an_estimate_close_to_the_exact_jaccard():
    from coach.domain.finetune_data import jaccard, shingles

    critiques = _variants(4, 120)
    items = [DedupeItem(story_id=f"s{i:03}", story=f"story {i}", critique=c) for i, c in enumerate(critiques)]
    result = find_duplicates(items, threshold=0.7)
    by_id = dict(zip((i.story_id for i in items), critiques, strict=True))
    kept = [shingles(by_id[k]) for k in result.kept]
    for duplicate in result.removed:
        exact = jaccard(shingles(by_id[duplicate.story_id]), shingles(by_id[duplicate.duplicate_of]))
        assert abs(duplicate.similarity - exact) < 0.2  # four standard errors of a 64-value estimate
        assert exact > 0.5
    # A kept critique is never a clear copy of another kept one.
    assert all(jaccard(a, b) < 0.9 for n, a in enumerate(kept) for b in kept[:n])


def test_threshold_must_be_a_similarity():
    with pytest.raises(ValueError):
        find_duplicates([], threshold=0)


# -- epochs and cost ------------------------------------------------------------------------------------

def test_default_epochs_follow_openais_rule():
    assert default_epochs(10) == 10  # 30 < 100: min(25, 100 // 10)
    assert default_epochs(3) == 25  # min(25, 33)
    assert default_epochs(34) == 3  # 102 >= 100
    assert default_epochs(8_333) == 3  # 24,999 <= 25,000
    assert default_epochs(10_000) == 2  # 30,000 > 25,000: 25,000 // 10,000
    assert default_epochs(40_000) == 1


def test_cost_estimate_matches_a_hand_computation():
    # 20 examples, one of them over the 4,096 limit: billed at the limit.
    tokens = [1_000] * 19 + [5_000]
    cost = estimate_training_cost(tokens, epochs=None, token_limit=4_096, price_per_million=3.0)
    # default epochs for 20 examples: 60 < 100 -> min(25, 100 // 20) = 5
    per_epoch = 19 * 1_000 + 4_096  # 23,096
    assert cost.epochs == 5 and cost.epochs_rule == "default"
    assert cost.tokens_per_epoch == per_epoch
    assert cost.billable_tokens == per_epoch * 5 == 115_480
    assert cost.usd == pytest.approx(115_480 / 1_000_000 * 3.0) == pytest.approx(0.34644)

    given = estimate_training_cost(tokens, epochs=2, token_limit=4_096, price_per_million=25.0)
    assert (given.epochs, given.epochs_rule, given.billable_tokens) == (2, "given", 46_192)
    assert given.usd == pytest.approx(1.1548)
    assert billable_training_tokens(tokens, 2, 4_096) == 46_192


def test_unknown_price_gives_tokens_but_no_dollars():
    cost = estimate_training_cost([100] * 50, epochs=None, token_limit=65_536, price_per_million=None)
    assert cost.billable_tokens == 15_000 and cost.usd is None
    assert training_cost_usd(1_000_000, None) is None
    assert training_cost_usd(2_500_000, 3.0) == 7.5


def test_cost_line_says_tokens_epochs_rule_and_dollars():
    line = describe_cost(billable_tokens=115_480, epochs=5, epochs_rule="default", usd=0.34644,
                         price_per_million=3.0, estimated=True)
    assert "115,480 billable tokens" in line and "23,096 x 5 epochs" in line
    assert "default rule" in line and "$0.3464" in line and "estimated" in line
    unpriced = describe_cost(billable_tokens=10, epochs=1, epochs_rule="given", usd=None, price_per_million=None)
    assert "price unknown" in unpriced


def test_encoding_and_token_limit_follow_the_base_model():
    assert encoding_for_model("gpt-4o-mini-2024-07-18") == "o200k_base"
    assert encoding_for_model("ft:gpt-4.1-mini:org:coach:abc") == "o200k_base"
    assert encoding_for_model("gpt-3.5-turbo-0125") == "cl100k_base"
    assert example_token_limit("gpt-4o-mini-2024-07-18") == 65_536
    assert example_token_limit("gpt-3.5-turbo-0125") == 16_385
    assert example_token_limit("gpt-4o-mini", override=8_000) == 8_000


def test_the_split_keeps_enough_training_examples_for_openai():
    from coach.domain.dataset import split_ids

    ids = [f"s{i:02}" for i in range(11)]
    train, validation = split_ids(ids, 0.3, seed=1, min_train=10)
    assert len(train) == 10 and len(validation) == 1
    assert split_ids(ids, 0.3, seed=1, min_train=10) == (train, validation)
    assert sorted(train + validation) == ids
    # Without the minimum, the same split would leave fewer than 10 for training.
    assert len(split_ids(ids, 0.3, seed=1)[0]) < 10
