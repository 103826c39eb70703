"""A critique belongs to the provider, model and prompt version that wrote it.

What a build's owner would notice: re-running a build with another model pays for new critiques instead of
relabelling the old ones, the records say which model wrote them, and a dataset never silently mixes models.
"""

from __future__ import annotations

import boto3
import pytest

from coach import runtime
from coach.adapters.idempotency import GenerationGuard
from coach.adapters.storage import BuildStore
from coach.domain.prompt import PROMPT_VERSION
from coach.domain.records import BuildManifest, GenerationRecord
from coach.local.lambda_runtime import invoke
from coach.local.poller import to_sqs_event
from coach.step_errors import DatasetInvalid
from tests.fakes.openai_server import FakeOpenAIServer
from tests.support.shards import shard_build

KEY = "sk-generation-key"


@pytest.fixture
def fake(aws, monkeypatch):
    with FakeOpenAIServer(api_key=KEY) as server:
        monkeypatch.setenv("OPENAI_API_KEY", KEY)
        monkeypatch.setenv("OPENAI_BASE_URL", server.base_url)
        runtime.reset()
        yield server
    runtime.reset()


def _request(model: str, **extra) -> dict:
    return {"build_id": "k1", "source": {"kind": "samples"}, "limit": 3, "provider": "openai", "model": model,
            **extra}


def _generate_all(aws) -> None:
    sqs = boto3.client("sqs")
    while True:
        batch = sqs.receive_message(QueueUrl=aws.queue_url, MaxNumberOfMessages=10, AttributeNames=["All"],
                                    MessageAttributeNames=["All"]).get("Messages", [])
        if not batch:
            return
        assert invoke("generator", to_sqs_event(batch, aws.queue_arn))["batchItemFailures"] == []


def test_a_rerun_with_another_model_critiques_again_and_records_who_wrote_it(aws, fake):
    invoke("scraper", {"request": _request("my-llama")})
    _generate_all(aws)
    assert len(fake.chat_requests()) == 3

    again = invoke("scraper", {"request": _request("gpt-4o")})
    assert again["reused"] == 0 and again["enqueued"] == 3 and again["replaced"] == 3
    assert any("openai/my-llama" in w and "critiqued again by openai/gpt-4o" in w for w in again["warnings"])
    _generate_all(aws)

    assert [r.model for r in fake.chat_requests()] == ["my-llama"] * 3 + ["gpt-4o"] * 3
    store = BuildStore(aws.bucket, boto3.client("s3"))
    records = list(store.feedback("k1"))
    assert {(r.model, r.requested_model) for r in records} == {("gpt-4o", "gpt-4o")}

    third = invoke("scraper", {"request": _request("gpt-4o")})
    assert third["reused"] == 3 and third["enqueued"] == 0  # the same key is paid once


def test_a_mixed_build_is_refused_unless_allowed_and_counted_per_model(aws):
    invoke("scraper", {"request": {"build_id": "k2", "source": {"kind": "samples"}, "limit": 16}})
    _generate_all(aws)
    store = BuildStore(aws.bucket, boto3.client("s3"))
    # Two critiques from an earlier run with another model are still there (that run did not finish).
    for record in sorted(store.feedback("k2"), key=lambda r: r.story_id)[:2]:
        store.put_feedback(record.model_copy(update={"provider": "openai", "model": "my-llama",
                                                     "requested_model": "my-llama"}))
    shard_build(aws.bucket, "k2")
    request = {"build_id": "k2", "source": {"kind": "samples"}, "limit": 16}
    with pytest.raises(DatasetInvalid, match=r"^mixed_models: 2 of 16 critiques .*openai/my-llama"):
        invoke("assembler", {"request": request})

    result = invoke("assembler", {"request": {**request, "allow_mixed_models": True, "budget_usd": 2.5}})
    manifest = store.get_model(result["manifest_key"], BuildManifest)
    assert manifest is not None
    assert manifest.counts.by_model == {"offline/coach-offline-critic-v1": 14, "openai/my-llama": 2}
    # The manifest says what the cost figure leaves out, and what the budget was.
    assert manifest.cost.unpriced_models == ["my-llama"] and manifest.budget_usd == 2.5


def test_the_idempotency_key_includes_provider_and_model(aws):
    guard = GenerationGuard(aws.env()["COACH_IDEMPOTENCY_TABLE"], boto3.client("dynamodb"))
    calls: list[str] = []

    def work(model: str):
        def run() -> dict:
            calls.append(model)
            return {"model": model}
        return run

    task = {"build_id": "k3", "story_id": "s1", "prompt_version": PROMPT_VERSION, "provider": "openai"}
    assert guard.run({**task, "model": "my-llama"}, work("my-llama")) == ({"model": "my-llama"}, False)
    assert guard.run({**task, "model": "gpt-4o"}, work("gpt-4o")) == ({"model": "gpt-4o"}, False)
    assert guard.run({**task, "provider": "offline", "model": "gpt-4o"}, work("offline")) == (
        {"model": "offline"}, False)
    assert guard.run({**task, "model": "gpt-4o"}, work("again")) == ({"model": "gpt-4o"}, True)
    assert calls == ["my-llama", "gpt-4o", "offline"]


def test_a_record_is_reusable_only_for_its_own_key():
    record = GenerationRecord(build_id="b", story_id="s", prompt_version="p1", provider="openai",
                              model="gpt-4o-2024-08-06", requested_model="gpt-4o", status="generated",
                              feedback="You open well.")
    assert record.written_for("openai", "gpt-4o", "p1")
    assert not record.written_for("openai", "my-llama", "p1")
    assert not record.written_for("offline", "gpt-4o", "p1")
    assert not record.written_for("openai", "gpt-4o", "p2")


def test_a_limit_on_a_rerun_is_reported_not_silently_ignored(aws):
    first = invoke("scraper", {"request": {"build_id": "k4", "source": {"kind": "samples"}, "limit": 4}})
    assert first["stories"] == 4 and first["warnings"] == []
    again = invoke("scraper", {"request": {"build_id": "k4", "source": {"kind": "samples"}, "limit": 2}})
    assert again["stories"] == 4
    assert any("limit 2 does not apply to a re-run" in w and "4 stories" in w for w in again["warnings"])


def test_a_record_written_before_requested_model_matches_its_dated_snapshot_only():
    old = GenerationRecord(build_id="b", story_id="s", prompt_version="p1", provider="openai",
                           model="gpt-4o-mini-2024-07-18", status="generated", feedback="You open well.")
    assert old.written_for("openai", "gpt-4o-mini", "p1")
    assert not old.written_for("openai", "gpt-4o", "p1")  # a prefix is not a snapshot
