"""Static checks of the dataset-build definition: every step retries and is caught, nothing dangles, and the
Distributed Map (which moto cannot run; tests/infra/sfn_moto.py runs a stand-in) has the shape AWS runs."""

from __future__ import annotations

import json
import re

import pytest

from tests.infra.cfn_template import ASL_PATH, load_template, resources_of_type

TRANSIENT_LAMBDA_ERRORS = {
    "Lambda.ServiceException",
    "Lambda.AWSLambdaException",
    "Lambda.SdkClientException",
    "Lambda.TooManyRequestsException",
}


@pytest.fixture(scope="module")
def asl() -> dict:
    return json.loads(ASL_PATH.read_text(encoding="utf-8"))


def _next_states(state: dict) -> set[str]:
    targets = {state[key] for key in ("Next", "Default") if key in state}
    targets |= {choice["Next"] for choice in state.get("Choices", [])}
    targets |= {catch["Next"] for catch in state.get("Catch", [])}
    return targets


BATCH_STEPS = ("SubmitBatches", "PollBatches", "CollectBatches")


def test_every_task_retries_transient_lambda_errors_and_catches_everything(asl):
    tasks = {name: state for name, state in asl["States"].items() if state["Type"] == "Task"}
    assert len(tasks) == 16
    for name, state in tasks.items():
        retried = {error for retrier in state.get("Retry", []) for error in retrier["ErrorEquals"]}
        assert retried >= TRANSIENT_LAMBDA_ERRORS, f"{name} does not retry transient Lambda errors"
        assert "States.ALL" not in retried, f"{name} retries every error, including a handler's own"
        catches = state.get("Catch", [])
        # A failing batch step first cancels the build's open batches, then explains its error.
        target = "CancelBatches" if name in BATCH_STEPS else "ExplainFailure"
        assert any("States.ALL" in c["ErrorEquals"] and c["Next"] == target for c in catches), name
        # The cancel keeps the batch step's error to explain, even when the cancel itself fails.
        result = "$.cancel_error" if name == "CancelBatches" else "$.error"
        assert all(c.get("ResultPath") == result for c in catches), f"{name} loses its input on failure"


def test_batch_steps_retry_a_busy_provider_and_wait_without_a_function(asl):
    states = asl["States"]
    for name in (*BATCH_STEPS, "CancelBatches"):
        retried = {e for retrier in states[name]["Retry"] for e in retrier["ErrorEquals"]}
        assert "BatchProviderBusy" in retried and "BatchFailed" not in retried, name
    assert states["CancelBatches"]["Next"] == "ExplainFailure"
    assert states["WaitForBatches"]["Type"] == "Wait" and states["WaitForBatches"]["Next"] == "PollBatches"
    choice = states["GenerationMode"]["Choices"][0]
    assert {"Variable": "$.request.generation", "StringEquals": "batch"} in choice["And"]


def test_fine_tune_start_is_not_retried_on_upstream_errors(asl):
    # A timed-out start may still have created a job; starting again could pay for two.
    retried = {e for retrier in asl["States"]["StartFineTune"]["Retry"] for e in retrier["ErrorEquals"]}
    assert "TransientUpstreamError" not in retried
    check = {e for retrier in asl["States"]["CheckFineTune"]["Retry"] for e in retrier["ErrorEquals"]}
    assert "TransientUpstreamError" in check


def test_bedrock_steps_are_retried_because_each_finds_the_builds_job_and_deployment_by_name(asl):
    # The job and the deployment are named after the build and created with a client request token, so a
    # retried step reads the existing one instead of paying for a second.
    for name in ("StartBedrockFineTune", "CheckBedrockJob", "DeployBedrockModel", "CheckDeployment"):
        retried = {e for retrier in asl["States"][name]["Retry"] for e in retrier["ErrorEquals"]}
        assert {"TransientUpstreamError", "RateLimitedError"} <= retried, name
    choice = asl["States"]["FineTuneRequested"]["Choices"][0]
    assert {"Variable": "$.request.fine_tune.backend", "StringEquals": "bedrock"} in choice["And"]
    assert choice["Next"] == "StartBedrockFineTune"
def test_a_model_is_published_only_after_the_evaluate_step_passed_it(asl):
    states = asl["States"]
    into_publish = {name for name, state in states.items() if "PublishModel" in _next_states(state)}
    assert into_publish == {"EvaluationPassed"}
    passed = states["EvaluationPassed"]
    assert passed["Choices"] == [{"Variable": "$.evaluation.passed", "BooleanEquals": True, "Next": "PublishModel"}]
    assert passed["Default"] == "EvaluationFailed"
    assert states["EvaluationFailed"]["Error"] == "EvaluationFailed"
    assert "$.evaluation.summary" in states["EvaluationFailed"]["CausePath"]
    # Every fine-tune backend's success leads here (the OpenAI job's, at least).
    into_evaluate = {name for name, state in states.items() if "Evaluate" in _next_states(state)}
    assert {"FineTuneFinished", "DeploymentReady"} <= into_evaluate
    # Upstream hiccups while asking the model are retried; a handler's own refusal is not.
    retried = {e for retrier in states["Evaluate"]["Retry"] for e in retrier["ErrorEquals"]}
    assert {"TransientUpstreamError", "RateLimitedError"} <= retried


def test_every_state_is_reachable_and_every_target_exists(asl):
    states = asl["States"]
    seen, todo = set(), [asl["StartAt"]]
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        assert name in states, f"a transition names a missing state: {name}"
        seen.add(name)
        todo.extend(_next_states(states[name]))
    assert seen == set(states), f"unreachable states: {set(states) - seen}"


def test_every_fail_state_has_an_error_and_a_cause(asl):
    fails = {name: s for name, s in asl["States"].items() if s["Type"] == "Fail"}
    assert fails
    for name, state in fails.items():
        assert "Error" in state or "ErrorPath" in state, name
        assert "Cause" in state or "CausePath" in state, name


def test_loops_wait_between_checks_and_are_bounded(asl):
    states = asl["States"]
    for wait, check, decide, limit in (
        ("WaitForGeneration", "CheckGeneration", "GenerationFinished", "$.progress.max_checks"),
        ("WaitForFineTune", "CheckFineTune", "FineTuneFinished", "$.settings.fine_tune_max_checks"),
        ("WaitForBedrockJob", "CheckBedrockJob", "BedrockJobFinished", "$.settings.fine_tune_max_checks"),
        ("WaitForDeployment", "CheckDeployment", "DeploymentReady", "$.settings.fine_tune_max_checks"),
        ("WaitForBatches", "PollBatches", "BatchesFinished", "$.settings.batch_max_checks"),
    ):
        assert states[wait]["Type"] == "Wait" and states[wait]["Next"] == check
        assert states[decide]["Default"] == wait
        limits = [c for c in states[decide]["Choices"] if c.get("NumericGreaterThanEqualsPath") == limit]
        assert limits and states[limits[0]["Next"]]["Type"] == "Fail", f"{decide} has no time limit"


def test_placeholders_match_the_templates_substitutions():
    placeholders = set(re.findall(r"\$\{([A-Za-z0-9]+)\}", ASL_PATH.read_text(encoding="utf-8")))
    template = load_template()
    (machine,) = resources_of_type(template, "AWS::Serverless::StateMachine").values()
    props = machine["Properties"]
    assert props["DefinitionUri"] == "infra/statemachine/dataset_build.asl.json"
    assert placeholders == set(props["DefinitionSubstitutions"])


def test_state_machine_may_invoke_exactly_the_functions_it_calls():
    template = load_template()
    (machine,) = resources_of_type(template, "AWS::Serverless::StateMachine").values()
    props = machine["Properties"]
    called = {
        value["Fn::GetAtt"][0]
        for name, value in props["DefinitionSubstitutions"].items()
        if name.endswith("FunctionArn")
    }
    invocable = {
        policy["LambdaInvokePolicy"]["FunctionName"]["Ref"]
        for policy in props["Policies"]
        if isinstance(policy, dict) and "LambdaInvokePolicy" in policy
    }
    assert called == invocable
    assert called <= set(resources_of_type(template, "AWS::Serverless::Function"))


# -- BuildShards: the Distributed Map that judges the critiques and writes the dataset shards ------------------


@pytest.fixture(scope="module")
def shards(asl) -> dict:
    return asl["States"]["BuildShards"]


def test_generation_hands_over_to_the_shard_map_and_the_map_to_assemble(asl, shards):
    states = asl["States"]
    assert "Validate" not in states
    done = states["GenerationFinished"]["Choices"][0]
    assert done == {"Variable": "$.progress.done", "BooleanEquals": True, "Next": "BuildShards"}
    assert shards["Type"] == "Map" and shards["Next"] == "Assemble"
    assert shards["ResultPath"] == "$.shards"  # the map's output: {"MapRunArn", "ResultWriterDetails"}
    assert states["Assemble"]["Parameters"] == {"request.$": "$.request", "scrape.$": "$.scrape",
                                                "shards.$": "$.shards"}
    assert states["BuildSucceeded"]["Parameters"]["shards.$"] == "$.shards"


def test_the_map_lists_the_builds_stories_and_batches_them_with_the_run(shards):
    assert shards["ItemReader"] == {
        "Resource": "arn:aws:states:::s3:listObjectsV2",
        "Parameters": {"Bucket": "${DatasetBucketName}",
                       "Prefix.$": "States.Format('builds/{}/stories/', $.scrape.build_id)"},
    }
    assert shards["ItemBatcher"] == {
        "MaxItemsPerBatchPath": "$.settings.shard_batch_size",
        "BatchInput": {"build_id.$": "$.scrape.build_id", "run_id.$": "$.scrape.run_id"},
    }
    assert shards["ItemProcessor"]["ProcessorConfig"] == {"Mode": "DISTRIBUTED", "ExecutionType": "EXPRESS"}
    assert shards["ResultWriter"] == {
        "Resource": "arn:aws:states:::s3:putObject",
        "Parameters": {"Bucket": "${DatasetBucketName}",
                       "Prefix.$": "States.Format('builds/{}/map-results', $.scrape.build_id)"},
    }
    assert "Items" not in shards and "ItemsPath" not in shards and "ItemSelector" not in shards


def test_batch_size_concurrency_and_tolerance_come_from_the_stack_parameters(asl, shards):
    # SAM substitutes parameters as text; ReadSettings parses them to numbers for the map's *Path fields.
    settings = asl["States"]["ReadSettings"]["Parameters"]["settings"]
    for field, value, parameter in (
        (shards["ItemBatcher"], "MaxItemsPerBatchPath", "ShardBatchSize"),
        (shards, "MaxConcurrencyPath", "ShardMaxConcurrency"),
        (shards, "ToleratedFailurePercentagePath", "ShardToleratedFailurePercent"),
    ):
        key = field[value].removeprefix("$.settings.")
        assert settings[f"{key}.$"] == f"States.StringToJson('${{{parameter}}}')", value
    fixed = {"MaxItemsPerBatch", "MaxConcurrency", "ToleratedFailurePercentage"}
    assert not fixed & (set(shards) | set(shards["ItemBatcher"]))


def test_a_batch_is_one_lambda_call_with_the_batch_event_retried_but_never_caught(shards):
    processor = shards["ItemProcessor"]
    assert processor["StartAt"] == "ShardBatch" and list(processor["States"]) == ["ShardBatch"]
    batch = processor["States"]["ShardBatch"]
    assert batch["Type"] == "Task" and batch["End"] is True
    assert batch["Resource"] == "arn:aws:states:::lambda:invoke"
    # The function gets exactly the event the map builds: {"Items": [...], "BatchInput": {...}}.
    assert batch["Parameters"] == {"FunctionName": "${ShardFunctionArn}", "Payload.$": "$"}
    assert batch["OutputPath"] == "$.Payload"
    # A caught failure would pass for a success: failures must reach the map to be counted.
    assert "Catch" not in batch
    retried = {e for retrier in batch["Retry"] for e in retrier["ErrorEquals"]}
    assert retried >= TRANSIENT_LAMBDA_ERRORS | {"States.TaskFailed"}
    assert "States.ALL" not in retried
    for retrier in batch["Retry"]:
        assert 1 <= retrier["MaxAttempts"] <= 4 and retrier["BackoffRate"] > 1, retrier


def test_too_many_failed_batches_end_the_build_with_where_to_look(asl, shards):
    states = asl["States"]
    tolerated, everything = shards["Catch"]
    assert tolerated == {"ErrorEquals": ["States.ExceedToleratedFailureThreshold"], "ResultPath": "$.error",
                         "Next": "ShardsFailed"}
    assert everything == {"ErrorEquals": ["States.ALL"], "ResultPath": "$.error", "Next": "ExplainFailure"}
    failed = states["ShardsFailed"]
    assert failed["Type"] == "Fail" and failed["Error"] == "ShardsFailed"
    assert "builds/{}/map-results/" in failed["CausePath"] and "${DatasetBucketName}" in failed["CausePath"]
    assert "$.settings.shard_tolerated_failure_percent" in failed["CausePath"]
    assert "same build_id" in failed["CausePath"]
    # Only the listing is retried (nothing has run yet then); rerunning a map that ran would redo every batch.
    (retrier,) = shards["Retry"]
    assert retrier["ErrorEquals"] == ["States.ItemReaderFailed"]


def test_the_generation_limit_comes_from_the_progress_check(asl):
    states = asl["States"]
    check = states["CheckGeneration"]["Parameters"]
    assert check["run_id.$"] == "$.scrape.run_id" and check["enqueued.$"] == "$.scrape.enqueued"
    assert check["poll_seconds.$"] == "$.settings.generation_poll_seconds"
    limit = states["GenerationFinished"]["Choices"][1]
    assert limit == {"Variable": "$.checks.generation", "NumericGreaterThanEqualsPath": "$.progress.max_checks",
                     "Next": "GenerationTimedOut"}
    cause = states["GenerationTimedOut"]["CausePath"]
    assert "ProviderStoriesPerMinute" in cause and "GenerationMaxChecks" not in cause
    assert "generation_max_checks" not in ASL_PATH.read_text(encoding="utf-8")
