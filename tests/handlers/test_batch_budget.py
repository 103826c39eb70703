"""Budgets of batch builds: the pre-check and the ledger use batch prices."""

from __future__ import annotations

import pytest

from coach.adapters.storage import batch_state_key
from coach.local.lambda_runtime import invoke
from coach.step_errors import SourceFailed
from tests.batch.helpers import run_batches, store, write_stories
from tests.fakes.openai_server import FakeOpenAIServer
from tests.support.stories import critique


@pytest.fixture
def openai_env(aws, monkeypatch):
    with FakeOpenAIServer(api_key="sk-budget", reply=critique) as server:
        monkeypatch.setenv("OPENAI_API_KEY", "sk-budget")
        monkeypatch.setenv("OPENAI_BASE_URL", server.base_url)
        yield server


def _request(tmp_path, build_id: str, generation: str, budget: float) -> dict:
    path = tmp_path / f"{build_id}.jsonl"
    write_stories(path, 40, prefix=build_id)
    return {"build_id": build_id, "source": {"kind": "jsonl", "path": str(path)}, "provider": "openai",
            "model": "gpt-4.1", "generation": generation, "budget_usd": budget}


def test_a_budget_that_fits_only_at_batch_prices(aws, openai_env, tmp_path):
    # Find the expected synchronous cost, then give the build 80% of it: enough at batch prices even for
    # every request's worst case (its whole completion allowance), which each batch reserves.
    with pytest.raises(SourceFailed, match="budget") as refused:
        invoke("scraper", {"request": invoke("checkinput", _request(tmp_path, "sync-b", "sync", 0.01))})
    expected = float(str(refused.value).split("≈ $")[1].split(";")[0])
    budget = round(expected * 0.8, 4)
    with pytest.raises(SourceFailed, match="budget"):
        invoke("scraper", {"request": invoke("checkinput", _request(tmp_path, "sync-c", "sync", budget))})
    request = invoke("checkinput", _request(tmp_path, "batch-b", "batch", budget))
    assert invoke("scraper", {"request": request})["enqueued"] == 40
    run_batches("batch-b")
    records = list(store(aws).feedback("batch-b"))
    assert len(records) == 40 and all(r.status == "generated" for r in records)
    assert sum(r.cost_usd for r in records) <= budget


def test_a_batch_that_cannot_fit_its_worst_case_is_not_submitted(aws, openai_env, tmp_path, monkeypatch):
    monkeypatch.setenv("COACH_BATCH_MAX_RECORDS", "10")
    monkeypatch.setenv("COACH_MAX_FEEDBACK_TOKENS", "4000")  # a large worst case per request
    request = invoke("checkinput", _request(tmp_path, "tight", "batch", 0.2))
    invoke("scraper", {"request": request})
    submitted = invoke("batch", {"action": "submit", "build_id": "tight"})
    assert 0 < submitted["skipped_budget"] < 40
    skipped = [r for r in store(aws).feedback("tight") if r.status == "skipped_budget"]
    assert len(skipped) == submitted["skipped_budget"] and all(r.error.code == "budget_exceeded" for r in skipped)
    in_batches = sum(len(c["story_ids"]) for c in store(aws).get_json(batch_state_key("tight"))["chunks"])
    assert in_batches + len(skipped) == 40
    run_batches("tight")
    records = list(store(aws).feedback("tight"))
    assert sum(r.cost_usd for r in records) <= 0.2 and sum(r.status == "generated" for r in records) == in_batches
