"""The Bedrock fine-tune backend through the handlers: emulated S3/SSM (moto) and a Bedrock-shaped server.

What a person deploying the stack relies on: nothing is paid for a base model that cannot be served on
demand; a retried or re-run step never starts a second job or deployment; failures carry Bedrock's own
message into the manifest; nothing is published unless its deployment is Active.
"""

from __future__ import annotations

import json
from types import SimpleNamespace

import boto3
import pytest
from moto import mock_aws

from coach import runtime
from coach.adapters.model_registry import ModelRegistry
from coach.adapters.storage import BuildStore, dataset_key
from coach.domain.records import BuildManifest
from coach.domain.tokens import get_counter
from coach.errors import CoachError
from coach.local.lambda_runtime import invoke
from coach.step_errors import InvalidBuildRequest
from tests.fakes.bedrock_server import FakeBedrockServer, Fault
from tests.handlers.test_finetune_lifecycle import seed_build
from tests.support.shards import sharded

BUCKET = "coach-bedrock-tests"
PARAMETER = "/coach/critique-model"
ROLE = "arn:aws:iam::123456789012:role/coach-bedrock-customization"


@pytest.fixture
def bedrock(monkeypatch):
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1",
        "COACH_BUCKET": BUCKET, "COACH_MODEL_PARAMETER": PARAMETER, "COACH_TOKENIZER": "estimate",
        "COACH_BEDROCK_ROLE_ARN": ROLE, "POWERTOOLS_TRACE_DISABLED": "1", "POWERTOOLS_METRICS_DISABLED": "true",
        "POWERTOOLS_LOG_LEVEL": "ERROR",
    }.items():
        monkeypatch.setenv(name, value)
    for name in ("AWS_ENDPOINT_URL", "AWS_PROFILE", "AWS_SESSION_TOKEN", "COACH_TRAINING_PRICE_PER_MILLION",
                 "COACH_EXAMPLE_TOKEN_LIMIT", "COACH_PROVIDER", "COACH_MODEL", "COACH_BEDROCK_REGION",
                 "AWS_REGION"):
        monkeypatch.delenv(name, raising=False)
    get_counter.cache_clear()
    with mock_aws():
        s3 = boto3.client("s3")
        s3.create_bucket(Bucket=BUCKET)
        with FakeBedrockServer(s3_client_factory=lambda: s3) as fake:
            monkeypatch.setenv("AWS_ENDPOINT_URL_BEDROCK", fake.endpoint_url)
            runtime.reset()
            yield SimpleNamespace(fake=fake, store=BuildStore(BUCKET, s3), ssm=boto3.client("ssm"))
    runtime.reset()
    get_counter.cache_clear()


def request(build_id: str = "bd-build", **fine_tune) -> dict:
    # The seeded critiques came from an OpenAI-compatible teacher; the fine-tune is Bedrock's either way.
    return {"build_id": build_id, "provider": "openai", "model": "gpt-4o-mini",
            "fine_tune": {"enabled": True, "backend": "bedrock", **fine_tune}}


def manifest(store: BuildStore, build_id: str = "bd-build") -> BuildManifest:
    found = store.get_model(dataset_key(build_id, "manifest.json"), BuildManifest)
    assert found is not None
    return found


def assembled_build(store: BuildStore) -> dict:
    """The build's stories seeded and its dataset assembled, as the steps before the fine-tune leave them."""
    seed_build(store, "bd-build")
    return invoke("assembler", sharded(request()))


def start_job(assembled: dict) -> dict:
    return invoke("finetune", {"action": "start", "request": request(), "dataset": assembled})


def run_to_the_end(started: dict, build_id: str = "bd-build", limit: int = 12) -> dict:
    """What the state machine's Bedrock branch does: poll the job, deploy, poll the deployment, publish."""
    current = {"status": "running"}
    for _ in range(limit):
        current = invoke("finetune", {"action": "status", "backend": "bedrock", "job_id": started["job_id"],
                                      "build_id": build_id})
        if current["status"] != "running":
            break
    if current["status"] != "trained":
        return current
    current = invoke("finetune", {"action": "deploy", "job": current})
    for _ in range(limit):
        if current["status"] != "deploying":
            break
        current = invoke("finetune", {"action": "deployment_status", "job": current})
    return current


def test_a_nova_build_is_trained_deployed_and_published(bedrock):
    assembled = assembled_build(bedrock.store)
    checks = manifest(bedrock.store).dataset_checks
    assert checks["train.bedrock.jsonl"].passed and checks["train.bedrock.jsonl"].token_limit == 32_000
    assert "train.bedrock.jsonl" in manifest(bedrock.store).files
    assert manifest(bedrock.store).cost.fine_tune_epochs == 2  # Nova's default, stated as the default rule
    assert manifest(bedrock.store).cost.training_price_per_million == 2.0

    started = start_job(assembled)
    [create] = bedrock.fake.calls("CreateModelCustomizationJob")
    assert create.body["roleArn"] == ROLE and create.body["customizationType"] == "FINE_TUNING"
    assert create.body["validationDataConfig"]["validators"][0]["s3Uri"].endswith("validation.bedrock.jsonl")
    assert create.body["outputDataConfig"]["s3Uri"] == f"s3://{BUCKET}/builds/bd-build/fine-tune-output/"
    assert set(create.body["hyperParameters"]) == {"epochCount", "learningRate", "learningRateWarmupSteps"}

    done = run_to_the_end(started)
    assert done["status"] == "succeeded", done
    deployment = done["deployment_arn"]
    assert done["fine_tuned_model"] == deployment and ":custom-model-deployment/" in deployment
    assert done["metrics"]["train_loss"] > 0
    assert bedrock.store.get_text(dataset_key("bd-build", "fine-tune/step_metrics.csv"))

    published = invoke("finetune", {"action": "publish", "build_id": "bd-build", "job": done})
    assert published["model"] == deployment
    current = ModelRegistry(bedrock.ssm, PARAMETER).current()
    assert current is not None and current.provider == "bedrock" and current.model == deployment
    final = manifest(bedrock.store).fine_tune
    assert final.status == "succeeded" and final.backend == "bedrock" and final.deployment_arn == deployment
    assert final.published_at


def test_a_retried_start_and_a_retried_deploy_never_pay_twice(bedrock):
    assembled = assembled_build(bedrock.store)
    first = start_job(assembled)
    second = start_job(assembled)
    assert second["job_id"] == first["job_id"] and second["reused"]
    assert len(bedrock.fake.calls("CreateModelCustomizationJob")) == 1
    trained = run_to_the_end(first)
    again = run_to_the_end(first)
    assert again["deployment_arn"] == trained["deployment_arn"]
    assert len(bedrock.fake.calls("CreateCustomModelDeployment")) == 1


@pytest.mark.parametrize(("base_model", "code"), [
    ("meta.llama3-1-8b-instruct-v1:0:128k", "bedrock_base_model_not_in_region"),
    ("amazon.nova-2-lite-v1:0:256k", "bedrock_not_on_demand"),
    ("amazon.nova-mega-v9:0", "bedrock_unknown_base_model"),
])
def test_a_base_model_that_cannot_be_served_on_demand_is_refused_before_anything_runs(bedrock, base_model, code):
    with pytest.raises(InvalidBuildRequest, match=rf"^{code}: "):
        invoke("checkinput", request(base_model=base_model))
    assert not bedrock.fake.requests


def test_a_failed_job_leaves_its_message_in_the_manifest_and_deploys_nothing(bedrock):
    bedrock.fake.configure(customization_failure="The training data has an invalid record at line 5.")
    assembled = assembled_build(bedrock.store)
    started = start_job(assembled)
    ended = run_to_the_end(started)
    assert ended["status"] == "failed"
    assert ended["error"] == {"code": "bedrock_job_failed",
                              "message": "The training data has an invalid record at line 5."}
    assert manifest(bedrock.store).fine_tune.error.code == "bedrock_job_failed"
    assert not bedrock.fake.calls("CreateCustomModelDeployment")


def test_a_failed_deployment_is_never_published(bedrock):
    bedrock.fake.configure(deployment_failure="Not enough capacity to deploy the model.")
    assembled = assembled_build(bedrock.store)
    started = start_job(assembled)
    ended = run_to_the_end(started)
    assert ended["status"] == "failed" and ended["error"]["code"] == "bedrock_deployment_failed"
    with pytest.raises(CoachError, match="has not succeeded"):
        invoke("finetune", {"action": "publish", "build_id": "bd-build", "job": ended})
    assert ModelRegistry(bedrock.ssm, PARAMETER).current() is None
    fine_tune = manifest(bedrock.store).fine_tune
    assert fine_tune.status == "failed" and "capacity" in fine_tune.error.message


def test_model_access_not_enabled_is_a_coded_failure_in_the_manifest(bedrock):
    bedrock.fake.push_script(Fault("AccessDeniedException", "You don't have access to the model with the "
                                                            "specified model ID."),
                             operation="CreateModelCustomizationJob")
    assembled = assembled_build(bedrock.store)
    with pytest.raises(CoachError) as caught:
        start_job(assembled)
    assert caught.value.code == "bedrock_access_denied"
    fine_tune = manifest(bedrock.store).fine_tune
    assert fine_tune.status == "failed" and fine_tune.error.code == "bedrock_access_denied"


def test_a_record_over_the_models_token_limit_is_refused_with_its_line(bedrock):
    assembled_build(bedrock.store)
    key = dataset_key("bd-build", "train.bedrock.jsonl")
    lines = bedrock.store.get_text(key).splitlines()
    huge = json.loads(lines[2])
    huge["messages"][0]["content"][0]["text"] = "word " * 140_000
    lines[2] = json.dumps(huge)
    bedrock.store.put_text(key, "\n".join(lines) + "\n")
    with pytest.raises(CoachError) as caught:
        invoke("finetune", {"action": "start", "request": request()})
    assert caught.value.code == "dataset_invalid"
    assert "line 3" in caught.value.message and "32000" in caught.value.message
    assert not bedrock.fake.calls("CreateModelCustomizationJob")
