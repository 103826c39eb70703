"""The per-run tally: a story is counted once per run whatever the deliveries, and progress reads it in one call."""

from __future__ import annotations

import boto3
import pytest

from coach.adapters.run_tally import DynamoRunTally, MemoryRunTally, marker_id


@pytest.fixture(params=["dynamodb", "memory"])
def tally(request, aws):
    if request.param == "memory":
        return MemoryRunTally()
    return DynamoRunTally(aws.env()["COACH_IDEMPOTENCY_TABLE"], boto3.client("dynamodb"))


def test_a_redelivered_story_is_counted_once(tally):
    assert tally.count("b", "r1", "s1", "generated")
    assert not tally.count("b", "r1", "s1", "generated")
    assert tally.count("b", "r1", "s2", "skipped_budget")
    counts = tally.read("b", "r1")
    assert (counts.generated, counts.failed, counts.skipped_budget, counts.accounted) == (1, 0, 1, 2)


def test_runs_and_builds_are_counted_apart(tally):
    tally.count("b", "r1", "s1", "generated")
    tally.count("b", "r2", "s1", "failed")
    tally.count("c", "r1", "s1", "failed")
    assert tally.read("b", "r1").generated == 1 and tally.read("b", "r1").failed == 0
    assert tally.read("b", "r2").failed == 1
    assert tally.read("never", "run").accounted == 0


def test_a_failure_that_later_succeeds_moves_but_a_critique_never_moves_back(tally):
    assert tally.count("b", "r", "s1", "failed")
    assert tally.count("b", "r", "s1", "generated")  # redriven and generated
    assert not tally.count("b", "r", "s1", "failed")  # a stale failure cannot take it back
    counts = tally.read("b", "r")
    assert (counts.generated, counts.failed) == (1, 0)


def test_counted_answers_for_more_stories_than_one_batch_get(tally):
    ids = [f"s{i:03d}" for i in range(250)]
    for story_id in ids[::2]:
        tally.count("b", "r", story_id, "generated")
    found = tally.counted("b", "r", ids)
    assert set(found) == set(ids[::2]) and set(found.values()) == {"generated"}


def test_an_unknown_outcome_is_refused(tally):
    with pytest.raises(ValueError):
        tally.count("b", "r", "s", "reused")


def test_the_dynamodb_tally_writes_the_marker_and_the_counter_in_one_transaction(aws):
    client = boto3.client("dynamodb")
    calls: list[str] = []
    client.meta.events.register("before-call.dynamodb.*", lambda model, **_: calls.append(model.name))
    table = aws.env()["COACH_IDEMPOTENCY_TABLE"]
    tally = DynamoRunTally(table, client)
    tally.count("b", "r", "s1", "generated")
    assert calls == ["TransactWriteItems"]
    calls.clear()
    tally.read("b", "r")
    assert calls == ["GetItem"]
    marker = client.get_item(TableName=table, Key={"id": {"S": marker_id("b", "r", "s1")}})["Item"]
    assert marker["outcome"]["S"] == "generated" and int(marker["expiration"]["N"]) > 0
