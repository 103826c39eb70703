"""The shard map run locally, and what its failed batches leave: retried, counted, and fatal past the tolerance."""

from __future__ import annotations

import pytest

from coach.domain.records import Story
from coach.errors import CoachError
from coach.local.dir_store import DirectoryStore
from coach.local.shard_map import run_shard_map
from coach.pipeline.map_results import read_map_failures


def _store(tmp_path, n: int) -> DirectoryStore:
    store = DirectoryStore(tmp_path)
    for i in range(n):
        store.put_story("b", Story(story_id=f"s{i:03d}", title="T", text="A story.", source="samples"))
    return store


def test_every_batch_gets_the_event_aws_sends_a_child(tmp_path):
    store = _store(tmp_path, 12)
    events = []
    run_shard_map("b", "r1", store=store, call=lambda e: events.append(e) or {"stories": len(e["Items"])},
                  batch_size=5)
    assert [len(e["Items"]) for e in events] == [5, 5, 2]
    assert events[0]["BatchInput"] == {"build_id": "b", "run_id": "r1"}
    assert events[0]["Items"][0]["Key"] == "builds/b/stories/s000.json"


def test_a_failing_batch_is_retried_then_counted_with_its_stories_and_cause(tmp_path):
    store = _store(tmp_path, 100)
    tries: dict[str, int] = {}

    def call(event):
        first = event["Items"][0]["Key"]
        tries[first] = tries.get(first, 0) + 1
        if first.endswith("s040.json"):
            raise TimeoutError("the batch ran out of time")
        return {"stories": len(event["Items"])}

    output = run_shard_map("b", "r1", store=store, call=call, batch_size=5)  # 1 of 20 batches: 5 %, tolerated
    assert tries["builds/b/stories/s040.json"] == 3 and tries["builds/b/stories/s000.json"] == 1
    failures = read_map_failures(store, output)
    assert (failures.batches, failures.stories, failures.causes) == (1, 5, {"TimeoutError": 1})
    assert failures.results_key == output["ResultWriterDetails"]["Key"]


def test_failures_past_the_tolerance_stop_the_build_naming_the_results(tmp_path):
    store = _store(tmp_path, 20)

    def call(event):
        if event["Items"][0]["Key"] >= "builds/b/stories/s010.json":
            raise ValueError("unreadable record")
        return {}

    with pytest.raises(CoachError) as stopped:
        run_shard_map("b", "r1", store=store, call=call, batch_size=5)
    assert stopped.value.code == "shard_batches_failed"
    assert "2 of 4 shard batches failed (ValueError: unreadable record)" in stopped.value.message
    assert "builds/b/map-results/" in stopped.value.message


def test_a_map_without_results_reads_as_no_failures(tmp_path):
    store = _store(tmp_path, 1)
    assert read_map_failures(store, None).batches == 0
    assert read_map_failures(store, {"MapRunArn": "x"}).stories == 0


def test_the_manifest_counts_the_stories_of_failed_batches(tmp_path):
    from coach.domain.records import BuildRequest
    from coach.local.shard_map import in_process
    from coach.pipeline.assemble import assemble
    from tests.handlers.test_stage_scaling import RUN, _seed

    store = _seed(tmp_path, "fb", 40)
    shard = in_process(store, max_story_tokens=1_500)

    def call(event):
        if event["Items"][0]["Key"].endswith("s00035.json"):
            raise RuntimeError("the child timed out")
        return shard(event)

    output = run_shard_map("fb", RUN, store=store, call=call, batch_size=5, tolerated_percent=20)
    _, manifest = assemble(BuildRequest(build_id="fb", provider="offline"), store=store, shards=output)
    assert manifest.shard_failures is not None
    assert (manifest.shard_failures.batches, manifest.shard_failures.stories) == (1, 5)
    assert manifest.shard_failures.causes == {"RuntimeError": 1}
    assert manifest.counts.stories == 35  # the failed batch's stories are named as missing, not counted as done
