"""The fake Bedrock server behaves like Amazon Bedrock as far as the real boto3 clients can tell."""

from __future__ import annotations

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
    rates = {"ThrottlingException": 0.3, "ServiceUnavailableException": 0.2, "ModelTimeoutException": 0.1}

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


def test_endpoint_env_var_reaches_the_fake(server, monkeypatch):
    monkeypatch.setenv("AWS_ENDPOINT_URL_BEDROCK_RUNTIME", server.endpoint_url)
    runtime = boto3.client("bedrock-runtime", region_name="us-east-1", config=NO_RETRIES)

    assert runtime.converse(modelId="amazon.nova-micro-v1:0", messages=MESSAGES)["stopReason"] == "end_turn"
    assert server.success_counts == {STORY_TEXT: 1}
