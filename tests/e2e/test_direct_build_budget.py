"""A budget through the direct local build: concurrent calls share the file-backed ledger and never overspend."""

from __future__ import annotations

import io
import json

import pytest

from coach.adapters.sources import load_stories
from coach.domain.records import BuildRequest
from coach.errors import CoachError
from coach.local.build import LocalBuildOptions, run_local_build
from coach.pipeline.scrape import estimate_pending
from tests.support.overspend import MODEL, overspending_server, write_stories

KEY = "sk-direct-budget"


@pytest.fixture
def server(monkeypatch, tmp_path):
    source = tmp_path / "stories.jsonl"
    write_stories(source, 12, seed=9, prefix="money")
    with overspending_server(monkeypatch, KEY, latency=(0.05, 0.15), seed=3) as fake:
        yield fake, source


def build(source, out, budget: float) -> None:
    request = BuildRequest.model_validate({"build_id": "money", "source": {"kind": "jsonl", "path": str(source)},
                                           "provider": "openai", "model": MODEL, "budget_usd": budget})
    try:
        run_local_build(LocalBuildOptions(request=request, out=out, concurrency=6), stream=io.StringIO())
    except CoachError as exc:  # a few long critiques may not make a dataset; spending is what is tested here
        assert exc.code in ("dataset_too_small",), exc


def records(out) -> dict[str, dict]:
    folder = out / ".state" / "builds" / "money" / "feedback"
    return {p.stem: json.loads(p.read_text()) for p in folder.glob("*.json")}


def test_concurrent_calls_stop_at_the_budget_and_a_larger_budget_pays_only_for_the_rest(server, tmp_path):
    fake, source = server
    request = BuildRequest.model_validate({"build_id": "money", "source": {"kind": "jsonl", "path": str(source)},
                                           "provider": "openai", "model": MODEL})
    budget = estimate_pending(request, load_stories(request.source).stories).usd  # just fits on paper
    out = tmp_path / "out"
    build(source, out, budget)
    first = records(out)
    generated = [r for r in first.values() if r["status"] == "generated"]
    skipped = [r for r in first.values() if r["status"] == "skipped_budget"]
    assert generated and skipped and len(first) == 12
    assert sum(r["cost_usd"] for r in generated) <= budget  # six threads, one ledger: never over
    assert all(r["error"]["code"] == "budget_exceeded" for r in skipped)
    assert fake.total_successes == len(generated)

    build(source, out, budget * 3)
    after = records(out)
    assert {r["status"] for r in after.values()} == {"generated"}
    assert fake.total_successes == 12  # the second run paid only for the skipped stories
