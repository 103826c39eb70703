"""The completion adapter against the fake OpenAI server, and the price table behind its cost figures."""

from __future__ import annotations

import json
import random

import pytest

from coach.adapters.completion import (
    Completion,
    CompletionProvider,
    OfflineProvider,
    OpenAIProvider,
    make_provider,
    parse_retry_after,
)
from coach.domain import pricing
from coach.domain.pricing import PriceTable, load_price_table
from coach.domain.prompt import END_MARKER, build_messages
from coach.domain.records import Usage
from coach.errors import (
    ConfigError,
    InputError,
    PermanentUpstreamError,
    RateLimitedError,
    TransientUpstreamError,
)
from tests.fakes.openai_server import (
    CONTENT_POLICY,
    INSUFFICIENT_QUOTA,
    FakeOpenAIServer,
    Fault,
    Reply,
    unused_base_url,
)

KEY = "sk-test-adapter-1234"
STORY = (
    "The lighthouse keeper counted ships the way other men counted sheep.\n\n"
    "\"Nine,\" he said to the gull on the rail. The gull did not answer. It never did."
)


@pytest.fixture
def server():
    with FakeOpenAIServer(api_key=KEY) as fake:
        yield fake


@pytest.fixture
def waits() -> list[float]:
    return []


def provider_for(fake: FakeOpenAIServer, waits: list[float], **options) -> OpenAIProvider:
    options.setdefault("timeout", 10.0)
    return OpenAIProvider("gpt-4o-mini", api_key=options.pop("api_key", KEY), base_url=fake.base_url,
                          sleep=waits.append, rng=random.Random(1), **options)


def messages() -> list[dict[str, str]]:
    return build_messages(STORY, "Nine Ships").messages


def test_success_reports_text_usage_and_cost(server, waits):
    completion = provider_for(server, waits).complete(messages(), stop=[END_MARKER])

    assert isinstance(completion, Completion)
    assert completion.text.startswith("Your ")
    assert completion.finish_reason == "stop" and not completion.truncated
    assert completion.model == "gpt-4o-mini"
    assert completion.attempts == 1 and waits == []
    assert completion.request_id and completion.request_id.startswith("req_")
    served = server.usage_totals
    assert completion.usage == Usage(prompt_tokens=served["prompt_tokens"],
                                     completion_tokens=served["completion_tokens"],
                                     total_tokens=served["total_tokens"], estimated=False)
    expected = (served["prompt_tokens"] * 0.15 + served["completion_tokens"] * 0.60) / 1_000_000
    assert pricing.cost_usd(completion.model, completion.usage) == pytest.approx(expected)
    sent = server.chat_requests()[0].params
    assert sent["stop"] == [END_MARKER] and sent["max_tokens"] == 800 and sent["temperature"] == 0.7


def test_rate_limit_waits_what_retry_after_says_then_succeeds(server, waits):
    server.push_script(Fault(429, retry_after=7), Fault(429, retry_after=600))
    completion = provider_for(server, waits).complete(messages())

    assert completion.attempts == 3
    assert waits == [7.0, 60.0]  # the second wait is capped
    assert server.status_counts() == {429: 2, 200: 1}
    assert server.successes_containing("lighthouse keeper") == 1


def test_server_errors_exhaust_retries_with_capped_full_jitter(server, waits):
    server.push_script(*[500] * 4)
    provider = provider_for(server, waits, max_retries=3, backoff_base=0.5, backoff_cap=1.5)
    with pytest.raises(TransientUpstreamError) as err:
        provider.complete(messages())

    assert err.value.code == "upstream_unavailable"
    assert err.value.attempts == 4
    assert "gave up after 4 attempts" in err.value.message
    assert err.value.retry_after is not None and err.value.retry_after > 0
    assert len(server.chat_requests()) == 4 and server.total_successes == 0
    assert len(waits) == 3
    assert all(0 <= wait <= ceiling for wait, ceiling in zip(waits, [0.5, 1.0, 1.5], strict=True))
    assert len(set(waits)) == 3  # jittered, not a fixed schedule


def test_rate_limit_that_never_clears_is_rate_limited_error(server, waits):
    server.push_script(*[Fault(429, retry_after=2)] * 3)
    with pytest.raises(RateLimitedError) as err:
        provider_for(server, waits, max_retries=2).complete(messages())
    assert err.value.code == "upstream_rate_limited"
    assert err.value.retry_after == 2.0
    assert err.value.attempts == 3 and waits == [2.0, 2.0]


def test_stalled_call_times_out_and_is_retried(server, waits):
    server.configure(stall_seconds=3.0)
    server.push_script("stall")
    completion = provider_for(server, waits, timeout=0.5).complete(messages())

    assert completion.attempts == 2 and len(waits) == 1
    assert [r.status for r in server.chat_requests()] == [0, 200]
    assert server.successes_containing("lighthouse keeper") == 1


def test_content_policy_fails_at_once_with_upstream_message(server, waits):
    server.push_script(CONTENT_POLICY)
    with pytest.raises(PermanentUpstreamError) as err:
        provider_for(server, waits).complete(messages())

    assert err.value.code == "upstream_content_policy"
    assert err.value.status == 400 and not err.value.retryable
    assert "rejected as a result of our safety system" in err.value.message
    assert waits == [] and len(server.chat_requests()) == 1


def test_wrong_key_is_an_auth_error_without_retry(server, waits):
    with pytest.raises(PermanentUpstreamError) as err:
        provider_for(server, waits, api_key="sk-wrong-key-9999").complete(messages())
    assert err.value.code == "upstream_auth"
    assert "\n" not in str(err.value)
    assert waits == [] and server.status_counts() == {401: 1}


@pytest.mark.parametrize(("fault", "code"), [
    (INSUFFICIENT_QUOTA, "upstream_quota"),
    (Fault(404), "upstream_model_not_found"),
    (Fault(400, code="context_length_exceeded"), "upstream_context_length"),
    (Fault(422), "upstream_bad_request"),
    (Fault(403), "upstream_forbidden"),
])
def test_other_permanent_failures_have_stable_codes(server, waits, fault, code):
    server.push_script(fault)
    with pytest.raises(PermanentUpstreamError) as err:
        provider_for(server, waits).complete(messages())
    assert err.value.code == code
    assert waits == []


def test_token_limit_is_reported_as_length(server, waits):
    server.queue_replies(Reply("Your opening works, but the middle", finish_reason="length"))
    completion = provider_for(server, waits).complete(messages())
    assert completion.finish_reason == "length" and completion.truncated

    short = provider_for(server, waits).complete(messages(), max_tokens=20)
    assert short.finish_reason == "length" and short.usage.completion_tokens == 20


def test_connection_refused_is_transient(waits):
    provider = OpenAIProvider("gpt-4o-mini", api_key=KEY, base_url=unused_base_url(), max_retries=2,
                              sleep=waits.append, rng=random.Random(3))
    with pytest.raises(TransientUpstreamError) as err:
        provider.complete(messages())
    assert err.value.code == "upstream_unreachable"
    assert err.value.attempts == 3 and len(waits) == 2
    assert "127.0.0.1" in err.value.message


def test_empty_reply_is_retried_and_never_returned_as_feedback(server, waits):
    server.queue_replies("   ", Reply("", finish_reason="stop"))
    server.configure(reply="Your dialogue is sharp.")
    completion = provider_for(server, waits).complete(messages())
    assert completion.text == "Your dialogue is sharp."
    assert completion.attempts == 3
    # The two empty replies were billed too, so the usage (and the cost) includes them.
    assert completion.usage.total_tokens == server.usage_totals["total_tokens"]

    server.queue_replies(*[""] * 3)
    with pytest.raises(TransientUpstreamError) as err:
        provider_for(server, waits, max_retries=2).complete(messages())
    assert err.value.code == "upstream_empty"


def test_missing_usage_is_estimated_and_flagged(server, waits):
    server.queue_replies(Reply("Your pacing is steady.", usage=False))
    completion = provider_for(server, waits).complete(messages())
    assert completion.usage.estimated
    assert completion.usage.completion_tokens > 0 and completion.usage.prompt_tokens > 0


def test_refused_token_parameter_is_switched_once(server, waits):
    server.push_script(Fault(400, code="unsupported_parameter", param="max_tokens",
                             message="Unsupported parameter: 'max_tokens'. Use 'max_completion_tokens'."))
    provider = provider_for(server, waits)
    provider.complete(messages(), max_tokens=300)
    provider.complete(messages(), max_tokens=300)

    sent = [r.params for r in server.chat_requests()]
    assert "max_tokens" in sent[0]
    assert sent[1].get("max_completion_tokens") == 300 and "max_tokens" not in sent[1]
    assert sent[2].get("max_completion_tokens") == 300  # remembered for later calls
    assert waits == []


def test_retry_after_header_forms():
    assert parse_retry_after({"retry-after-ms": "250", "retry-after": "9"}) == 0.25
    assert parse_retry_after({"retry-after": "3"}) == 3.0
    assert parse_retry_after({"retry-after": "soon"}) is None
    assert 0 <= parse_retry_after({"retry-after": "Wed, 21 Oct 2015 07:28:00 GMT"}) <= 1
    assert parse_retry_after({}) is None


def test_make_provider_checks_name_and_key(monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.delenv("COACH_MODEL", raising=False)
    with pytest.raises(ConfigError, match="unknown provider 'claude': use offline, openai or bedrock"):
        make_provider("claude")
    with pytest.raises(ConfigError, match="OPENAI_API_KEY"):
        make_provider("openai")

    # No default model: every OpenAI model a default could name shuts down within months.
    with pytest.raises(ConfigError) as no_model:
        make_provider("openai", api_key="sk-x", base_url="http://127.0.0.1:9/v1")
    assert no_model.value.code == "model_required" and "2027-01-14" in no_model.value.message
    provider = make_provider("openai", "my-llama", api_key="sk-x", base_url="http://127.0.0.1:9/v1")
    assert provider.name == "openai" and provider.model == "my-llama"
    assert isinstance(provider, CompletionProvider)
    monkeypatch.setenv("COACH_MODEL", "gpt-4.1-mini")
    monkeypatch.setenv("OPENAI_API_KEY", "sk-from-env")
    assert make_provider("OpenAI", base_url="http://127.0.0.1:9/v1").model == "gpt-4.1-mini"
    assert make_provider("openai", "gpt-4o", base_url="http://127.0.0.1:9/v1").model == "gpt-4o"


def test_official_endpoint_gets_max_completion_tokens(server, waits):
    provider = OpenAIProvider("gpt-4o-mini", api_key=KEY, base_url="https://api.openai.com/v1")
    assert provider.token_parameter == "max_completion_tokens"
    assert provider_for(server, waits).token_parameter == "max_tokens"


# -- offline provider -----------------------------------------------------------------------------------

try:
    from coach.domain import critic
except ImportError:  # pragma: no cover - the critic package is part of the project
    critic = None
needs_critic = pytest.mark.skipif(not hasattr(critic, "write_critique"), reason="offline critic not built")


@needs_critic
def test_offline_provider_critiques_the_story_in_the_prompt():
    provider = OfflineProvider()
    completion = provider.complete(messages(), stop=[END_MARKER])

    assert provider.name == "offline" and provider.model == critic.OFFLINE_MODEL
    assert completion.model == critic.OFFLINE_MODEL
    assert completion.text.strip() and END_MARKER not in completion.text
    assert completion.usage.estimated and completion.finish_reason == "stop"
    assert completion.text == OfflineProvider().complete(messages()).text  # deterministic
    assert pricing.cost_usd(completion.model, completion.usage) == 0.0
    assert pricing.quote(completion.model, completion.usage).priced
    assert make_provider("offline").name == "offline"


@needs_critic
def test_offline_provider_refuses_an_empty_story():
    with pytest.raises(InputError):
        OfflineProvider().complete([{"role": "user", "content": "=== STORY ===\n\n=== END STORY ==="}])


# -- pricing ---------------------------------------------------------------------------------------------

USAGE = Usage(prompt_tokens=1_000_000, completion_tokens=1_000_000, total_tokens=2_000_000)


def test_prices_for_base_snapshot_and_fine_tuned_models():
    table = PriceTable()
    assert table.cost_usd("gpt-4o-mini", USAGE) == pytest.approx(0.75)
    assert table.cost_usd("gpt-4o-mini-2024-07-18", USAGE) == pytest.approx(0.75)
    assert table.cost_usd("ft:gpt-4o-mini-2024-07-18:coach:writing-coach:abc123", USAGE) == pytest.approx(1.50)
    assert table.cost_usd("gpt-4.1-nano", USAGE) == pytest.approx(0.50)
    assert table.training_price("gpt-4o-mini-2024-07-18") == pytest.approx(3.0)
    assert table.training_price("ft:gpt-4o-mini-2024-07-18:coach:writing-coach:abc123") == pytest.approx(3.0)


def test_unknown_model_costs_nothing_but_says_so():
    quote = PriceTable().quote("llama-3-70b", USAGE)
    assert quote.usd == 0.0 and not quote.priced
    assert PriceTable().training_price("llama-3-70b") is None
    assert PriceTable().quote("offline-critic", USAGE).priced


def test_price_table_override_from_inline_json_or_file(tmp_path, monkeypatch):
    monkeypatch.setenv("COACH_PRICE_TABLE", json.dumps({"models": {"llama-3-70b": {"input": 1, "output": 2}}}))
    assert pricing.cost_usd("llama-3-70b", USAGE) == pytest.approx(3.0)
    assert pricing.cost_usd("gpt-4o-mini", USAGE) == pytest.approx(0.75)  # defaults stay

    path = tmp_path / "prices.json"
    path.write_text(json.dumps({"gpt-4o-mini": {"input": 1, "output": 1}}))
    monkeypatch.setenv("COACH_PRICE_TABLE", str(path))
    assert pricing.cost_usd("gpt-4o-mini", USAGE) == pytest.approx(2.0)
    # An override without fine-tuned prices bills a fine-tuned model at the base rate.
    assert pricing.cost_usd("ft:gpt-4o-mini:coach:x:1", USAGE) == pytest.approx(2.0)


@pytest.mark.parametrize("setting", ["{not json", '{"gpt-4o": {"input": -1, "output": 1}}', "/no/such/file.json",
                                     '["gpt-4o"]'])
def test_bad_price_table_is_a_config_error(setting):
    with pytest.raises(ConfigError) as err:
        load_price_table(setting)
    assert err.value.code == "bad_price_table"
    assert "\n" not in err.value.message
