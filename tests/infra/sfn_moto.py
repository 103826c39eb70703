"""Runs the real dataset-build ASL in moto's Step Functions engine with scripted Lambda answers.

moto's docker-less Lambda answers each invoke with the next payload queued through its lambda-simple
response API, whichever function is called. A build's steps run one after another, so queuing the
answers in step order scripts a whole execution. A queued answer shaped like a Lambda error payload
({"errorType", "errorMessage", ...}) is returned as a function error, as Lambda does when a handler
raises; moto's simple backend never marks errors itself, so a small wrapper adds the error header.

moto 5.2.5 cannot run the definition's Distributed Map (BuildShards): its ASL parser refuses ItemBatcher
and ExecutionType EXPRESS, ignores ToleratedFailurePercentage, evaluates the ResultWriter's parameters
against the map's output instead of its input, and writes no result files. So the machine created here
is the real definition with each DISTRIBUTED map replaced by its stand-in (`emulate_distributed_maps`):
one call of the map's function with the batch event the map would build, then the map's output shape
at its ResultPath, with the map's own Retry, Catch and Next. tests/infra/test_dataset_build_asl.py
checks the real map's shape, and tests/infra/test_template_lint.py lints it with cfn-lint.
"""

from __future__ import annotations

import copy
import io
import json
import re
import time
import uuid
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import boto3
import requests
from moto import mock_aws
from moto.awslambda_simple.models import LambdaSimpleBackend, lambda_simple_backends
from moto.core import DEFAULT_ACCOUNT_ID

from tests.infra.cfn_template import ASL_PATH

REGION = "us-east-1"
RESPONSE_API = "http://motoapi.amazonaws.com/moto-api/static/lambda-simple/response"
MOTO_CONFIG = {"stepfunctions": {"execute_state_machine": True}, "lambda": {"use_docker": False}}

# DefinitionSubstitutions placeholder -> function folder name.
FUNCTIONS = {
    "CheckInputFunctionArn": "checkinput",
    "ScraperFunctionArn": "scraper",
    "ProgressFunctionArn": "progress",
    "ShardFunctionArn": "shard",
    "AssemblerFunctionArn": "assembler",
    "FineTuneFunctionArn": "finetune",
    "EvaluateFunctionArn": "evaluate",
    "BatchFunctionArn": "batch",
}
BUCKET = "coach-data-test"
DEFAULT_SETTINGS = {
    "GenerationPollSeconds": "0",
    "FineTunePollSeconds": "0",
    "FineTuneMaxChecks": "5",
    "BatchPollSeconds": "0",
    "BatchMaxChecks": "5",
    "ShardBatchSize": "400",
    "ShardMaxConcurrency": "50",
    "ShardToleratedFailurePercent": "5",
    "DatasetBucketName": BUCKET,
}


# What a Distributed Map's stand-in reports as the map run (the real one names the map run's own id).
EMULATED_MAP_RUN = "emulated"
# A Lambda error may not be named States.*, so the stand-in's Retry and Catch name the map's own errors
# (States.ExceedToleratedFailureThreshold, States.ItemReaderFailed, ...) with this prefix instead.
MAP_ERROR_PREFIX = "EmulatedMap."
# Errors any state can raise; the stand-in keeps these names as they are.
_GENERAL_ERRORS = {"States.ALL", "States.TaskFailed", "States.Timeout", "States.Runtime", "States.Permissions"}


def lambda_error(error_type: str, message: str) -> dict[str, Any]:
    """The payload Lambda's Python runtime returns when a handler raises `error_type(message)`."""
    return {
        "errorMessage": message,
        "errorType": error_type,
        "requestId": str(uuid.uuid4()),
        "stackTrace": ['  File "/var/task/app.py", line 20, in lambda_handler\n    raise ...\n'],
    }


@dataclass
class Execution:
    status: str
    error: str | None
    cause: str | None
    output: dict[str, Any] | None
    calls: list[tuple[str, dict[str, Any]]] = field(default_factory=list)  # (function, event) in order

    def called(self) -> list[str]:
        return [name for name, _ in self.calls]

    def events_for(self, function: str) -> list[dict[str, Any]]:
        return [event for name, event in self.calls if name == function]


class DatasetBuildMachine:
    """The state machine created in moto from infra/statemachine/dataset_build.asl.json."""

    def __init__(self, settings: dict[str, str]) -> None:
        self.sfn = boto3.client("stepfunctions", region_name=REGION)
        iam = boto3.client("iam", region_name=REGION)
        role = iam.create_role(RoleName="dataset-build", AssumeRolePolicyDocument="{}")["Role"]["Arn"]
        lam = boto3.client("lambda", region_name=REGION)
        archive = io.BytesIO()
        with zipfile.ZipFile(archive, "w") as zf:
            zf.writestr("app.py", "def lambda_handler(event, context):\n    return event\n")
        substitutions = dict(settings)
        self.function_by_arn: dict[str, str] = {}
        for placeholder, name in FUNCTIONS.items():
            arn = lam.create_function(
                FunctionName=f"coach-{name}", Runtime="python3.13", Role=role, Handler="app.lambda_handler",
                Code={"ZipFile": archive.getvalue()},
            )["FunctionArn"]
            substitutions[placeholder] = arn
            self.function_by_arn[arn] = name
        definition = json.dumps(emulate_distributed_maps(
            json.loads(substitute(ASL_PATH.read_text(encoding="utf-8"), substitutions))))
        self.arn = self.sfn.create_state_machine(
            name="DatasetBuild", definition=definition, roleArn=role
        )["stateMachineArn"]

    def run(self, execution_input: Any, answers: list[Any], *, wait_s: float = 60.0) -> Execution:
        """Queue the Lambda answers in call order, run one execution to its end and describe it."""
        queue = lambda_simple_backends[DEFAULT_ACCOUNT_ID][REGION].lambda_simple_results_queue
        queue.clear()  # a previous test that stopped early may have left answers behind
        payloads = [answer if isinstance(answer, str) else json.dumps(answer) for answer in answers]
        reply = requests.post(RESPONSE_API, json={"results": payloads, "region": REGION}, timeout=10)
        reply.raise_for_status()
        started = self.sfn.start_execution(
            stateMachineArn=self.arn,
            name=f"build-{uuid.uuid4().hex[:12]}",  # moto reuses a fixed name unless given one
            input=json.dumps(execution_input),
        )["executionArn"]
        deadline = time.monotonic() + wait_s
        while True:
            described = self.sfn.describe_execution(executionArn=started)
            if described["status"] != "RUNNING":
                break
            if time.monotonic() > deadline:
                raise AssertionError(f"execution still running after {wait_s} s")
            time.sleep(0.02)
        if queue:
            raise AssertionError(f"{len(queue)} scripted answers were never asked for: {queue}")
        output = described.get("output")
        return Execution(
            status=described["status"],
            error=described.get("error"),
            cause=described.get("cause"),
            output=json.loads(output) if output else None,
            calls=self._calls(started),
        )

    def _calls(self, execution_arn: str) -> list[tuple[str, dict[str, Any]]]:
        calls = []
        pages = self.sfn.get_paginator("get_execution_history").paginate(executionArn=execution_arn)
        for page in pages:
            for event in page["events"]:
                details = event.get("lambdaFunctionScheduledEventDetails")
                if details:
                    calls.append((self.function_by_arn[details["resource"]], json.loads(details["input"])))
        return calls


def substitute(definition: str, values: dict[str, str]) -> str:
    """What CloudFormation does with DefinitionSubstitutions; every placeholder must have a value."""

    def replace(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in values:
            raise KeyError(f"no substitution for ${{{name}}}")
        return values[name]

    return re.sub(r"\$\{([A-Za-z0-9]+)\}", replace, definition)


def map_failure(cause: str = "The specified tolerated failure threshold was exceeded") -> dict[str, Any]:
    """The scripted answer that makes a Distributed Map's stand-in fail as a map whose failed items pass its
    tolerated percentage does (States.ExceedToleratedFailureThreshold, caught by the map's own Catch)."""
    return lambda_error(f"{MAP_ERROR_PREFIX}ExceedToleratedFailureThreshold", cause)


def _as_emulated_errors(handlers: list[dict[str, Any]]) -> list[dict[str, Any]]:
    renamed = copy.deepcopy(handlers)
    for handler in renamed:
        handler["ErrorEquals"] = [
            name if name in _GENERAL_ERRORS or not name.startswith("States.")
            else MAP_ERROR_PREFIX + name.removeprefix("States.")
            for name in handler["ErrorEquals"]
        ]
    return renamed


def emulate_distributed_maps(definition: dict[str, Any]) -> dict[str, Any]:
    """A copy of the definition in which each DISTRIBUTED Map state is replaced by a stand-in moto can run.

    The stand-in keeps the map's name, Retry, Catch and transition. It calls the child's function once
    (a direct Lambda task, so the runner sees the call) with the event one batch would receive:
    {"Items": [], "BatchInput": <the map's BatchInput, evaluated>} plus "EmulatedItemReader" (the map's
    ItemReader parameters, evaluated, since no S3 listing runs). What the function answers is dropped, as a
    map drops its children's outputs into the ResultWriter's files. Then a Pass state puts the map's output
    ({"MapRunArn", "ResultWriterDetails": {"Bucket", "Key"}}, with the ResultWriter's bucket and prefix
    evaluated) at the map's ResultPath. The map's own errors keep their Retry and Catch under MAP_ERROR_PREFIX
    names. Not emulated: listing, batching, concurrency, the child's Retry, the tolerated failure count (a
    test scripts `map_failure()` instead) and the result files.
    """
    emulated = copy.deepcopy(definition)
    states = emulated["States"]
    for name, state in list(states.items()):
        config = state.get("ItemProcessor", {}).get("ProcessorConfig", {})
        if state["Type"] != "Map" or config.get("Mode") != "DISTRIBUTED":
            continue
        processor = state["ItemProcessor"]
        (child,) = processor["States"].values()  # the stand-in knows one shape: a single Lambda task
        if child["Resource"] != "arn:aws:states:::lambda:invoke" or child["Parameters"].get("Payload.$") != "$":
            raise ValueError(f"{name}: no stand-in for a child other than one lambda:invoke of the batch event")
        result_name = f"{name}Result"
        if result_name in states:
            raise ValueError(f"{name}: the definition already has a state named {result_name}")
        writer = state["ResultWriter"]["Parameters"]
        prefix = writer.get("Prefix.$") or f"'{writer['Prefix']}'"  # an expression, or the literal quoted
        task: dict[str, Any] = {
            "Type": "Task",
            "Comment": f"Stand-in for the Distributed Map {name} (tests/infra/sfn_moto.py).",
            "Resource": child["Parameters"]["FunctionName"],
            "Parameters": {
                "Items": [],
                "BatchInput": state["ItemBatcher"].get("BatchInput", {}),
                "EmulatedItemReader": state["ItemReader"]["Parameters"],
            },
            "ResultPath": None,
            "Next": result_name,
        }
        for key in ("Retry", "Catch"):
            if key in state:
                task[key] = _as_emulated_errors(state[key])
        map_run = f"arn:aws:states:{REGION}:{DEFAULT_ACCOUNT_ID}:mapRun:DatasetBuild/{name}:{EMULATED_MAP_RUN}"
        result: dict[str, Any] = {
            "Type": "Pass",
            "Parameters": {
                "MapRunArn": map_run,
                "ResultWriterDetails": {
                    "Bucket": writer["Bucket"],
                    "Key.$": f"States.Format('{{}}/{EMULATED_MAP_RUN}/manifest.json', {prefix})",
                },
            },
            "ResultPath": state.get("ResultPath", "$"),
        }
        if state.get("End"):
            result["End"] = True
        else:
            result["Next"] = state["Next"]
        states[name] = task
        states[result_name] = result
    return emulated


def _invoke_with_function_errors(self, function_name, qualifier, body, headers, response_headers):
    payload = _original_invoke(self, function_name, qualifier, body, headers, response_headers)
    try:
        decoded = json.loads(payload)
    except (TypeError, ValueError):
        return payload
    if isinstance(decoded, dict) and "errorType" in decoded and "errorMessage" in decoded:
        response_headers["x-amz-function-error"] = "Unhandled"
    return payload


_original_invoke = LambdaSimpleBackend.invoke


@contextmanager
def dataset_build_machine(**settings: str) -> Iterator[DatasetBuildMachine]:
    """moto with Step Functions execution on, Lambda errors passed through, and the machine created."""
    LambdaSimpleBackend.invoke = _invoke_with_function_errors
    try:
        with mock_aws(config=MOTO_CONFIG):
            yield DatasetBuildMachine({**DEFAULT_SETTINGS, **settings})
    finally:
        LambdaSimpleBackend.invoke = _original_invoke
