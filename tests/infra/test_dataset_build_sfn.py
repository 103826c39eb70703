"""The dataset-build state machine, executed for real in moto's Step Functions engine, one test per branch.

Each test scripts what the Lambda functions answer (see tests/infra/sfn_moto.py) and checks what a person
watching the console would see: which steps ran with what input, the status, and the error and cause. The
Distributed Map (BuildShards) runs as its stand-in: one scripted shard call, then the map's output.
"""

from __future__ import annotations

import copy

from tests.infra.sfn_moto import BUCKET, lambda_error, map_failure

BUILD_ID = "wp-2025-06"
REQUEST = {
    "build_id": BUILD_ID,
    "source": {"kind": "reddit", "subreddit": "WritingPrompts", "listing": "top", "time_filter": "month",
               "post_limit": 25, "min_chars": 300, "max_chars": 20000, "path": None},
    "limit": 200,
    "provider": "openai",
    "model": "gpt-4o-mini",
    "budget_usd": 5.0,
    "validation_fraction": 0.1,
    "fine_tune": {"enabled": True, "backend": "openai", "base_model": "gpt-4o-mini-2024-07-18",
                  "suffix": "writing-coach", "epochs": None, "seed": 42},
}
RUN_ID = "run-7f3a"
SCRAPE = {"build_id": BUILD_ID, "run_id": RUN_ID, "stories": 5, "enqueued": 5, "decode_errors": 0,
          "skipped": {"too_short": 2}}


def progress(generated: int, failed: int = 0, *, enqueued: int = 5, max_checks: int = 5) -> dict:
    accounted = generated + failed
    return {"build_id": BUILD_ID, "run_id": RUN_ID, "enqueued": enqueued, "generated": generated, "failed": failed,
            "skipped_budget": 0, "dead_lettered": 0, "accounted": accounted, "done": accounted >= enqueued,
            "max_checks": max_checks}


# What one batch of the shard map answers; a real map keeps it in its result files, never in the state.
SHARD_BATCH = {"build_id": BUILD_ID, "stories": 5, "accepted": 4, "rejected": 1,
               "shard_key": f"builds/{BUILD_ID}/shards/00000.jsonl"}
# The map's output at $.shards (its stand-in names the map run "emulated").
SHARDS = {"MapRunArn": "arn:aws:states:us-east-1:123456789012:mapRun:DatasetBuild/BuildShards:emulated",
          "ResultWriterDetails": {"Bucket": BUCKET, "Key": f"builds/{BUILD_ID}/map-results/emulated/manifest.json"}}
DATASET = {"build_id": BUILD_ID, "train_examples": 3, "validation_examples": 1,
           "manifest_key": f"builds/{BUILD_ID}/dataset/manifest.json",
           "train_key": f"builds/{BUILD_ID}/dataset/train.jsonl",
           "validation_key": f"builds/{BUILD_ID}/dataset/validation.jsonl"}
JOB = "ftjob-abc123"
MODEL = "ft:gpt-4o-mini-2024-07-18:acme:writing-coach:9xYz"


EVAL_REPORT = f"builds/{BUILD_ID}/eval/reports/model.json"
PASSED = {"passed": True, "skipped": False, "model": MODEL, "reasons": [], "report_key": EVAL_REPORT,
          "summary": f"{MODEL}: pass rate 95%, grounding 98%, loop rate 0%, planted-flaw lift +0.46; passed the gate",
          "scores": {"model": MODEL, "passed": True, "pass_rate": 0.95, "grounding": 0.98}}


def job_status(status: str, *, model: str | None = None, error: dict | None = None) -> dict:
    return {"job_id": JOB, "status": status, "fine_tuned_model": model, "trained_tokens": 41230 if model else None,
            "error": error}


def request(**changes) -> dict:
    value = copy.deepcopy(REQUEST)
    for key, changed in changes.items():
        value[key] = changed
    return value


def test_happy_path_with_fine_tune_publishes_the_model(machine):
    execution = machine.run(
        {"build_id": BUILD_ID, "source": {"kind": "reddit"}, "provider": "openai", "limit": 200,
         "fine_tune": {"enabled": True}},
        [REQUEST, SCRAPE, progress(5), SHARD_BATCH, DATASET,
         {"job_id": JOB, "status": "validating_files"},
         job_status("running"),
         job_status("succeeded", model=MODEL),
         PASSED,
         {"parameter": "/coach/critique-model", "model": MODEL}],
    )

    assert execution.status == "SUCCEEDED", execution.cause
    assert execution.called() == ["checkinput", "scraper", "progress", "shard", "assembler",
                                  "finetune", "finetune", "finetune", "evaluate", "finetune"]
    assert execution.events_for("evaluate") == [{"request": REQUEST, "job": job_status("succeeded", model=MODEL)}]
    # Each function receives the event its handler expects.
    assert execution.events_for("checkinput") == [
        {"build_id": BUILD_ID, "source": {"kind": "reddit"}, "provider": "openai", "limit": 200,
         "fine_tune": {"enabled": True}}]
    assert execution.events_for("scraper") == [{"request": REQUEST}]
    assert execution.events_for("progress") == [{"build_id": BUILD_ID, "run_id": RUN_ID, "enqueued": 5,
                                                 "poll_seconds": 0}]
    # One batch of the map: its BatchInput and the stories prefix its ItemReader lists.
    assert execution.events_for("shard") == [
        {"Items": [], "BatchInput": {"build_id": BUILD_ID, "run_id": RUN_ID},
         "EmulatedItemReader": {"Bucket": BUCKET, "Prefix": f"builds/{BUILD_ID}/stories/"}}]
    assert execution.events_for("assembler") == [{"request": REQUEST, "scrape": SCRAPE, "shards": SHARDS}]
    start, first_check, second_check, publish = execution.events_for("finetune")
    assert start == {"action": "start", "request": REQUEST, "dataset": DATASET}
    assert first_check == second_check == {"action": "status", "job_id": JOB, "build_id": BUILD_ID}
    assert publish == {"action": "publish", "build_id": BUILD_ID, "job": job_status("succeeded", model=MODEL)}

    output = execution.output
    assert output["build_id"] == BUILD_ID
    assert output["bucket"] == BUCKET
    assert output["dataset"]["train_key"] == f"builds/{BUILD_ID}/dataset/train.jsonl"
    assert output["shards"] == SHARDS
    assert output["fine_tune"]["status"] == "succeeded"
    assert output["published"] == {"parameter": "/coach/critique-model", "model": MODEL}


def test_a_model_the_gate_refuses_is_not_published_and_the_cause_carries_its_scores(machine):
    summary = (f"{MODEL}: pass rate 100%, grounding 100%, loop rate 100%, planted-flaw lift +0.50; refused: "
               "loop rate 100% is above the ceiling 10%")
    refused = {**PASSED, "passed": False, "reasons": ["loop_rate_above_ceiling"], "summary": summary}
    execution = machine.run(
        {"build_id": BUILD_ID},
        [REQUEST, SCRAPE, progress(5), SHARD_BATCH, DATASET, {"job_id": JOB, "status": "running"},
         job_status("succeeded", model=MODEL), refused],
    )

    assert execution.status == "FAILED"
    assert execution.error == "EvaluationFailed"
    assert execution.cause == (
        f"The fine-tuned model was not published: {summary} Full report: {EVAL_REPORT}. A person can publish "
        f"it anyway with coach models promote {BUILD_ID} --force.")
    # PublishModel never ran: the last call is the evaluation.
    assert execution.called()[-2:] == ["finetune", "evaluate"]


def test_an_evaluation_that_cannot_run_fails_with_its_message(machine):
    message = "evaluation_calls_failed: every critique request to ft:x failed (96); the first: upstream_auth: 401"
    execution = machine.run(
        {"build_id": BUILD_ID},
        [REQUEST, SCRAPE, progress(5), SHARD_BATCH, DATASET, {"job_id": JOB, "status": "running"},
         job_status("succeeded", model=MODEL), lambda_error("EvaluationError", message)],
    )

    assert execution.status == "FAILED"
    assert execution.error == "EvaluationError"
    assert execution.cause == message
    assert "finetune" not in execution.called()[-1:]


def test_fine_tune_disabled_ends_after_the_dataset(machine):
    normalised = request(fine_tune={**REQUEST["fine_tune"], "enabled": False})
    execution = machine.run(
        {"build_id": BUILD_ID},
        [normalised, SCRAPE, progress(5), SHARD_BATCH, DATASET],
    )

    assert execution.status == "SUCCEEDED", execution.cause
    assert execution.called() == ["checkinput", "scraper", "progress", "shard", "assembler"]
    assert execution.output["fine_tune"]["status"] == "skipped"
    assert execution.output["published"] == {"parameter": None, "model": None}
    assert execution.output["dataset"] == DATASET


def test_fine_tune_skipped_by_the_function_ends_the_build(machine):
    skipped = {"status": "skipped", "job_id": None,
               "reason": "the critiques came from the offline critic; fine-tune on critiques from a real model"}
    execution = machine.run({"build_id": BUILD_ID}, [REQUEST, SCRAPE, progress(5), SHARD_BATCH, DATASET, skipped])

    assert execution.status == "SUCCEEDED", execution.cause
    assert execution.called()[-1] == "finetune"
    assert execution.output["fine_tune"] == skipped


def test_generation_still_running_turns_the_loop_until_done(machine):
    execution = machine.run(
        {"build_id": BUILD_ID},
        [request(fine_tune={"enabled": False}), SCRAPE, progress(1), progress(3, failed=1), progress(4, failed=1),
         SHARD_BATCH, DATASET],
    )

    assert execution.status == "SUCCEEDED", execution.cause
    assert execution.called() == ["checkinput", "scraper", "progress", "progress", "progress", "shard",
                                  "assembler"]
    assert execution.output["generation"]["accounted"] == 5


def test_generation_that_never_finishes_fails_with_the_counts(machine):
    # The progress check says how many checks this run may take (5 here).
    execution = machine.run(
        {"build_id": BUILD_ID},
        [REQUEST, SCRAPE] + [progress(2, failed=1)] * 5,
    )

    assert execution.status == "FAILED"
    assert execution.error == "GenerationTimedOut"
    assert execution.called().count("progress") == 5
    assert "shard" not in execution.called()
    assert execution.cause.startswith("Story generation did not finish: 3 of 5 stories accounted for after 5 "
                                      "progress checks (generated 2, failed 1, skipped for budget 0, "
                                      "dead-lettered 0). That is the time 5 stories take at "
                                      "ProviderStoriesPerMinute, with margin.")
    assert "lower ProviderStoriesPerMinute" in execution.cause and "same build_id" in execution.cause


def test_the_generation_limit_is_the_one_the_progress_check_gives(machine):
    # A bigger build gets more checks: the limit comes from each answer, not from a fixed setting.
    longer = machine.run(
        {"build_id": BUILD_ID},
        [request(fine_tune={"enabled": False}), SCRAPE] + [progress(2, max_checks=7)] * 6
        + [progress(5, max_checks=7), SHARD_BATCH, DATASET],
    )
    assert longer.status == "SUCCEEDED", longer.cause
    assert longer.called().count("progress") == 7

    shorter = machine.run({"build_id": BUILD_ID}, [REQUEST, SCRAPE] + [progress(2, max_checks=2)] * 2)
    assert (shorter.status, shorter.error) == ("FAILED", "GenerationTimedOut")
    assert "after 2 progress checks" in shorter.cause


def test_too_many_failed_batches_fail_the_build_and_say_where_the_failures_are(machine):
    execution = machine.run(
        {"build_id": BUILD_ID},
        [request(fine_tune={"enabled": False}), SCRAPE, progress(5), map_failure()],
    )

    assert execution.status == "FAILED"
    assert execution.error == "ShardsFailed"
    assert execution.cause == (
        f"More than 5% of the stories of build {BUILD_ID} could not be judged and sharded, even after retries "
        "(ShardToleratedFailurePercent), so no dataset was assembled. Each failed batch is listed with its error "
        f"and cause in s3://{BUCKET}/builds/{BUILD_ID}/map-results/ (FAILED_*.json in the newest map run folder; "
        "the shard function logs have the details). Fix the cause, then start the build again with the same "
        "build_id: critiques already written are reused.")
    assert execution.called()[-1] == "shard"  # nothing assembled


def test_fine_tune_failure_fails_the_build_with_openais_message(machine):
    message = "The job failed due to an invalid training file. Expected file to have JSONL format."
    execution = machine.run(
        {"build_id": BUILD_ID},
        [REQUEST, SCRAPE, progress(5), SHARD_BATCH, DATASET,
         {"job_id": JOB, "status": "queued"},
         job_status("running"),
         job_status("failed", error={"code": "invalid_training_file", "message": message})],
    )

    assert execution.status == "FAILED"
    assert execution.error == "FineTuneFailed"
    assert execution.cause == (f"OpenAI fine-tuning job {JOB} failed: {message} "
                               "(OpenAI error code: invalid_training_file)")
    assert execution.called().count("finetune") == 3  # start and two checks; nothing published


def test_cancelled_fine_tune_without_an_error_says_so(machine):
    execution = machine.run(
        {"build_id": BUILD_ID},
        [REQUEST, SCRAPE, progress(5), SHARD_BATCH, DATASET, {"job_id": JOB, "status": "queued"},
         job_status("cancelled")],
    )

    assert execution.status == "FAILED"
    assert execution.error == "FineTuneFailed"
    assert execution.cause == f"OpenAI fine-tuning job {JOB} ended with status cancelled and gave no error message."


def test_fine_tune_that_never_ends_stops_waiting_with_the_job_id(machine):
    execution = machine.run(
        {"build_id": BUILD_ID},
        [REQUEST, SCRAPE, progress(5), SHARD_BATCH, DATASET, {"job_id": JOB, "status": "queued"}]
        + [job_status("running")] * 5,
    )

    assert execution.status == "FAILED"
    assert execution.error == "FineTuneTimedOut"
    assert execution.cause.startswith(f"OpenAI fine-tuning job {JOB} was still running after 5 status checks.")


def test_zero_stories_scraped_fails_with_the_scrapers_reason(machine):
    why = "no stories: r/WritingPrompts gave 25 posts but no top-level reply between 300 and 20000 characters"
    execution = machine.run({"build_id": BUILD_ID}, [REQUEST, lambda_error("NoStories", why)])

    assert execution.status == "FAILED"
    assert execution.error == "NoStories"
    assert execution.cause == why  # the message itself, not the JSON envelope with a stack trace
    assert execution.called() == ["checkinput", "scraper"]


def test_source_failure_shows_the_source_message(machine):
    why = "reddit_subreddit_unavailable: r/x is private or banned; choose another subreddit"
    execution = machine.run({"build_id": BUILD_ID}, [REQUEST, lambda_error("SourceFailed", why)])

    assert (execution.status, execution.error, execution.cause) == ("FAILED", "SourceFailed", why)


def test_invalid_input_fails_fast_before_scraping(machine):
    why = "invalid build request: build_id: must match ^[a-z0-9][a-z0-9-]{0,62}$ (got 'My Build!')"
    execution = machine.run({"build_id": "My Build!"}, [lambda_error("InvalidBuildRequest", why)])

    assert execution.status == "FAILED"
    assert execution.error == "InvalidBuildRequest"
    assert execution.cause == why
    assert execution.called() == ["checkinput"]


def test_input_that_is_not_an_object_reaches_the_check(machine):
    why = "invalid build request: the input must be a JSON object such as {\"build_id\": \"my-build\"}"
    execution = machine.run("just a string", [lambda_error("InvalidBuildRequest", why)])

    assert (execution.status, execution.error, execution.cause) == ("FAILED", "InvalidBuildRequest", why)
    assert execution.events_for("checkinput") == ["just a string"]


def test_dataset_too_small_fails_after_the_shards(machine):
    why = "dataset too small: 3 accepted critiques, fine-tuning needs at least 10"
    execution = machine.run(
        {"build_id": BUILD_ID},
        [REQUEST, SCRAPE, progress(5), SHARD_BATCH, lambda_error("DatasetTooSmall", why)],
    )

    assert (execution.status, execution.error, execution.cause) == ("FAILED", "DatasetTooSmall", why)
    assert "finetune" not in execution.called()


def test_invalid_dataset_lists_its_problems(machine):
    why = ("dataset invalid: train.jsonl line 12: assistant message is empty | "
           "validation.jsonl: 0 examples, give validation_fraction > 0 or more stories")
    execution = machine.run(
        {"build_id": BUILD_ID},
        [REQUEST, SCRAPE, progress(5), SHARD_BATCH, lambda_error("DatasetInvalid", why)],
    )

    assert (execution.status, execution.error, execution.cause) == ("FAILED", "DatasetInvalid", why)


def test_error_without_a_message_shows_the_raw_cause(machine):
    odd = {"errorType": "Runtime.ExitError", "errorMessage": None, "requestId": "r-1"}
    execution = machine.run({"build_id": BUILD_ID}, [REQUEST, odd])

    assert execution.status == "FAILED"
    assert execution.error == "Runtime.ExitError"
    assert "Runtime.ExitError" in execution.cause  # shown as sent, since there is no message to extract


# -- the Bedrock branch: customization job -> on-demand deployment -> publish ------------------------------

BEDROCK_REQUEST = request(provider="bedrock", model="amazon.nova-pro-v1:0",
                          fine_tune={"enabled": True, "backend": "bedrock", "base_model": "amazon.nova-lite-v1:0:300k",
                                     "suffix": "writing-coach", "epochs": None, "seed": 42})
JOB_ARN = f"arn:aws:bedrock:us-east-1:123456789012:model-customization-job/amazon.nova-lite-v1:0:300k/{BUILD_ID}"
CUSTOM_MODEL = "arn:aws:bedrock:us-east-1:123456789012:custom-model/amazon.nova-lite-v1:0:300k/abc123"
DEPLOYMENT = "arn:aws:bedrock:us-east-1:123456789012:custom-model-deployment/d1e2f3"


def bedrock_status(status: str, **fields) -> dict:
    return {"job_id": JOB_ARN, "status": status, "backend": "bedrock", "build_id": BUILD_ID,
            "custom_model_arn": CUSTOM_MODEL if status not in ("running", "failed") else None,
            "deployment_arn": None, "fine_tuned_model": None, "error": None, **fields}


def test_bedrock_branch_trains_deploys_and_publishes_the_deployment(machine):
    deploying = bedrock_status("deploying", deployment_arn=DEPLOYMENT)
    active = bedrock_status("succeeded", deployment_arn=DEPLOYMENT, fine_tuned_model=DEPLOYMENT)
    execution = machine.run(
        {"build_id": BUILD_ID, "provider": "bedrock", "fine_tune": {"enabled": True}},
        [BEDROCK_REQUEST, SCRAPE, progress(5), SHARD_BATCH, DATASET,
         {"status": "running", "job_id": JOB_ARN},
         bedrock_status("running"), bedrock_status("trained"),
         deploying, active, {**PASSED, "model": DEPLOYMENT},
         {"parameter": "/coach/critique-model", "model": DEPLOYMENT}],
    )

    assert execution.status == "SUCCEEDED", execution.cause
    # The deployment is evaluated before it is published, like an OpenAI model.
    assert execution.events_for("evaluate") == [{"request": BEDROCK_REQUEST, "job": active}]
    start, check1, check2, deploy, check_deployment, publish = execution.events_for("finetune")
    assert start == {"action": "start", "request": BEDROCK_REQUEST, "dataset": DATASET}
    assert check1 == check2 == {"action": "status", "backend": "bedrock", "job_id": JOB_ARN, "build_id": BUILD_ID}
    assert deploy == {"action": "deploy", "job": bedrock_status("trained")}
    assert check_deployment == {"action": "deployment_status", "job": deploying}
    assert publish == {"action": "publish", "build_id": BUILD_ID, "job": active}
    assert execution.output["published"]["model"] == DEPLOYMENT


def test_bedrock_job_failure_fails_the_build_with_bedrocks_message(machine):
    message = "Training data validation failed: line 7 is not valid JSON."
    execution = machine.run(
        {"build_id": BUILD_ID},
        [BEDROCK_REQUEST, SCRAPE, progress(5), SHARD_BATCH, DATASET, {"status": "running", "job_id": JOB_ARN},
         bedrock_status("failed", error={"code": "bedrock_job_failed", "message": message})],
    )

    assert execution.status == "FAILED"
    assert execution.error == "FineTuneFailed"
    assert execution.cause == (f"Bedrock model customization job {JOB_ARN} failed: {message} "
                               "(code: bedrock_job_failed)")
    assert execution.called().count("finetune") == 2  # start and one check; nothing deployed or published


def test_failed_deployment_fails_the_build_and_publishes_nothing(machine):
    message = "The custom model could not be deployed: capacity is unavailable."
    failed = bedrock_status("failed", custom_model_arn=CUSTOM_MODEL, deployment_arn=DEPLOYMENT,
                            error={"code": "bedrock_deployment_failed", "message": message})
    execution = machine.run(
        {"build_id": BUILD_ID},
        [BEDROCK_REQUEST, SCRAPE, progress(5), SHARD_BATCH, DATASET, {"status": "running", "job_id": JOB_ARN},
         bedrock_status("trained"), bedrock_status("deploying", deployment_arn=DEPLOYMENT), failed],
    )

    assert execution.status == "FAILED"
    assert execution.error == "DeploymentFailed"
    assert execution.cause == (f"Bedrock deployment {DEPLOYMENT} of model {CUSTOM_MODEL} failed: {message} "
                               "(code: bedrock_deployment_failed). Nothing was published.")
    actions = [event["action"] for event in execution.events_for("finetune")]
    assert actions == ["start", "status", "deploy", "deployment_status"]


def test_bedrock_fine_tune_that_never_ends_says_how_to_resume(machine):
    execution = machine.run(
        {"build_id": BUILD_ID},
        [BEDROCK_REQUEST, SCRAPE, progress(5), SHARD_BATCH, DATASET, {"status": "running", "job_id": JOB_ARN}]
        + [bedrock_status("running")] * 5,
    )

    assert execution.status == "FAILED"
    assert execution.error == "FineTuneTimedOut"
    assert execution.cause.startswith(f"Bedrock fine-tune {JOB_ARN} was still running after 5 status checks.")
    assert "same build_id" in execution.cause
