"""Which model writes the critique: the fine-tune published in SSM (compact prompt) or the base model."""

from __future__ import annotations

import json
from collections.abc import Iterator

import boto3
import pytest
from aws_lambda_powertools.utilities import parameters
from moto import mock_aws

from coach.api.model_choice import ModelSelector
from coach.domain.critic import OFFLINE_MODEL
from coach.domain.prompt import (
    COMPACT_PROMPT_VERSION,
    PROMPT_VERSION,
    SYSTEM_COMPACT,
    SYSTEM_FULL,
    build_messages,
)
from tests.api.api_support import STORY, post_story
from tests.fakes.openai_server import FakeOpenAIServer

PARAMETER = "/coach-test/critique-model"
FINE_TUNED = "ft:gpt-4o-mini-2024-07-18:coach::abc123"


def published(model: str = FINE_TUNED, prompt_version: str = COMPACT_PROMPT_VERSION) -> str:
    return json.dumps({"model": model, "prompt_version": prompt_version, "build_id": "samples-1",
                       "trained_at": "2026-11-01T10:00:00Z"})


@pytest.fixture
def ssm() -> Iterator[object]:
    parameters.clear_caches()
    with mock_aws():
        yield boto3.client("ssm", region_name="us-east-1")
    parameters.clear_caches()


def put(ssm, value: str) -> None:
    ssm.put_parameter(Name=PARAMETER, Value=value, Type="String", Overwrite=True)


def selector(**overrides) -> ModelSelector:
    options = {"parameter_name": PARAMETER, "base_provider": "offline", "base_model": None, "max_age": 0}
    return ModelSelector(**{**options, **overrides})


# -- the decision ------------------------------------------------------------------------------------------

def test_without_a_parameter_the_base_model_gets_the_full_prompt():
    choice = selector(parameter_name=None).current()
    assert (choice.provider, choice.layout, choice.source) == ("offline", "full", "configured")


@pytest.mark.parametrize("value", ["none", "None", " ", "null"])
def test_an_unpublished_placeholder_means_the_base_model(ssm, value):
    put(ssm, value)
    choice = selector(base_provider="openai", base_model="gpt-4o-mini").current()
    assert (choice.provider, choice.model, choice.layout) == ("openai", "gpt-4o-mini", "full")
    assert choice.note == ""


def test_a_published_fine_tune_is_served_with_the_compact_prompt(ssm):
    put(ssm, published())
    choice = selector().current()
    assert (choice.provider, choice.model, choice.layout, choice.source) == (
        "openai", FINE_TUNED, "compact", "published")
    assert choice.build_id == "samples-1"


def test_a_missing_parameter_falls_back_to_the_base_model_and_says_why(ssm):
    choice = selector().current()
    assert (choice.provider, choice.layout) == ("offline", "full")
    assert "does not exist" in choice.note


@pytest.mark.parametrize("value", ["{not json", '["a list"]', '{"model": 42}', '{"model": "ft:x"}'])
def test_a_malformed_value_falls_back_to_the_base_model(ssm, value):
    put(ssm, value)
    choice = selector().current()
    assert (choice.provider, choice.layout) == ("offline", "full")
    assert choice.note.startswith(f"cannot use model parameter {PARAMETER}")


def test_a_model_trained_on_another_prompt_version_is_not_served(ssm):
    put(ssm, published(prompt_version="editor-compact-v0"))
    choice = selector().current()
    assert (choice.provider, choice.layout) == ("offline", "full")
    assert "editor-compact-v0" in choice.note


def test_the_choice_is_cached_for_max_age_seconds():
    reads: list[str] = []
    values = iter(["none", published()])
    now = [1000.0]

    def reader(name: str, max_age: float) -> str:
        reads.append(name)
        return next(values)

    chooser = selector(max_age=60, reader=reader, clock=lambda: now[0])
    assert chooser.current().source == "configured"
    now[0] += 59
    assert chooser.current().source == "configured"  # still cached: SSM not read again
    assert len(reads) == 1
    now[0] += 2
    assert chooser.current().source == "published"
    assert len(reads) == 2


def test_a_failing_read_is_cached_too_so_ssm_is_not_hammered():
    reads: list[int] = []
    now = [0.0]

    def reader(name: str, max_age: float) -> str:
        reads.append(1)
        raise RuntimeError("endpoint unreachable")

    chooser = selector(max_age=30, reader=reader, clock=lambda: now[0])
    for _ in range(5):
        assert chooser.current().source == "configured"
    assert len(reads) == 1


# -- through the API ---------------------------------------------------------------------------------------

def test_the_api_switches_to_a_published_model_and_back(ssm, serve):
    with FakeOpenAIServer(api_key="sk-test") as upstream:
        url = serve(model_parameter=PARAMETER, env={
            "COACH_MODEL_CACHE_SECONDS": "0", "OPENAI_BASE_URL": upstream.base_url,
            "OPENAI_API_KEY": "sk-test",
        })
        put(ssm, "none")
        before = post_story(url, STORY, title="Keeper").json()
        assert (before["model"], before["prompt_version"]) == (OFFLINE_MODEL, PROMPT_VERSION)
        assert upstream.chat_requests() == []

        put(ssm, published())
        tuned = post_story(url, STORY, title="Keeper").json()
        assert (tuned["model"], tuned["prompt_version"]) == (FINE_TUNED, COMPACT_PROMPT_VERSION)
        [request] = upstream.chat_requests()
        assert request.model == FINE_TUNED
        # Exactly the training layout: the same user message the dataset's examples carry.
        expected = build_messages(STORY, "Keeper", layout="compact").messages
        assert expected[0] == {"role": "system", "content": SYSTEM_COMPACT}
        assert request.user_content == expected[1]["content"]
        assert SYSTEM_FULL not in (request.user_content or "")

        put(ssm, "none")  # rolled back
        after = post_story(url, STORY, title="Keeper").json()
        assert after["model"] == OFFLINE_MODEL
        assert len(upstream.chat_requests()) == 1


def test_the_api_reads_ssm_at_most_once_per_cache_period(ssm, serve, monkeypatch):
    from aws_lambda_powertools.utilities.parameters import SSMProvider

    reads: list[str] = []
    real = SSMProvider.get

    def counting(self, name: str, *args, **kwargs):
        reads.append(name)
        return real(self, name, *args, **kwargs)

    monkeypatch.setattr(SSMProvider, "get", counting)
    put(ssm, "none")
    url = serve(model_parameter=PARAMETER, env={"COACH_MODEL_CACHE_SECONDS": "300"})
    for _ in range(3):
        assert post_story(url, STORY).status == 200
    assert reads == [PARAMETER]


def test_coach_serve_reads_the_parameter_from_an_emulator_endpoint(serve):
    from coach.local.emulator import start_server

    server, endpoint = start_server()
    try:
        client = boto3.client("ssm", endpoint_url=endpoint, region_name="us-east-1",
                              aws_access_key_id="local", aws_secret_access_key="local")
        client.put_parameter(Name=PARAMETER, Value=published(), Type="String")
        with FakeOpenAIServer(api_key="sk-test") as upstream:
            url = serve(model_parameter=PARAMETER, endpoint_url=endpoint,
                        env={"OPENAI_BASE_URL": upstream.base_url, "OPENAI_API_KEY": "sk-test"})
            body = post_story(url, STORY).json()
            assert (body["model"], body["prompt_version"]) == (FINE_TUNED, COMPACT_PROMPT_VERSION)
    finally:
        server.stop()


def test_health_warns_when_the_served_fine_tune_shuts_down_within_sixty_days(ssm, serve, monkeypatch):
    from datetime import date

    from coach.domain import retirement
    from tests.api.api_support import http_call

    monkeypatch.setattr(retirement, "today", lambda: date(2026, 12, 2))
    record = json.loads(published())
    put(ssm, json.dumps({**record, "retires_on": "2027-01-14"}))
    with FakeOpenAIServer(api_key="sk-test") as upstream:
        url = serve(model_parameter=PARAMETER, env={"COACH_MODEL_CACHE_SECONDS": "0",
                                                    "OPENAI_BASE_URL": upstream.base_url,
                                                    "OPENAI_API_KEY": "sk-test"})
        health = http_call(url, "GET", "/health").json()
    assert health["status"] == "ok"
    [warning] = health["warnings"]
    assert f"{FINE_TUNED} shuts down on 2027-01-14 (43 days from today)" in warning
