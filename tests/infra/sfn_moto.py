"""Runs the real dataset-build ASL in moto's Step Functions engine with scripted Lambda answers.

moto's docker-less Lambda answers each invoke with the next payload queued through its lambda-simple
response API, whichever function is called. A build's steps run one after another, so queuing the
answers in step order scripts a whole execution. A queued answer shaped like a Lambda error payload
({"errorType", "errorMessage", ...}) is returned as a function error, as Lambda does when a handler
raises; moto's simple backend never marks errors itself, so a small wrapper adds the error header.
"""

from __future__ import annotations

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
    "ValidatorFunctionArn": "validator",
    "AssemblerFunctionArn": "assembler",
    "FineTuneFunctionArn": "finetune",
    "EvaluateFunctionArn": "evaluate",
    "BatchFunctionArn": "batch",
}
BUCKET = "coach-data-test"
DEFAULT_SETTINGS = {
    "GenerationPollSeconds": "0",
    "GenerationMaxChecks": "5",
    "FineTunePollSeconds": "0",
    "FineTuneMaxChecks": "5",
    "BatchPollSeconds": "0",
    "BatchMaxChecks": "5",
    "DatasetBucketName": BUCKET,
}


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
        definition = substitute(ASL_PATH.read_text(encoding="utf-8"), substitutions)
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
