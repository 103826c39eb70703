"""MinHash signatures and the LSH index of near-duplicate critiques (pure domain code)."""

from __future__ import annotations

import json
import os
import random
import struct
import subprocess
import sys
import tracemalloc
from pathlib import Path

import pytest

from coach.domain.finetune_data import DedupeItem, DuplicateFilter, confirm_near_duplicates, find_duplicates
from coach.domain.near_duplicates import (
    SIGNATURE_BYTES,
    NearDuplicateIndex,
    critique_signature,
    estimate_similarity,
    jaccard,
    shingles,
    story_fingerprint,
)

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "validator"
PACK = struct.Struct("<64I")


def _critiques() -> list[str]:
    """Realistic critiques of the same few stories: they share phrasing but none repeats another."""
    rows = [json.loads(line) for line in (FIXTURES / "good.jsonl").read_text(encoding="utf-8").splitlines()
            if line.strip()]
    return [row["feedback"] for row in rows]


def _changed(text: str, words: int, seed: int) -> str:
    rng = random.Random(seed)
    tokens = text.split()
    for _ in range(words):
        tokens[rng.randrange(len(tokens))] = f"changed{rng.randint(0, 10**6)}"
    return " ".join(tokens)


def test_a_signature_is_256_bytes_whatever_the_length():
    critiques = _critiques()
    assert all(len(critique_signature(c)) == SIGNATURE_BYTES == 256 for c in [*critiques, "", "one", "x " * 5000])
    assert critique_signature(critiques[0]) == critique_signature(critiques[0].upper().replace(" ", "  "))


def test_identical_critiques_are_found():
    critique = _critiques()[0]
    index = NearDuplicateIndex()
    assert index.add("a", critique_signature(critique)) is None
    assert index.add("b", critique_signature(critique)) == ("a", 1.0)
    assert len(index) == 1  # the duplicate is not indexed


def test_a_critique_with_a_few_words_changed_is_found():
    critique = max(_critiques(), key=len)
    tweaked = _changed(critique, 3, seed=1)
    assert jaccard(shingles(critique), shingles(tweaked)) > 0.85
    index = NearDuplicateIndex()
    index.add("a", critique_signature(critique))
    found = index.add("b", critique_signature(tweaked))
    assert found is not None and found[0] == "a" and found[1] >= 0.8


def test_most_close_variants_are_found():
    # The estimate has a standard error of about 0.04 here: a pair well above the threshold is
    # confirmed almost always, and the band search must not lose it.
    pairs = 0
    found = 0
    for number, critique in enumerate(_critiques()):
        for seed in range(5):
            tweaked = _changed(critique, max(1, len(critique.split()) // 60), seed=number * 10 + seed)
            if jaccard(shingles(critique), shingles(tweaked)) < 0.9:
                continue
            pairs += 1
            index = NearDuplicateIndex()
            index.add("a", critique_signature(critique))
            found += index.add("b", critique_signature(tweaked)) is not None
    assert pairs >= 100 and found >= 0.95 * pairs


def test_unrelated_critiques_are_not_found():
    critiques = _critiques()
    index = NearDuplicateIndex()
    results = [index.add(f"s{n:03}", critique_signature(c)) for n, c in enumerate(sorted(set(critiques)))]
    assert results == [None] * len(set(critiques)) and len(index) == len(set(critiques))
    rng = random.Random(7)
    vocabulary = [f"w{i}" for i in range(3000)]
    for n in range(300):
        text = " ".join(rng.choice(vocabulary) for _ in range(150))
        assert index.add(f"t{n:03}", critique_signature(text)) is None


def test_the_best_match_wins_then_the_smallest_id():
    query = list(range(64))
    index = NearDuplicateIndex(threshold=0.5)
    # Two kept signatures that agree with each other in 12 values only, and with the query in 40 and 36.
    index.add("m", PACK.pack(*query[:40], *range(1000, 1024)))
    index.add("k", PACK.pack(*range(2000, 2028), *query[28:]))
    assert len(index) == 2
    assert index.add("z", PACK.pack(*query)) == ("m", 40 / 64)

    tie = NearDuplicateIndex(threshold=0.5)
    tie.add("m", PACK.pack(*query[:32], *range(1000, 1032)))
    tie.add("k", PACK.pack(*range(2000, 2032), *query[32:]))  # the same agreement, a smaller id
    assert tie.add("z", PACK.pack(*query)) == ("k", 0.5)


def test_the_threshold_is_applied_to_the_estimate():
    base = list(range(64))
    index = NearDuplicateIndex(threshold=0.75)
    index.add("a", PACK.pack(*base))
    assert index.add("b", PACK.pack(*base[:47], *range(1000, 1017))) is None  # 47/64 < 0.75
    assert index.add("c", PACK.pack(*base[:48], *range(2000, 2016))) == ("a", 0.75)  # 48/64 = 0.75


def test_empty_critiques_match_each_other_only():
    index = NearDuplicateIndex()
    assert index.add("a", critique_signature("")) is None
    assert index.add("b", critique_signature("?!")) == ("a", 1.0)
    assert index.add("c", critique_signature(_critiques()[0])) is None
    assert estimate_similarity(critique_signature(""), critique_signature("word")) == 0.0


def test_bad_signatures_and_thresholds_are_refused():
    with pytest.raises(ValueError, match="256 bytes"):
        NearDuplicateIndex().add("a", b"short")
    for threshold in (0, -0.1, 1.5):
        with pytest.raises(ValueError):
            NearDuplicateIndex(threshold)


def test_order_does_not_matter_once_the_caller_sorts():
    critiques = _critiques()
    items = [DedupeItem(story_id=f"s{n:03}", story=f"story {n}", critique=c) for n, c in enumerate(critiques)]
    items += [DedupeItem(story_id=f"v{n:03}", story=f"variant {n}", critique=_changed(c, 1, seed=n))
              for n, c in enumerate(critiques[:10])]
    expected = find_duplicates(items)
    assert expected.count("near_duplicate_critique") >= 8
    rng = random.Random(11)
    for _ in range(3):
        shuffled = list(items)
        rng.shuffle(shuffled)
        assert find_duplicates(shuffled) == expected
    # The streaming filter, fed in id order and its candidates confirmed, reaches the same verdicts.
    dedupe = DuplicateFilter()
    ordered = sorted(items, key=lambda i: i.story_id)
    removed = {d.story_id: d for item in ordered
               if (d := dedupe.add(item.story_id, story_fingerprint(item.story), critique_signature(item.critique)))}
    confirm_near_duplicates(removed, {i.story_id: i.critique for i in ordered})
    assert list(removed.values()) == expected.removed


def test_the_duplicate_filter_drops_a_repeated_story_before_looking_at_its_critique():
    dedupe = DuplicateFilter()
    critique = critique_signature(_critiques()[0])
    assert dedupe.add("a", story_fingerprint("The rain fell."), critique) is None
    story = dedupe.add("b", story_fingerprint("the RAIN fell"), critique_signature("unrelated words here"))
    assert story is not None and (story.duplicate_of, story.reason, story.similarity) == ("a", "duplicate_story", 1.0)
    near = dedupe.add("c", story_fingerprint("Another story."), critique)
    assert near is not None and (near.duplicate_of, near.reason, near.similarity) == (
        "a", "near_duplicate_critique", 1.0)


def test_signatures_are_the_same_in_another_process():
    texts = [*_critiques()[:5], "", "a short one"]
    script = ("import json, sys\n"
              "from coach.domain.near_duplicates import critique_signature\n"
              "print(json.dumps([critique_signature(t).hex() for t in json.load(sys.stdin)]))\n")
    for seed in ("1", "2"):
        env = {**os.environ, "PYTHONHASHSEED": seed}
        done = subprocess.run([sys.executable, "-c", script], input=json.dumps(texts), capture_output=True,
                              text=True, env=env, check=True, timeout=60)
        assert json.loads(done.stdout) == [critique_signature(t).hex() for t in texts]


def test_memory_per_kept_item_is_bounded():
    # Random signatures are the worst case: every item is kept, in 16 buckets of its own.
    rng = random.Random(5)
    signatures = [rng.randbytes(SIGNATURE_BYTES) for _ in range(4_000)]
    ids = [f"reddit-{n:08d}" for n in range(len(signatures))]
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        index = NearDuplicateIndex()
        for story_id, signature in zip(ids, signatures, strict=True):
            index.add(story_id, signature)
        per_item = (tracemalloc.get_traced_memory()[0] - before) / len(signatures)
    finally:
        tracemalloc.stop()
    assert len(index) == len(signatures)
    assert per_item < 2_000  # about 1.4 KB: 256 for the signature, the rest 16 bucket entries
