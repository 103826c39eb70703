"""The batch-generation branch of the dataset-build state machine in moto's Step Functions engine:
submit -> wait -> poll -> collect, an expired batch resubmitted, a failed batch falling back to the story
queue, a failing step cancelling the build's batches, and a wait that runs out of checks."""

from __future__ import annotations

from tests.infra.sfn_moto import lambda_error
from tests.infra.test_dataset_build_sfn import DATASET, SCRAPE, SHARD_BATCH, progress, request

BUILD_ID = "wp-2025-06"
BATCH_REQUEST = request(generation="batch", batch={"max_resubmits": 2, "fallback": "sync"},
                        fine_tune={"enabled": False, "backend": "bedrock", "base_model": "amazon.nova-lite-v1:0:300k",
                                   "suffix": "writing-coach", "epochs": None, "seed": 42})


def step(running: int = 0, finished: int = 0, *, resubmit: int = 0, fallback: int = 0, submitted: int = 0,
         generated: int = 0) -> dict:
    return {"build_id": BUILD_ID, "running": running, "finished": finished, "submitted": submitted, "resumed": 0,
            "generated": generated, "resubmit": resubmit, "fallback": fallback, "failed": 0, "skipped_budget": 0,
            "done": running == 0 and finished == 0 and resubmit == 0}


def test_submit_wait_poll_collect_then_the_dataset(machine):
    execution = machine.run(
        {"build_id": BUILD_ID, "generation": "batch"},
        [BATCH_REQUEST, SCRAPE, step(1, submitted=1), step(1), step(0, 1), step(generated=5),
         progress(5), SHARD_BATCH, DATASET],
    )

    assert execution.status == "SUCCEEDED", execution.cause
    assert execution.called() == ["checkinput", "scraper", "batch", "batch", "batch", "batch", "progress",
                                  "shard", "assembler"]
    assert [e["action"] for e in execution.events_for("batch")] == ["submit", "poll", "poll", "collect"]
    assert all(e["build_id"] == BUILD_ID for e in execution.events_for("batch"))


def test_expired_requests_are_resubmitted_in_a_new_batch(machine):
    execution = machine.run(
        {"build_id": BUILD_ID, "generation": "batch"},
        [BATCH_REQUEST, SCRAPE, step(1, submitted=1), step(0, 1), step(generated=2, resubmit=3),
         step(1, submitted=1), step(0, 1), step(generated=3), progress(5), SHARD_BATCH, DATASET],
    )

    assert execution.status == "SUCCEEDED", execution.cause
    assert [e["action"] for e in execution.events_for("batch")] == [
        "submit", "poll", "collect", "submit", "poll", "collect"]


def test_failed_batch_falls_back_to_the_story_queue_and_waits_for_it(machine):
    execution = machine.run(
        {"build_id": BUILD_ID, "generation": "batch"},
        [BATCH_REQUEST, SCRAPE, step(1, submitted=1), step(0, 1), step(fallback=5),
         progress(0), progress(3), progress(5), SHARD_BATCH, DATASET],
    )

    assert execution.status == "SUCCEEDED", execution.cause
    assert execution.called() == ["checkinput", "scraper", "batch", "batch", "batch", "progress", "progress",
                                  "progress", "shard", "assembler"]


def test_too_few_stories_for_a_batch_skip_the_wait(machine):
    execution = machine.run(
        {"build_id": BUILD_ID, "generation": "batch"},
        [BATCH_REQUEST, SCRAPE, step(fallback=5), progress(5), SHARD_BATCH, DATASET],
    )

    assert execution.status == "SUCCEEDED", execution.cause
    assert [e["action"] for e in execution.events_for("batch")] == ["submit"]


def test_a_failing_batch_step_cancels_the_open_batches_then_fails_readably(machine):
    execution = machine.run(
        {"build_id": BUILD_ID, "generation": "batch"},
        [BATCH_REQUEST, SCRAPE, step(2, submitted=2),
         lambda_error("BatchFailed", "upstream_auth: reading OpenAI batch batch_1 failed: HTTP 401"),
         step(2)],
    )

    assert execution.status == "FAILED"
    assert execution.error == "BatchFailed"
    assert execution.cause == "upstream_auth: reading OpenAI batch batch_1 failed: HTTP 401"
    assert [e["action"] for e in execution.events_for("batch")] == ["submit", "poll", "cancel"]


def test_batches_that_never_finish_stop_the_wait_and_say_how_to_resume(machine):
    execution = machine.run(
        {"build_id": BUILD_ID, "generation": "batch"},
        [BATCH_REQUEST, SCRAPE, step(1, submitted=1)] + [step(1)] * 5,
    )

    assert execution.status == "FAILED"
    assert execution.error == "BatchTimedOut"
    assert execution.cause.startswith(f"Provider batches of build {BUILD_ID} were still running after 5 status checks")
    assert "same build_id" in execution.cause


def test_a_synchronous_build_never_calls_the_batch_function(machine):
    execution = machine.run({"build_id": BUILD_ID}, [request(fine_tune={"enabled": False}), SCRAPE, progress(5),
                                                     SHARD_BATCH, DATASET])
    assert execution.status == "SUCCEEDED", execution.cause
    assert "batch" not in execution.called()
