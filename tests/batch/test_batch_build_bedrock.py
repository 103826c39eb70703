"""A 60-story batch build on Bedrock batch inference (the fake), through the real handlers: jobs of 20
records read from and written to S3, 10% of records answered with an error, one job expiring half way; a
job that fails validation sends its stories to synchronous Converse calls; too few stories for the
per-job minimum go synchronously from the start."""

from __future__ import annotations

import boto3
import pytest

from coach.domain.pricing import price_table
from coach.domain.records import BuildManifest
from coach.local.lambda_runtime import invoke
from tests.batch.helpers import drain_queue, run_batches, store, write_stories
from tests.fakes.bedrock_server import FakeBedrockServer
from tests.support.shards import shard_build
from tests.support.stories import critique, marker

BUILD = "bedrock-batch-60"
MODEL = "amazon.nova-lite-v1:0"
ROLE = "arn:aws:iam::123456789012:role/coach-bedrock-batch"


@pytest.fixture
def bedrock_fake(aws, monkeypatch):
    s3 = boto3.client("s3")
    with FakeBedrockServer(reply=lambda body: critique(_chat(body)), s3_client_factory=lambda: s3,
                           min_batch_records=10, batch_record_error_rate=0.10, batch_expire_next=1) as server:
        monkeypatch.setenv("AWS_ENDPOINT_URL_BEDROCK", server.endpoint_url)
        monkeypatch.setenv("AWS_ENDPOINT_URL_BEDROCK_RUNTIME", server.endpoint_url)
        monkeypatch.setenv("COACH_BEDROCK_BATCH_ROLE_ARN", ROLE)
        monkeypatch.setenv("COACH_BATCH_MIN_RECORDS", "10")
        monkeypatch.setenv("COACH_BATCH_MAX_RECORDS", "20")
        yield server


def _chat(body: dict) -> list[dict]:
    """Converse's system blocks and content-block messages back as chat messages."""
    system = [{"role": "system", "content": b["text"]} for b in body.get("system") or []]
    turns = [{"role": m["role"], "content": "".join(b.get("text", "") for b in m["content"])}
             for m in body.get("messages") or []]
    return system + turns


def _request(tmp_path, count: int = 60, **extra) -> dict:
    path = tmp_path / "stories.jsonl"
    write_stories(path, count)
    return {"build_id": BUILD, "source": {"kind": "jsonl", "path": str(path)}, "provider": "bedrock",
            "model": MODEL, "generation": "batch", "batch": {"max_resubmits": 1}, **extra}


def _paid_once(server: FakeBedrockServer, count: int) -> None:
    for number in range(count):
        assert server.successes_containing(marker(number)) == 1, number


def test_sixty_stories_record_errors_and_an_expired_job(aws, bedrock_fake, tmp_path):
    request = invoke("checkinput", _request(tmp_path, budget_usd=1.0))
    scrape = invoke("scraper", {"request": request})
    steps = run_batches(BUILD)
    drain_queue(aws)
    assert invoke("progress", {"build_id": BUILD, "enqueued": 60})["done"]

    jobs = list(bedrock_fake.batch_jobs.values())
    assert sum(j.status == "Expired" for j in jobs) == 1 and len(jobs) > 3
    assert all(j.request["roleArn"] == ROLE and j.request["modelId"] == MODEL for j in jobs)
    errors = sum(j.counts.get("errorRecordCount", 0) for j in jobs)
    assert errors >= 3
    fallback = sum(s.get("fallback", 0) for s in steps)
    _paid_once(bedrock_fake, 60)

    records = {r.story_id: r for r in store(aws).feedback(BUILD)}
    assert len(records) == 60 and {r.status for r in records.values()} == {"generated"}
    batch_records = [r for r in records.values() if r.generation == "batch"]
    assert len(batch_records) == 60 - fallback
    prices = price_table()
    for record in batch_records:
        assert (record.provider, record.model) == ("bedrock", MODEL) and record.batch_id in bedrock_fake.batch_jobs
        assert record.cost_usd == prices.cost_usd(MODEL, record.usage, batch=True)
        assert record.cost_usd == pytest.approx(prices.cost_usd(MODEL, record.usage) / 2, abs=1e-8)

    shards = shard_build(aws.bucket, BUILD)["shards"]
    assembled = invoke("assembler", {"request": request, "scrape": scrape, "shards": shards})
    manifest = store(aws).get_model(assembled["manifest_key"], BuildManifest)
    assert manifest.cost.generation_usd == pytest.approx(sum(r.cost_usd for r in records.values()), abs=1e-6)
    assert manifest.cost.generation_batch_usd == pytest.approx(sum(r.cost_usd for r in batch_records), abs=1e-6)


def test_a_failed_job_falls_back_to_synchronous_converse(aws, bedrock_fake, tmp_path):
    bedrock_fake.configure(batch_record_error_rate=0.0, batch_expire_next=0,
                           batch_failure="The input contains a reserved word.")
    invoke("scraper", {"request": invoke("checkinput", _request(tmp_path, count=20, batch={"max_resubmits": 2}))})
    steps = run_batches(BUILD)
    assert [s["fallback"] for s in steps if s["action"] == "collect"] == [20]
    assert len(bedrock_fake.batch_jobs) == 1  # a refused job is not resubmitted
    drain_queue(aws)
    records = list(store(aws).feedback(BUILD))
    assert len(records) == 20 and all(r.status == "generated" and r.generation == "sync" for r in records)
    _paid_once(bedrock_fake, 20)


def test_too_few_stories_for_a_job_go_synchronously(aws, bedrock_fake, tmp_path):
    bedrock_fake.configure(batch_record_error_rate=0.0, batch_expire_next=0)
    invoke("scraper", {"request": invoke("checkinput", _request(tmp_path, count=6))})
    submitted = invoke("batch", {"action": "submit", "build_id": BUILD})
    assert submitted["fallback"] == 6 and submitted["submitted"] == 0 and submitted["done"]
    assert not bedrock_fake.batch_jobs
    drain_queue(aws)
    assert len(list(store(aws).feedback(BUILD))) == 6
    _paid_once(bedrock_fake, 6)


def test_without_a_service_role_the_step_fails_readably(aws, bedrock_fake, tmp_path, monkeypatch):
    from coach.step_errors import BatchFailed

    monkeypatch.delenv("COACH_BEDROCK_BATCH_ROLE_ARN")
    invoke("scraper", {"request": invoke("checkinput", _request(tmp_path, count=12))})
    with pytest.raises(BatchFailed, match="COACH_BEDROCK_BATCH_ROLE_ARN"):
        invoke("batch", {"action": "submit", "build_id": BUILD})


def test_a_submission_retried_after_a_crash_reuses_the_job_by_its_token(aws, bedrock_fake, tmp_path):
    from coach.adapters.storage import batch_state_key

    bedrock_fake.configure(batch_record_error_rate=0.0, batch_expire_next=0)
    invoke("scraper", {"request": invoke("checkinput", _request(tmp_path, count=40))})
    invoke("batch", {"action": "submit", "build_id": BUILD})
    state = store(aws).get_json(batch_state_key(BUILD))
    for chunk in state["chunks"]:
        chunk.update(batch_id=None, status="pending")
    store(aws).put_json(batch_state_key(BUILD), state)
    invoke("batch", {"action": "submit", "build_id": BUILD})
    assert len(bedrock_fake.batch_jobs) == 2
    run_batches(BUILD)
    _paid_once(bedrock_fake, 40)
