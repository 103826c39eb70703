"""The Bedrock Converse provider against a Bedrock-shaped HTTP server, through the real boto3 client."""

from __future__ import annotations

import pytest

from coach.adapters.bedrock import BedrockProvider
from coach.adapters.completion import make_provider
from coach.domain.prompt import END_MARKER, build_messages
from coach.errors import PermanentUpstreamError, RateLimitedError, TransientUpstreamError
from tests.fakes.bedrock_server import FakeBedrockServer, Fault, Reply

STORY = ("The lighthouse keeper counted the ships every night, though none had passed in years. "
         "He wrote their names in a ledger anyway, and the sea did not correct him.\n\n") * 4


@pytest.fixture
def server():
    with FakeBedrockServer(seed=3) as fake:
        yield fake


@pytest.fixture(autouse=True)
def aws_env(monkeypatch):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "test")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "test")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)


def provider(server: FakeBedrockServer, model: str = "amazon.nova-pro-v1:0", **kwargs) -> BedrockProvider:
    kwargs.setdefault("sleep", lambda _s: None)
    return BedrockProvider(model, region="us-east-1", **kwargs)


@pytest.fixture(autouse=True)
def endpoint(monkeypatch, server):
    monkeypatch.setenv("AWS_ENDPOINT_URL_BEDROCK_RUNTIME", server.endpoint_url)


def test_converse_sends_the_editor_prompt_as_system_blocks_and_counts_billed_tokens(server):
    prompt = build_messages(STORY, "The Keeper", layout="full")
    completion = provider(server).complete(prompt.messages, max_tokens=700, stop=[END_MARKER], temperature=0.5)

    sent = server.converse_requests()[-1]
    assert sent.model_id == "amazon.nova-pro-v1:0"
    assert sent.system == prompt.messages[0]["content"]
    assert sent.messages[0]["role"] == "user"
    assert sent.messages[0]["content"][0]["text"] == prompt.messages[1]["content"]
    assert sent.inference_config["maxTokens"] == 700
    assert sent.inference_config["stopSequences"] == [END_MARKER]
    assert completion.text.strip() and completion.finish_reason == "stop"
    assert completion.model == "amazon.nova-pro-v1:0"
    assert not completion.usage.estimated
    assert completion.usage.total_tokens == server.usage_totals["totalTokens"] > 0


def test_throttling_and_model_not_ready_are_retried_and_paid_once(server):
    server.push_script(Fault("ThrottlingException"), Fault("ModelNotReadyException"))
    completion = provider(server).complete(build_messages(STORY, "").messages)
    assert completion.attempts == 3
    assert server.total_successes == 1
    assert server.error_counts() == {"ThrottlingException": 1, "ModelNotReadyException": 1}


def test_exhausted_throttling_is_a_rate_limit_with_a_bedrock_code(server):
    server.push_script(*[Fault("ThrottlingException")] * 3)
    with pytest.raises(RateLimitedError) as caught:
        provider(server, max_retries=2).complete(build_messages(STORY, "").messages)
    assert caught.value.code == "bedrock_throttled"
    assert "gave up after 3 attempts" in caught.value.message
    assert caught.value.retry_after is not None


@pytest.mark.parametrize(("fault", "code"), [
    (Fault("AccessDeniedException"), "bedrock_access_denied"),
    (Fault("ValidationException", "Malformed input request"), "bedrock_validation"),
    (Fault("ResourceNotFoundException"), "bedrock_model_not_found"),
])
def test_refusals_fail_at_once_with_a_stable_code(server, fault, code):
    server.push_script(fault)
    with pytest.raises(PermanentUpstreamError) as caught:
        provider(server).complete(build_messages(STORY, "").messages)
    assert caught.value.code == code
    assert len(server.converse_requests()) == 1  # not retried


def test_unknown_model_and_disabled_access_are_coded(server):
    with pytest.raises(PermanentUpstreamError) as unknown:
        provider(server, model="amazon.nova-ultra-v9:0").complete(build_messages(STORY, "").messages)
    assert unknown.value.code == "bedrock_model_not_found"
    server.configure(disabled_models={"amazon.nova-pro-v1:0"})
    with pytest.raises(PermanentUpstreamError) as denied:
        provider(server).complete(build_messages(STORY, "").messages)
    assert denied.value.code == "bedrock_access_denied"
    assert "enable access" in denied.value.message


def test_token_limit_and_stop_sequence_map_to_finish_reasons(server):
    server.queue_replies(Reply("You open well, but the middle drags on and on", stop_reason="max_tokens"))
    completion = provider(server).complete(build_messages(STORY, "").messages)
    assert completion.finish_reason == "length" and completion.truncated


def test_server_errors_after_retries_are_transient(server):
    server.push_script(*[Fault("ServiceUnavailableException")] * 2)
    with pytest.raises(TransientUpstreamError) as caught:
        provider(server, max_retries=1).complete(build_messages(STORY, "").messages)
    assert caught.value.code == "bedrock_unavailable" and caught.value.retryable


def test_make_provider_defaults_to_nova_pro(monkeypatch):
    monkeypatch.delenv("COACH_MODEL", raising=False)
    made = make_provider("bedrock")
    assert made.name == "bedrock" and made.model == "amazon.nova-pro-v1:0"
