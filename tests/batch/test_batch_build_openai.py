"""A 60-story batch build on OpenAI's Batch API (the fake), through the real handlers: 10% of requests fail
in the error file and one of the three files expires half way. Every story ends with one critique, none is
paid twice, and the manifest's cost is the records' cost at the prices they were paid."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from coach.adapters.storage import batch_state_key
from coach.domain.pricing import price_table
from coach.domain.prompt import PROMPT_VERSION
from coach.domain.records import BuildManifest
from coach.local.lambda_runtime import invoke
from tests.batch.helpers import drain_queue, run_batches, store, write_stories
from tests.fakes.openai_server import FakeOpenAIServer
from tests.support.shards import shard_build
from tests.support.stories import critique, marker

EVENTS = Path(__file__).resolve().parents[2] / "infra" / "events"
BUILD = "batch-60"
MODEL = "gpt-4o-mini"


@pytest.fixture
def openai_fake(aws, monkeypatch):
    with FakeOpenAIServer(api_key="sk-batch", reply=critique, batch_error_rate=0.10, batch_expire_next=1,
                          seed=7) as server:
        monkeypatch.setenv("OPENAI_API_KEY", "sk-batch")
        monkeypatch.setenv("OPENAI_BASE_URL", server.base_url)
        monkeypatch.setenv("COACH_BATCH_MAX_RECORDS", "20")  # three files of 20
        yield server


def _request(tmp_path, **extra) -> dict:
    path = tmp_path / "stories.jsonl"
    write_stories(path, 60)
    return {"build_id": BUILD, "source": {"kind": "jsonl", "path": str(path)}, "provider": "openai",
            "model": MODEL, "generation": "batch", "batch": {"max_resubmits": 1}, **extra}


def test_sixty_stories_partial_failures_and_an_expired_file(aws, openai_fake, tmp_path):
    request = invoke("checkinput", _request(tmp_path, budget_usd=1.0))
    scrape = invoke("scraper", {"request": request})
    assert scrape["enqueued"] == 60, scrape
    steps = run_batches(BUILD)
    fallback = sum(s.get("fallback", 0) for s in steps)
    drain_queue(aws)
    progress = invoke("progress", {"build_id": BUILD, "enqueued": 60})
    assert progress["done"] and progress["generated"] == 60

    batches = list(openai_fake.batches.values())
    first = [b for b in batches if b.metadata["coach_batch"].endswith(("b0001", "b0002", "b0003"))]
    assert len(first) == 3 and sorted(b.counts["total"] for b in first) == [20, 20, 20]
    assert sum(b.status == "expired" for b in batches) == 1
    failed_in_error_file = sum(b.counts["failed"] for b in batches) - 10  # 10 of the expired file's 20
    assert failed_in_error_file >= 3  # about 10% of the requests answered

    # A resubmitted batch holds only what failed or expired, and the rest fell back to synchronous calls.
    resubmitted = [b for b in batches if b not in first]
    assert resubmitted and sum(b.counts["total"] for b in resubmitted) == 60 - sum(
        b.counts["completed"] for b in first)
    assert fallback == sum(b.counts["failed"] for b in resubmitted) and fallback > 0

    # Every story paid exactly once, batch or synchronous.
    for number in range(60):
        assert openai_fake.successes_containing(marker(number)) == 1, number
    assert len(openai_fake.chat_requests()) == fallback

    records = {r.story_id: r for r in store(aws).feedback(BUILD)}
    assert len(records) == 60 and {r.status for r in records.values()} == {"generated"}
    prices = price_table()
    batch_records = [r for r in records.values() if r.generation == "batch"]
    sync_records = [r for r in records.values() if r.generation == "sync"]
    assert len(batch_records) == 60 - fallback and len(sync_records) == fallback
    for record in batch_records:
        assert (record.provider, record.model, record.prompt_version) == ("openai", MODEL, PROMPT_VERSION)
        assert record.batch_id in {b.id for b in batches} and not record.usage.estimated
        assert record.cost_usd == prices.cost_usd(MODEL, record.usage, batch=True)
        assert record.sync_cost_usd == prices.cost_usd(MODEL, record.usage)
        assert record.cost_usd == pytest.approx(record.sync_cost_usd / 2, abs=1e-8)
    for record in sync_records:
        assert record.cost_usd == prices.cost_usd(MODEL, record.usage) and record.batch_id is None

    shards = shard_build(aws.bucket, BUILD)["shards"]
    assembled = invoke("assembler", {"request": request, "scrape": scrape, "shards": shards})
    manifest = store(aws).get_model(assembled["manifest_key"], BuildManifest)
    assert manifest.cost.generation_usd == pytest.approx(sum(r.cost_usd for r in records.values()), abs=1e-6)
    assert manifest.cost.generation_batch_usd == pytest.approx(sum(r.cost_usd for r in batch_records), abs=1e-6)
    assert manifest.cost.generation_sync_equivalent_usd == pytest.approx(
        sum(prices.cost_usd(MODEL, r.usage) for r in records.values()), abs=1e-6)
    assert manifest.cost.generation_usd < manifest.cost.generation_sync_equivalent_usd * 0.6
    assert store(aws).get_json(batch_state_key(BUILD))["chunks"]


def test_a_rerun_resumes_open_batches_instead_of_submitting_new_ones(aws, openai_fake, tmp_path):
    openai_fake.configure(batch_error_rate=0.0, batch_expire_next=0, batch_polls_per_state=100)
    request = invoke("checkinput", _request(tmp_path))
    invoke("scraper", {"request": request})
    first = invoke("batch", {"action": "submit", "build_id": BUILD})
    assert first["submitted"] == 3 and first["running"] == 3
    # The execution dies here; the build is started again with the same id.
    invoke("scraper", {"request": request})
    again = invoke("batch", {"action": "submit", "build_id": BUILD})
    assert again["submitted"] == 0 and again["resumed"] == 3 and len(openai_fake.batches) == 3
    openai_fake.configure(batch_polls_per_state=1)
    run_batches(BUILD)
    assert len(openai_fake.batches) == 3
    records = list(store(aws).feedback(BUILD))
    assert len(records) == 60 and all(r.generation == "batch" for r in records)
    assert openai_fake.total_successes == 60


def test_cancel_stops_open_batches_and_a_rerun_finishes_only_the_rest(aws, openai_fake, tmp_path):
    openai_fake.configure(batch_error_rate=0.0, batch_expire_next=0)
    request = invoke("checkinput", _request(tmp_path, batch={"max_resubmits": 2}))
    invoke("scraper", {"request": request})
    invoke("batch", {"action": "submit", "build_id": BUILD})
    # What EventBridge delivers when the execution is stopped (StopExecution runs no Catch).
    aborted = json.loads((EVENTS / "batch_cancel_on_abort.json").read_text())
    aborted["detail"]["input"] = json.dumps({"build_id": BUILD, "generation": "batch"})
    invoke("batch", aborted)
    assert {b.status for b in openai_fake.batches.values()} == {"cancelling"}
    invoke("scraper", {"request": request})
    run_batches(BUILD)
    cancelled = [b for b in openai_fake.batches.values() if b.status == "cancelled"]
    assert len(cancelled) == 3 and all(b.counts["completed"] == 0 for b in cancelled)
    assert len(list(store(aws).feedback(BUILD))) == 60 and openai_fake.total_successes == 60


def test_batch_needs_a_provider_with_a_batch_api(aws):
    from coach.step_errors import InvalidBuildRequest

    with pytest.raises(InvalidBuildRequest, match="batch"):
        invoke("checkinput", {"build_id": "b-off", "provider": "offline", "generation": "batch"})


def test_a_submission_retried_after_a_crash_finds_its_batch_instead_of_paying_twice(aws, openai_fake, tmp_path):
    openai_fake.configure(batch_error_rate=0.0, batch_expire_next=0)
    invoke("scraper", {"request": invoke("checkinput", _request(tmp_path))})
    invoke("batch", {"action": "submit", "build_id": BUILD})
    # The step died after OpenAI accepted the batches but before their ids were saved.
    state = store(aws).get_json(batch_state_key(BUILD))
    for chunk in state["chunks"]:
        chunk.update(batch_id=None, status="pending")
    store(aws).put_json(batch_state_key(BUILD), state)
    retried = invoke("batch", {"action": "submit", "build_id": BUILD})
    assert retried["submitted"] == 3 and len(openai_fake.batches) == 3
    run_batches(BUILD)
    assert openai_fake.total_successes == 60 and len(list(store(aws).feedback(BUILD))) == 60


def test_a_busy_provider_is_retried_by_the_state_machine_not_failed(aws, openai_fake, tmp_path):
    from coach.step_errors import BatchProviderBusy

    invoke("scraper", {"request": invoke("checkinput", _request(tmp_path))})
    openai_fake.configure(fault_paths=("/v1/batches",), failure_rate=1.0, rate_limit_share=1.0, retry_after=0.01)
    with pytest.raises(BatchProviderBusy, match="429"):
        invoke("batch", {"action": "submit", "build_id": BUILD})
    openai_fake.configure(failure_rate=0.0)
    assert invoke("batch", {"action": "submit", "build_id": BUILD})["running"] == 3
