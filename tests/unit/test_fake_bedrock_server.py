"""The fake Bedrock server behaves like Amazon Bedrock as far as the real boto3 clients can tell."""

from __future__ import annotations

import json
import re

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from tests.fakes.bedrock_server import ERRORS, FakeBedrockServer, Fault, Reply

STORY_TEXT = ("Critique this.\n\n=== STORY ===\nTitle: Rain\n\nThe rain fell all Tuesday on the harbour.\n\n"
              "She did not look up.\n\n=== END STORY ===\n\nFEEDBACK:")
SYSTEM = [{"text": "You are a kind, exacting fiction editor."}]
MESSAGES = [{"role": "user", "content": [{"text": STORY_TEXT}]}]
NO_RETRIES = Config(retries={"total_max_attempts": 1, "mode": "standard"}, read_timeout=10, connect_timeout=5)


@pytest.fixture
def server():
    with FakeBedrockServer() as fake:
        yield fake


def client(fake: FakeBedrockServer, service: str = "bedrock-runtime", region: str = "us-east-1",
           config: Config = NO_RETRIES):
    return boto3.client(service, endpoint_url=fake.endpoint_url, region_name=region, config=config,
                        aws_access_key_id="testing", aws_secret_access_key="testing")


def error_of(call, **kwargs) -> tuple[str, int, str]:
    with pytest.raises(ClientError) as caught:
        call(**kwargs)
    error = caught.value.response
    return error["Error"]["Code"], error["ResponseMetadata"]["HTTPStatusCode"], error["Error"]["Message"]


def converse(fake: FakeBedrockServer, model: str = "amazon.nova-lite-v1:0", **extra):
    return client(fake).converse(modelId=model, system=SYSTEM, messages=MESSAGES, **extra)


# -- Converse -------------------------------------------------------------------------------------------


def test_converse_answers_an_editor_critique_of_the_story_with_usage(server):
    reply = converse(server, inferenceConfig={"maxTokens": 2000, "temperature": 0.2})

    text = reply["output"]["message"]["content"][0]["text"]
    assert reply["output"]["message"]["role"] == "assistant"
    assert reply["stopReason"] == "end_turn"
    assert text.startswith("Your ") and "The rain fell all Tuesday" in text
    usage = reply["usage"]
    assert usage["inputTokens"] > 0 and usage["outputTokens"] > 0
    assert usage["totalTokens"] == usage["inputTokens"] + usage["outputTokens"]
    assert reply["metrics"]["latencyMs"] >= 0
    assert server.success_counts == {STORY_TEXT: 1}
    assert server.usage_totals == usage


def test_each_request_is_recorded_as_the_product_sent_it(server):
    converse(server, "us.amazon.nova-pro-v1:0", inferenceConfig={"maxTokens": 900, "stopSequences": ["END"]})

    (call,) = server.converse_requests()
    assert call.model_id == "us.amazon.nova-pro-v1:0"
    assert call.system == SYSTEM[0]["text"]
    assert call.messages == MESSAGES
    assert call.inference_config == {"maxTokens": 900, "stopSequences": ["END"]}
    assert call.user_text == STORY_TEXT
    assert (call.status, call.region, call.error_code) == (200, "us-east-1", None)


def test_max_tokens_and_stop_sequences_cut_the_answer(server):
    server.configure(reply="First part. STOP second part that runs on for a good while longer.")

    cut = converse(server, inferenceConfig={"stopSequences": ["STOP"]})
    assert cut["output"]["message"]["content"][0]["text"] == "First part. "
    assert cut["stopReason"] == "stop_sequence"

    short = converse(server, inferenceConfig={"maxTokens": 2})
    assert short["output"]["message"]["content"][0]["text"] == "First pa"
    assert (short["stopReason"], short["usage"]["outputTokens"]) == ("max_tokens", 2)


def test_reply_can_be_fixed_computed_queued_or_scripted(server):
    server.configure(reply=lambda body: f"{body['modelId']} read {len(body['messages'])} message(s)")
    assert converse(server)["output"]["message"]["content"][0]["text"] == "amazon.nova-lite-v1:0 read 1 message(s)"

    server.queue_replies("queued", Reply("capped", stop_reason="max_tokens"))
    server.push_script(Reply("scripted first"))
    answers = [converse(server) for _ in range(3)]
    assert [(a["output"]["message"]["content"][0]["text"], a["stopReason"]) for a in answers] == [
        ("scripted first", "end_turn"), ("queued", "end_turn"), ("capped", "max_tokens"),
    ]


@pytest.mark.parametrize("code", [
    "ThrottlingException", "ModelNotReadyException", "ServiceUnavailableException", "ModelTimeoutException",
    "AccessDeniedException", "ValidationException", "ResourceNotFoundException", "InternalServerException",
])
def test_scripted_faults_surface_as_client_errors_with_the_models_status(server, code):
    server.push_script(code)

    assert error_of(converse, fake=server)[:2] == (code, ERRORS[code][0])
    assert converse(server)["stopReason"] == "end_turn"  # the script covered one call only
    assert server.success_counts == {STORY_TEXT: 1}  # the failed call was not paid for
    assert server.error_counts() == {code: 1}


def test_model_statuses_match_botocores_service_model():
    model = boto3.client("bedrock-runtime", region_name="us-east-1").meta.service_model
    for code in ("ThrottlingException", "ModelNotReadyException", "ServiceUnavailableException",
                 "ModelTimeoutException", "AccessDeniedException", "ValidationException",
                 "ResourceNotFoundException", "InternalServerException", "ModelErrorException"):
        assert model.shape_for(code).metadata["error"]["httpStatusCode"] == ERRORS[code][0], code


def test_a_fault_can_carry_its_own_message(server):
    server.push_script(Fault("ValidationException", "Input is too long for requested model."))

    assert error_of(converse, fake=server) == ("ValidationException", 400, "Input is too long for requested model.")


def test_random_faults_follow_the_seed_and_rates(server):
    rates = {"ThrottlingException": 0.25, "ServiceUnavailableException": 0.15, "ModelTimeoutException": 0.1,
             "ModelNotReadyException": 0.1}

    def outcomes(seed: int) -> list[str]:
        server.reseed(seed)
        server.configure(fault_rates=rates)
        found = []
        for _ in range(40):
            try:
                converse(server)
                found.append("ok")
            except ClientError as err:
                found.append(err.response["Error"]["Code"])
        return found

    first, again = outcomes(7), outcomes(7)
    assert first == again
    assert set(first) == {"ok", *rates}
    assert server.total_successes == 2 * first.count("ok")


def test_botocore_retries_throttling_and_the_story_is_paid_once(server):
    server.push_script("ThrottlingException", "ServiceUnavailableException")
    retrying = Config(retries={"total_max_attempts": 3, "mode": "standard"})

    reply = client(server, config=retrying).converse(modelId="amazon.nova-lite-v1:0", messages=MESSAGES)

    assert reply["stopReason"] == "end_turn"
    assert server.status_counts() == {429: 1, 503: 1, 200: 1}
    assert server.success_counts == {STORY_TEXT: 1}


def test_latency_is_injected_and_reported(server):
    server.configure(latency=0.05)

    reply = converse(server)

    assert reply["ResponseMetadata"]["HTTPStatusCode"] == 200
    assert server.converse_requests()[0].status == 200


@pytest.mark.parametrize(("model", "region", "code", "message"), [
    ("amazon.nova-giant-v9:0", "us-east-1", "ValidationException", "The provided model identifier is invalid."),
    ("amazon.nova-lite-v1:0", "eu-west-1", "ValidationException", "The provided model identifier is invalid."),
    ("eu.amazon.nova-lite-v1:0", "us-east-1", "ValidationException", "The provided model identifier is invalid."),
    ("amazon.nova-lite-v1:0:300k", "us-east-1", "ValidationException",
     "Invocation of model ID amazon.nova-lite-v1:0:300k with on-demand throughput isn't supported."),
])
def test_models_outside_the_region_or_catalog_are_rejected(server, model, region, code, message):
    call = client(server, region=region).converse
    assert error_of(call, modelId=model, messages=MESSAGES) == (code, 400, message)
    assert server.converse_requests()[0].region == region


def test_registered_and_disabled_models(server):
    server.configure(extra_models={"coach.test-model-v1:0"}, disabled_models={"amazon.nova-pro-v1:0"})

    assert converse(server, "coach.test-model-v1:0")["stopReason"] == "end_turn"
    for model in ("amazon.nova-pro-v1:0", "us.amazon.nova-pro-v1:0"):
        assert error_of(converse, fake=server, model=model) == (
            "AccessDeniedException", 403, "You don't have access to the model with the specified model ID.")


@pytest.mark.parametrize(("messages", "fragment"), [
    ([{"role": "assistant", "content": [{"text": "hi"}]}], "must start with a user message"),
    ([{"role": "user", "content": [{"text": "a"}]}, {"role": "user", "content": [{"text": "b"}]}], "alternate"),
    ([{"role": "user", "content": []}], "content field in the Message object is empty"),
])
def test_malformed_conversations_are_validation_errors(server, messages, fragment):
    code, status, message = error_of(client(server).converse, modelId="amazon.nova-micro-v1:0", messages=messages)
    assert (code, status) == ("ValidationException", 400) and fragment in message
    assert server.total_successes == 0


def test_max_tokens_above_the_model_limit_is_rejected(server):
    code, _, message = error_of(converse, fake=server, inferenceConfig={"maxTokens": 20_000})
    assert code == "ValidationException" and "10000" in message


def test_endpoint_env_vars_reach_one_fake_for_both_clients(server, monkeypatch):
    monkeypatch.setenv("AWS_ENDPOINT_URL_BEDROCK_RUNTIME", server.endpoint_url)
    monkeypatch.setenv("AWS_ENDPOINT_URL_BEDROCK", server.endpoint_url)
    runtime = boto3.client("bedrock-runtime", region_name="us-east-1", config=NO_RETRIES)
    bedrock = boto3.client("bedrock", region_name="us-east-1", config=NO_RETRIES)

    assert runtime.converse(modelId="amazon.nova-micro-v1:0", messages=MESSAGES)["stopReason"] == "end_turn"
    assert bedrock.get_foundation_model(modelIdentifier="amazon.nova-micro-v1:0:128k")["modelDetails"][
        "modelName"] == "Nova Micro"
    assert server.success_counts == {STORY_TEXT: 1}
    assert [r.operation for r in server.requests] == ["Converse", "GetFoundationModel"]


# -- control plane ---------------------------------------------------------------------------------------

ROLE = "arn:aws:iam::123456789012:role/coach-bedrock-customization"
NOVA_LITE = "amazon.nova-lite-v1:0:300k"
BUCKET = "coach-finetune"


def record(i: int) -> dict:
    return {"schemaVersion": "bedrock-conversation-2024", "system": [{"text": "You are an editor."}],
            "messages": [{"role": "user", "content": [{"text": f"Story {i}: the keeper counts ships."}]},
                         {"role": "assistant", "content": [{"text": "Your pacing works; show the fear."}]}]}


def jsonl(rows) -> bytes:
    return "".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows).encode()


def job_request(name: str = "coach-ft-1", **changes) -> dict:
    request = {
        "jobName": name, "customModelName": f"{name}-model", "roleArn": ROLE, "baseModelIdentifier": NOVA_LITE,
        "customizationType": "FINE_TUNING",
        "trainingDataConfig": {"s3Uri": f"s3://{BUCKET}/datasets/train.jsonl"},
        "outputDataConfig": {"s3Uri": f"s3://{BUCKET}/output/"},
        "hyperParameters": {"epochCount": "2", "learningRate": "0.00001", "learningRateWarmupSteps": "1"},
    }
    request.update(changes)
    return request


def finished_job(bedrock, job_arn: str, limit: int = 10) -> dict:
    for _ in range(limit):
        job = bedrock.get_model_customization_job(jobIdentifier=job_arn)
        if job["status"] not in ("InProgress", "Stopping"):
            return job
    raise AssertionError("the job never finished")


@pytest.fixture(scope="module")
def s3_url():
    from moto.server import ThreadedMotoServer

    from coach.local.emulator import free_port

    port = free_port()
    moto = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    moto.start()
    yield f"http://127.0.0.1:{port}"
    moto.stop()


@pytest.fixture
def s3(s3_url):
    s3 = boto3.client("s3", endpoint_url=s3_url, region_name="us-east-1", aws_access_key_id="testing",
                      aws_secret_access_key="testing")
    s3.create_bucket(Bucket=BUCKET)
    yield s3
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=BUCKET):
        for item in page.get("Contents", []):
            s3.delete_object(Bucket=BUCKET, Key=item["Key"])
    s3.delete_bucket(Bucket=BUCKET)


@pytest.fixture
def s3_server(s3):
    with FakeBedrockServer(s3_client_factory=lambda: s3, min_batch_records=3) as fake:
        yield fake


def test_foundation_models_answer_per_region(server):
    east, west = client(server, "bedrock"), client(server, "bedrock", region="us-west-2")

    lite = east.get_foundation_model(modelIdentifier=NOVA_LITE)["modelDetails"]
    assert lite["modelArn"] == f"arn:aws:bedrock:us-east-1::foundation-model/{NOVA_LITE}"
    assert "FINE_TUNING" in lite["customizationsSupported"] and lite["inferenceTypesSupported"] == ["PROVISIONED"]
    on_demand = east.get_foundation_model(modelIdentifier="amazon.nova-lite-v1:0")["modelDetails"]
    assert on_demand["inferenceTypesSupported"] == ["ON_DEMAND"] and on_demand["customizationsSupported"] == []
    llama = west.get_foundation_model(modelIdentifier="meta.llama3-1-8b-instruct-v1:0:128k")["modelDetails"]
    assert llama["providerName"] == "Meta"
    assert error_of(west.get_foundation_model, modelIdentifier=NOVA_LITE)[:2] == ("ValidationException", 400)
    assert error_of(east.get_foundation_model, modelIdentifier="meta.llama3-1-8b-instruct-v1:0:128k")[0] == (
        "ValidationException")


def test_a_customization_job_runs_to_a_custom_model(server):
    bedrock = client(server, "bedrock")
    arn = bedrock.create_model_customization_job(**job_request())["jobArn"]
    assert arn.startswith(f"arn:aws:bedrock:us-east-1:123456789012:model-customization-job/{NOVA_LITE}/")

    seen = [bedrock.get_model_customization_job(jobIdentifier=arn) for _ in range(3)]

    assert [j["status"] for j in seen] == ["InProgress", "InProgress", "Completed"]
    assert seen[0]["statusDetails"]["dataProcessingDetails"]["status"] == "InProgress"
    assert seen[0]["statusDetails"]["trainingDetails"]["status"] == "NotStarted"
    done = seen[-1]
    assert done["baseModelArn"] == f"arn:aws:bedrock:us-east-1::foundation-model/{NOVA_LITE}"
    assert done["outputModelName"] == "coach-ft-1-model" and done["hyperParameters"]["epochCount"] == "2"
    assert done["trainingMetrics"]["trainingLoss"] > 0 and done["endTime"] >= done["creationTime"]
    model = bedrock.get_custom_model(modelIdentifier=done["outputModelArn"])
    assert model["modelName"] == "coach-ft-1-model" and model["jobArn"] == arn and model["modelStatus"] == "Active"
    assert bedrock.get_custom_model(modelIdentifier="coach-ft-1-model")["modelArn"] == done["outputModelArn"]
    assert bedrock.get_model_customization_job(jobIdentifier="coach-ft-1")["jobArn"] == arn
    (summary,) = bedrock.list_model_customization_jobs(statusEquals="Completed")["modelCustomizationJobSummaries"]
    assert (summary["jobArn"], summary["customModelArn"]) == (arn, done["outputModelArn"])
    assert bedrock.list_model_customization_jobs(statusEquals="Failed")["modelCustomizationJobSummaries"] == []


def test_client_request_token_makes_creation_idempotent(server):
    bedrock = client(server, "bedrock")
    first = bedrock.create_model_customization_job(clientRequestToken="tok-1", **job_request())["jobArn"]

    assert bedrock.create_model_customization_job(clientRequestToken="tok-1", **job_request())["jobArn"] == first
    assert error_of(bedrock.create_model_customization_job, clientRequestToken="tok-1",
                    **job_request(hyperParameters={"epochCount": "3"}))[0] == "ConflictException"
    code, _, message = error_of(bedrock.create_model_customization_job, clientRequestToken="tok-2", **job_request())
    assert (code, message) == ("ValidationException", "The provided job name is currently in use.")
    assert len(server.customization_jobs) == 1


@pytest.mark.parametrize(("changes", "fragment"), [
    ({"roleArn": "not-a-role"}, "at 'roleArn' failed to satisfy constraint"),
    ({"outputDataConfig": {"s3Uri": "https://bucket/out"}}, "outputDataConfig.s3Uri"),
    ({"hyperParameters": {"epochCount": "9"}}, "epochCount"),
    ({"hyperParameters": {"learningRate": "0.5"}}, "learningRate"),
    ({"hyperParameters": {"batchSize": "8"}}, "batchSize is not supported"),
    ({"baseModelIdentifier": "amazon.nova-lite-v1:0"}, "does not support FINE_TUNING"),
    ({"baseModelIdentifier": "meta.llama3-1-8b-instruct-v1:0:128k"}, "The provided model identifier is invalid."),
])
def test_bad_customization_requests_are_validation_errors(server, changes, fragment):
    code, status, message = error_of(client(server, "bedrock").create_model_customization_job,
                                     **job_request(**changes))
    assert (code, status) == ("ValidationException", 400) and fragment in message
    assert server.customization_jobs == {}


def test_an_injected_failure_fails_the_job_in_training(server):
    server.configure(customization_failure="Internal error during training. Retry the job.")
    bedrock = client(server, "bedrock")
    arn = bedrock.create_model_customization_job(**job_request())["jobArn"]

    job = finished_job(bedrock, arn)

    assert job["status"] == "Failed" and job["failureMessage"] == "Internal error during training. Retry the job."
    assert job["statusDetails"]["trainingDetails"]["status"] == "Failed" and "outputModelArn" not in job
    assert server.custom_models == {}


def test_a_job_can_be_stopped(server):
    bedrock = client(server, "bedrock")
    arn = bedrock.create_model_customization_job(**job_request())["jobArn"]

    bedrock.stop_model_customization_job(jobIdentifier=arn)

    assert [bedrock.get_model_customization_job(jobIdentifier=arn)["status"] for _ in range(2)] == [
        "Stopped", "Stopped"]
    assert error_of(bedrock.stop_model_customization_job, jobIdentifier=arn)[0] == "ValidationException"
    assert error_of(bedrock.get_model_customization_job, jobIdentifier="nope")[:2] == (
        "ResourceNotFoundException", 404)


def test_jobs_can_advance_by_time_instead_of_polls(server):
    server.configure(seconds_per_state=3600.0)
    bedrock = client(server, "bedrock")
    arn = bedrock.create_model_customization_job(**job_request())["jobArn"]

    assert {bedrock.get_model_customization_job(jobIdentifier=arn)["status"] for _ in range(5)} == {"InProgress"}


def test_training_data_is_checked_and_metrics_are_written_to_s3(s3_server, s3):
    s3.put_object(Bucket=BUCKET, Key="datasets/train.jsonl", Body=jsonl(record(i) for i in range(10)))
    s3.put_object(Bucket=BUCKET, Key="datasets/valid.jsonl", Body=jsonl(record(i) for i in range(3)))
    bedrock = client(s3_server, "bedrock")
    request = job_request(validationDataConfig={"validators": [{"s3Uri": f"s3://{BUCKET}/datasets/valid.jsonl"}]})
    arn = bedrock.create_model_customization_job(**request)["jobArn"]

    job = finished_job(bedrock, arn)

    assert job["status"] == "Completed" and len(job["validationMetrics"]) == 1
    folder = f"output/model-customization-job-{arn.rsplit('/', 1)[1]}"
    steps = s3.get_object(Bucket=BUCKET, Key=f"{folder}/training_artifacts/step_wise_training_metrics.csv")
    lines = steps["Body"].read().decode().splitlines()
    assert lines[0] == "step_number,epoch_number,training_loss,perplexity" and len(lines) > 2
    valid = s3.get_object(Bucket=BUCKET,
                          Key=f"{folder}/validation_artifacts/post_fine_tuning_validation/validation_metrics.csv")
    assert valid["Body"].read().decode().startswith("step_number,epoch_number,validation_loss,perplexity\n")


@pytest.mark.parametrize(("rows", "fragment"), [
    ([record(1), record(2), {**record(3), "schemaVersion": "v1"}, *[record(i) for i in range(8)]],
     "train.jsonl line 3: schemaVersion must be 'bedrock-conversation-2024'"),
    ([record(1), "{not json", *[record(i) for i in range(8)]], "line 2: not valid JSON"),
    ([*[record(i) for i in range(8)], {**record(9), "messages": record(9)["messages"][:1]}], "line 9: messages"),
    ([record(i) for i in range(5)], "has 5 records; at least 8 are required"),
])
def test_bad_training_data_fails_the_job_naming_the_line(s3_server, s3, rows, fragment):
    s3.put_object(Bucket=BUCKET, Key="datasets/train.jsonl", Body=jsonl(rows))
    bedrock = client(s3_server, "bedrock")
    arn = bedrock.create_model_customization_job(**job_request())["jobArn"]

    job = bedrock.get_model_customization_job(jobIdentifier=arn)

    assert job["status"] == "Failed" and fragment in job["failureMessage"]
    assert job["statusDetails"]["validationDetails"]["status"] == "Failed"


def test_missing_training_data_fails_the_job(s3_server, s3):
    arn = client(s3_server, "bedrock").create_model_customization_job(**job_request())["jobArn"]

    job = client(s3_server, "bedrock").get_model_customization_job(jobIdentifier=arn)

    assert job["status"] == "Failed" and "could not read the training data" in job["failureMessage"]


def completed_model(fake: FakeBedrockServer, region: str = "us-east-1", **changes) -> str:
    bedrock = client(fake, "bedrock", region=region)
    arn = bedrock.create_model_customization_job(**job_request(**changes))["jobArn"]
    return finished_job(bedrock, arn)["outputModelArn"]


def test_a_deployment_becomes_active_and_serves_converse(server):
    bedrock = client(server, "bedrock")
    model_arn = completed_model(server)
    deployment = bedrock.create_custom_model_deployment(modelDeploymentName="coach-critic", modelArn=model_arn,
                                                        description="critic v1")["customModelDeploymentArn"]
    assert re.fullmatch(r"arn:aws:bedrock:us-east-1:123456789012:custom-model-deployment/[a-z0-9]{12}", deployment)

    assert error_of(converse, fake=server, model=deployment)[:2] == ("ModelNotReadyException", 429)
    states = [bedrock.get_custom_model_deployment(customModelDeploymentIdentifier=deployment) for _ in range(2)]

    assert [s["status"] for s in states] == ["Active", "Active"]
    assert (states[0]["modelArn"], states[0]["modelDeploymentName"]) == (model_arn, "coach-critic")
    assert converse(server, deployment)["stopReason"] == "end_turn"
    assert server.converse_requests()[-1].model_id == deployment
    (summary,) = bedrock.list_custom_model_deployments(modelArnEquals=model_arn)["modelDeploymentSummaries"]
    assert (summary["customModelDeploymentName"], summary["status"]) == ("coach-critic", "Active")

    bedrock.delete_custom_model_deployment(customModelDeploymentIdentifier="coach-critic")
    assert error_of(converse, fake=server, model=deployment)[0] == "ValidationException"
    assert error_of(bedrock.get_custom_model_deployment, customModelDeploymentIdentifier=deployment)[0] == (
        "ResourceNotFoundException")


def test_deployment_failures_and_refusals(server):
    bedrock = client(server, "bedrock")
    model_arn = completed_model(server)
    server.configure(deployment_failure="The deployment could not be created. Try again.")
    token = {"clientRequestToken": "dep-1"}
    arn = bedrock.create_custom_model_deployment(modelDeploymentName="d1", modelArn=model_arn, **token)[
        "customModelDeploymentArn"]

    assert bedrock.create_custom_model_deployment(modelDeploymentName="d1", modelArn=model_arn, **token)[
        "customModelDeploymentArn"] == arn
    failed = bedrock.get_custom_model_deployment(customModelDeploymentIdentifier=arn)
    assert failed["status"] == "Failed" and failed["failureMessage"].startswith("The deployment could not")
    assert error_of(bedrock.create_custom_model_deployment, modelDeploymentName="d1", modelArn=model_arn)[0] == (
        "ValidationException")
    unknown = model_arn[:-12] + "000000000000"
    assert error_of(bedrock.create_custom_model_deployment, modelDeploymentName="d2", modelArn=unknown)[0] == (
        "ResourceNotFoundException")

    llama = completed_model(server, "us-west-2", baseModelIdentifier="meta.llama3-1-8b-instruct-v1:0:128k",
                            hyperParameters={"epochCount": "1"})
    west = client(server, "bedrock", region="us-west-2")
    code, _, message = error_of(west.create_custom_model_deployment, modelDeploymentName="l1", modelArn=llama)
    assert code == "ValidationException" and "Provisioned Throughput" in message


def batch_input(rows) -> bytes:
    return jsonl({"recordId": f"REC{i:08d}", "modelInput": row} for i, row in enumerate(rows))


def batch_request(name: str = "coach-batch-1", **changes) -> dict:
    request = {
        "jobName": name, "roleArn": ROLE, "modelId": "amazon.nova-pro-v1:0",
        "inputDataConfig": {"s3InputDataConfig": {"s3Uri": f"s3://{BUCKET}/batch/in/stories.jsonl"}},
        "outputDataConfig": {"s3OutputDataConfig": {"s3Uri": f"s3://{BUCKET}/batch/out/"}},
        "modelInvocationType": "Converse",
    }
    request.update(changes)
    return request


def run_batch(bedrock, arn: str) -> list[dict]:
    seen = []
    for _ in range(8):
        seen.append(bedrock.get_model_invocation_job(jobIdentifier=arn))
        if seen[-1]["status"] not in ("Submitted", "Validating", "Scheduled", "InProgress", "Stopping"):
            return seen
    raise AssertionError("the batch job never finished")


def out_records(s3, arn: str, name: str = "stories.jsonl.out") -> list[dict]:
    body = s3.get_object(Bucket=BUCKET, Key=f"batch/out/{arn[-12:]}/{name}")["Body"].read().decode()
    return [json.loads(line) for line in body.splitlines()]


def test_a_batch_job_answers_every_record_into_s3(s3_server, s3):
    good = {"system": SYSTEM, "messages": MESSAGES, "inferenceConfig": {"maxTokens": 800}}
    bad = {"messages": [{"role": "assistant", "content": [{"text": "hi"}]}]}
    s3.put_object(Bucket=BUCKET, Key="batch/in/stories.jsonl", Body=batch_input([good, good, bad, good]))
    bedrock = client(s3_server, "bedrock")
    arn = bedrock.create_model_invocation_job(**batch_request())["jobArn"]

    seen = run_batch(bedrock, arn)

    assert [j["status"] for j in seen] == ["Validating", "Scheduled", "InProgress", "Completed"]
    done = seen[-1]
    assert (done["totalRecordCount"], done["successRecordCount"], done["errorRecordCount"]) == (4, 3, 1)
    records = out_records(s3, arn)
    assert [r["recordId"] for r in records] == [f"REC{i:08d}" for i in range(4)]
    assert records[0]["modelInput"] == good
    assert records[0]["modelOutput"]["output"]["message"]["content"][0]["text"].startswith("Your ")
    assert records[2]["error"]["errorCode"] == 400 and "modelOutput" not in records[2]
    manifest = json.loads(s3.get_object(Bucket=BUCKET, Key=f"batch/out/{arn[-12:]}/manifest.json.out")["Body"]
                          .read())
    assert manifest["successRecordCount"] == 3 and manifest["outputTokenCount"] > 0
    assert s3_server.success_counts == {STORY_TEXT: 3}  # batch answers are paid answers too
    (summary,) = bedrock.list_model_invocation_jobs(nameContains="coach-batch")["invocationJobSummaries"]
    assert summary["status"] == "Completed"


def test_batch_record_errors_job_failure_and_expiry_are_injectable(s3_server, s3):
    good = {"messages": MESSAGES}
    s3.put_object(Bucket=BUCKET, Key="batch/in/stories.jsonl", Body=batch_input([good] * 4))
    bedrock = client(s3_server, "bedrock")

    s3_server.configure(batch_record_error_rate=1.0)
    erred = run_batch(bedrock, bedrock.create_model_invocation_job(**batch_request("b1"))["jobArn"])[-1]
    assert (erred["status"], erred["errorRecordCount"]) == ("Completed", 4)

    s3_server.configure(batch_record_error_rate=0.0, batch_expires=True)
    arn = bedrock.create_model_invocation_job(**batch_request("b2"))["jobArn"]
    expired = run_batch(bedrock, arn)[-1]
    assert (expired["status"], expired["processedRecordCount"]) == ("Expired", 2)
    assert len(out_records(s3, arn)) == 2

    s3_server.configure(batch_expires=False, batch_failure="The input data is not in the expected format.")
    failed = run_batch(bedrock, bedrock.create_model_invocation_job(**batch_request("b3"))["jobArn"])[-1]
    assert (failed["status"], failed["message"]) == ("Failed", "The input data is not in the expected format.")


def test_batch_jobs_run_converse_records_with_alphanumeric_ids_and_expire_on_demand(s3_server, s3):
    s3.put_object(Bucket=BUCKET, Key="batch/in/stories.jsonl", Body=batch_input([{"messages": MESSAGES}] * 4))
    bedrock = client(s3_server, "bedrock")
    invoke_type = run_batch(bedrock, bedrock.create_model_invocation_job(
        **batch_request("t1", modelInvocationType="InvokeModel"))["jobArn"])[-1]
    assert invoke_type["status"] == "Failed" and "Converse" in invoke_type["message"]
    s3_server.configure(batch_expire_next=1)
    first = run_batch(bedrock, bedrock.create_model_invocation_job(**batch_request("t2"))["jobArn"])[-1]
    second = run_batch(bedrock, bedrock.create_model_invocation_job(**batch_request("t3"))["jobArn"])[-1]
    assert (first["status"], second["status"]) == ("Expired", "Completed")
    s3.put_object(Bucket=BUCKET, Key="batch/in/stories.jsonl",
                  Body=jsonl([{"recordId": "story-1.abc", "modelInput": {"messages": MESSAGES}}]))
    bad_id = run_batch(bedrock, bedrock.create_model_invocation_job(**batch_request("t4"))["jobArn"])[-1]
    assert bad_id["status"] == "Failed" and "alphanumeric" in bad_id["message"]


def test_batch_validation_idempotency_and_stop(s3_server, s3):
    s3.put_object(Bucket=BUCKET, Key="batch/in/stories.jsonl", Body=batch_input([{"messages": MESSAGES}] * 2))
    bedrock = client(s3_server, "bedrock")
    arn = bedrock.create_model_invocation_job(clientRequestToken="batch-1", **batch_request())["jobArn"]

    assert bedrock.create_model_invocation_job(clientRequestToken="batch-1", **batch_request())["jobArn"] == arn
    assert error_of(bedrock.create_model_invocation_job, **batch_request())[0] == "ValidationException"
    failed = run_batch(bedrock, arn)[-1]
    assert failed["status"] == "Failed" and "needs at least 3" in failed["message"]
    assert error_of(bedrock.create_model_invocation_job, **batch_request("b9", modelId="amazon.nova-giant-v9:0"))[
        0] == "ValidationException"

    stoppable = bedrock.create_model_invocation_job(**batch_request("b10"))["jobArn"]
    bedrock.stop_model_invocation_job(jobIdentifier=stoppable)
    assert bedrock.get_model_invocation_job(jobIdentifier=stoppable[-12:])["status"] == "Stopped"


def test_control_plane_calls_can_be_scripted_to_fail(server):
    bedrock = client(server, "bedrock")
    arn = bedrock.create_model_customization_job(**job_request())["jobArn"]
    server.push_script("ThrottlingException", operation="GetModelCustomizationJob")

    assert error_of(bedrock.get_model_customization_job, jobIdentifier=arn)[:2] == ("ThrottlingException", 429)
    assert bedrock.get_model_customization_job(jobIdentifier=arn)["status"] == "InProgress"
    assert server.error_counts("GetModelCustomizationJob") == {"ThrottlingException": 1}


def test_unimplemented_operations_answer_404(server):
    code, status, _ = error_of(client(server, "bedrock").list_custom_models)
    assert (code, status) == ("UnknownOperationException", 404)
