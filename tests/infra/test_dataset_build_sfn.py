"""The dataset-build state machine, executed for real in moto's Step Functions engine, one test per branch.

Each test scripts what the Lambda functions answer (see tests/infra/sfn_moto.py) and checks what a person
watching the console would see: which steps ran with what input, the status, and the error and cause.
"""

from __future__ import annotations

import copy

import pytest

from tests.infra.sfn_moto import BUCKET, dataset_build_machine, lambda_error

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
SCRAPE = {"build_id": BUILD_ID, "stories": 5, "enqueued": 5, "decode_errors": 0, "skipped": {"too_short": 2}}


def progress(generated: int, failed: int = 0, *, enqueued: int = 5) -> dict:
    accounted = generated + failed
    return {"build_id": BUILD_ID, "enqueued": enqueued, "generated": generated, "failed": failed,
            "skipped_budget": 0, "dead_lettered": 0, "accounted": accounted, "done": accounted >= enqueued}


VALIDATION = {"build_id": BUILD_ID, "accepted": 4, "rejected": 1, "rejected_by_reason": {"numbered_list": 1}}
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


@pytest.fixture(scope="module")
def machine():
    with dataset_build_machine() as created:
        yield created


def test_happy_path_with_fine_tune_publishes_the_model(machine):
    execution = machine.run(
        {"build_id": BUILD_ID, "source": {"kind": "reddit"}, "provider": "openai", "limit": 200,
         "fine_tune": {"enabled": True}},
        [REQUEST, SCRAPE, progress(5), VALIDATION, DATASET,
         {"job_id": JOB, "status": "validating_files"},
         job_status("running"),
         job_status("succeeded", model=MODEL),
         PASSED,
         {"parameter": "/coach/critique-model", "model": MODEL}],
    )

    assert execution.status == "SUCCEEDED", execution.cause
    assert execution.called() == ["checkinput", "scraper", "progress", "validator", "assembler",
                                  "finetune", "finetune", "finetune", "evaluate", "finetune"]
    assert execution.events_for("evaluate") == [{"request": REQUEST, "job": job_status("succeeded", model=MODEL)}]
    # Each function receives the event its handler expects.
    assert execution.events_for("checkinput") == [
        {"build_id": BUILD_ID, "source": {"kind": "reddit"}, "provider": "openai", "limit": 200,
         "fine_tune": {"enabled": True}}]
    assert execution.events_for("scraper") == [{"request": REQUEST}]
    assert execution.events_for("progress") == [{"build_id": BUILD_ID, "enqueued": 5}]
    assert execution.events_for("validator") == [{"build_id": BUILD_ID}]
    assert execution.events_for("assembler") == [{"request": REQUEST, "scrape": SCRAPE}]
    start, first_check, second_check, publish = execution.events_for("finetune")
    assert start == {"action": "start", "request": REQUEST, "dataset": DATASET}
    assert first_check == second_check == {"action": "status", "job_id": JOB, "build_id": BUILD_ID}
    assert publish == {"action": "publish", "build_id": BUILD_ID, "job": job_status("succeeded", model=MODEL)}

    output = execution.output
    assert output["build_id"] == BUILD_ID
    assert output["bucket"] == BUCKET
    assert output["dataset"]["train_key"] == f"builds/{BUILD_ID}/dataset/train.jsonl"
    assert output["validation"]["accepted"] == 4
    assert output["fine_tune"]["status"] == "succeeded"
    assert output["published"] == {"parameter": "/coach/critique-model", "model": MODEL}


def test_a_model_the_gate_refuses_is_not_published_and_the_cause_carries_its_scores(machine):
    summary = (f"{MODEL}: pass rate 100%, grounding 100%, loop rate 100%, planted-flaw lift +0.50; refused: "
               "loop rate 100% is above the ceiling 10%")
    refused = {**PASSED, "passed": False, "reasons": ["loop_rate_above_ceiling"], "summary": summary}
    execution = machine.run(
        {"build_id": BUILD_ID},
        [REQUEST, SCRAPE, progress(5), VALIDATION, DATASET, {"job_id": JOB, "status": "running"},
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
        [REQUEST, SCRAPE, progress(5), VALIDATION, DATASET, {"job_id": JOB, "status": "running"},
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
        [normalised, SCRAPE, progress(5), VALIDATION, DATASET],
    )

    assert execution.status == "SUCCEEDED", execution.cause
    assert execution.called() == ["checkinput", "scraper", "progress", "validator", "assembler"]
    assert execution.output["fine_tune"]["status"] == "skipped"
    assert execution.output["published"] == {"parameter": None, "model": None}
    assert execution.output["dataset"] == DATASET


def test_fine_tune_skipped_by_the_function_ends_the_build(machine):
    skipped = {"status": "skipped", "job_id": None,
               "reason": "the critiques came from the offline critic; fine-tune on critiques from a real model"}
    execution = machine.run({"build_id": BUILD_ID}, [REQUEST, SCRAPE, progress(5), VALIDATION, DATASET, skipped])

    assert execution.status == "SUCCEEDED", execution.cause
    assert execution.called()[-1] == "finetune"
    assert execution.output["fine_tune"] == skipped


def test_generation_still_running_turns_the_loop_until_done(machine):
    execution = machine.run(
        {"build_id": BUILD_ID},
        [request(fine_tune={"enabled": False}), SCRAPE, progress(1), progress(3, failed=1), progress(4, failed=1),
         VALIDATION, DATASET],
    )

    assert execution.status == "SUCCEEDED", execution.cause
    assert execution.called() == ["checkinput", "scraper", "progress", "progress", "progress", "validator",
                                  "assembler"]
    assert execution.output["generation"]["accounted"] == 5


def test_generation_that_never_finishes_fails_with_the_counts(machine):
    # GenerationMaxChecks is 5 in these tests.
    execution = machine.run(
        {"build_id": BUILD_ID},
        [REQUEST, SCRAPE] + [progress(2, failed=1)] * 5,
    )

    assert execution.status == "FAILED"
    assert execution.error == "GenerationTimedOut"
    assert execution.called().count("progress") == 5
    assert "validator" not in execution.called()
    assert execution.cause.startswith("Story generation did not finish: 3 of 5 stories accounted for after 5 "
                                      "progress checks (generated 2, failed 1, skipped for budget 0, "
                                      "dead-lettered 0).")


def test_fine_tune_failure_fails_the_build_with_openais_message(machine):
    message = "The job failed due to an invalid training file. Expected file to have JSONL format."
    execution = machine.run(
        {"build_id": BUILD_ID},
        [REQUEST, SCRAPE, progress(5), VALIDATION, DATASET,
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
        [REQUEST, SCRAPE, progress(5), VALIDATION, DATASET, {"job_id": JOB, "status": "queued"},
         job_status("cancelled")],
    )

    assert execution.status == "FAILED"
    assert execution.error == "FineTuneFailed"
    assert execution.cause == f"OpenAI fine-tuning job {JOB} ended with status cancelled and gave no error message."


def test_fine_tune_that_never_ends_stops_waiting_with_the_job_id(machine):
    execution = machine.run(
        {"build_id": BUILD_ID},
        [REQUEST, SCRAPE, progress(5), VALIDATION, DATASET, {"job_id": JOB, "status": "queued"}]
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


def test_dataset_too_small_fails_after_validation(machine):
    why = "dataset too small: 3 accepted critiques, fine-tuning needs at least 10"
    execution = machine.run(
        {"build_id": BUILD_ID},
        [REQUEST, SCRAPE, progress(5), VALIDATION, lambda_error("DatasetTooSmall", why)],
    )

    assert (execution.status, execution.error, execution.cause) == ("FAILED", "DatasetTooSmall", why)
    assert "finetune" not in execution.called()


def test_invalid_dataset_lists_its_problems(machine):
    why = ("dataset invalid: train.jsonl line 12: assistant message is empty | "
           "validation.jsonl: 0 examples, give validation_fraction > 0 or more stories")
    execution = machine.run(
        {"build_id": BUILD_ID},
        [REQUEST, SCRAPE, progress(5), VALIDATION, lambda_error("DatasetInvalid", why)],
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
        [BEDROCK_REQUEST, SCRAPE, progress(5), VALIDATION, DATASET,
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
        [BEDROCK_REQUEST, SCRAPE, progress(5), VALIDATION, DATASET, {"status": "running", "job_id": JOB_ARN},
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
        [BEDROCK_REQUEST, SCRAPE, progress(5), VALIDATION, DATASET, {"status": "running", "job_id": JOB_ARN},
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
        [BEDROCK_REQUEST, SCRAPE, progress(5), VALIDATION, DATASET, {"status": "running", "job_id": JOB_ARN}]
        + [bedrock_status("running")] * 5,
    )

    assert execution.status == "FAILED"
    assert execution.error == "FineTuneTimedOut"
    assert execution.cause.startswith(f"Bedrock fine-tune {JOB_ARN} was still running after 5 status checks.")
    assert "same build_id" in execution.cause
