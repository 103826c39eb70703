from coach.domain.dataset import billable_training_tokens, default_epochs, split_ids


def test_split_is_deterministic_and_order_free():
    ids = [f"story-{i}" for i in range(200)]
    a = split_ids(ids, 0.1, seed=7)
    b = split_ids(list(reversed(ids)), 0.1, seed=7)
    assert a == b
    train, validation = a
    assert not set(train) & set(validation)
    assert len(train) + len(validation) == 200
    assert 8 <= len(validation) <= 35  # about a tenth


def test_adding_stories_never_moves_existing_ones():
    ids = [f"s{i}" for i in range(100)]
    _, validation = split_ids(ids, 0.2)
    _, validation_more = split_ids([*ids, *[f"t{i}" for i in range(50)]], 0.2)
    assert set(validation) <= set(validation_more)


def test_small_sets_still_get_a_validation_example():
    train, validation = split_ids([f"x{i}" for i in range(10)], 0.01)
    assert len(validation) == 1 and len(train) == 9


def test_zero_fraction_means_no_validation():
    assert split_ids(["a", "b"], 0.0) == (["a", "b"], [])


def test_default_epoch_rule():
    assert default_epochs(10) == 10  # 30 < 100 -> min(25, 100 // 10)
    assert default_epochs(2) == 25
    assert default_epochs(100) == 3
    assert default_epochs(10_000) == 2  # 30,000 > 25,000 -> 25,000 // 10,000


def test_billable_tokens_cap_each_example():
    assert billable_training_tokens([100, 70_000], 3, 65_536) == (100 + 65_536) * 3
