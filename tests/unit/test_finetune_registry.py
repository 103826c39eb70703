"""The published-model registry in SSM, and `coach models` list / rollback."""

from __future__ import annotations

import argparse
import io
import json

import boto3
import pytest
from moto import mock_aws

from coach.adapters.model_registry import ModelRegistry, PublishedModel, RegistryError, parse_published
from coach.cli import models_cmd

PARAMETER = "/coach/test-model"


@pytest.fixture
def ssm(monkeypatch):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    monkeypatch.setenv("COACH_MODEL_PARAMETER", PARAMETER)
    with mock_aws():
        yield boto3.client("ssm", region_name="us-east-1")


def _model(n: int) -> PublishedModel:
    return PublishedModel(model=f"ft:gpt-4o-mini-2024-07-18:org:writing-coach:m{n}", prompt_version="editor-compact-v1",
                          build_id=f"build-{n}", trained_at=f"2025-01-0{n}T00:00:00Z")


def _cli(*argv: str) -> str:
    parser = argparse.ArgumentParser()
    models_cmd.add_arguments(parser)
    out = io.StringIO()
    assert models_cmd.run(parser.parse_args(list(argv)), out=out) == 0
    return out.getvalue()


def test_publish_writes_exactly_what_the_api_reads(ssm):
    registry = ModelRegistry(ssm, PARAMETER)
    assert registry.current() is None and registry.published() == []
    registry.publish(_model(1))
    value = json.loads(ssm.get_parameter(Name=PARAMETER)["Parameter"]["Value"])
    assert value == {"model": _model(1).model, "prompt_version": "editor-compact-v1", "build_id": "build-1",
                     "trained_at": "2025-01-01T00:00:00Z", "provider": "openai"}
    assert registry.current() == _model(1)


def test_publishing_the_served_model_again_writes_no_new_version(ssm):
    registry = ModelRegistry(ssm, PARAMETER)
    assert registry.publish(_model(1)) == 1
    assert registry.publish(_model(1)) is None
    assert len(registry.history()) == 1


def test_a_placeholder_value_means_the_base_model(ssm):
    ssm.put_parameter(Name=PARAMETER, Value="none", Type="String", Description="created by the stack")
    registry = ModelRegistry(ssm, PARAMETER)
    assert registry.current() is None
    registry.publish(_model(1))
    assert [e.published.model for e in registry.published()] == [_model(1).model]
    assert parse_published("{not json") is None


def test_rollback_steps_back_through_publications_not_through_rollbacks(ssm):
    registry = ModelRegistry(ssm, PARAMETER)
    for n in (1, 2, 3):
        registry.publish(_model(n))
    assert registry.rollback().model == _model(2).model
    # A second rollback goes further back; it does not undo the first.
    assert registry.rollback(steps=1).model == _model(1).model
    assert registry.current() == _model(1)
    assert [e.published.model for e in registry.published()] == [_model(n).model for n in (3, 2, 1)]
    assert [e.action for e in registry.history()][:2] == ["rollback", "rollback"]


def test_rollback_to_a_named_model_and_the_refusals(ssm):
    registry = ModelRegistry(ssm, PARAMETER)
    with pytest.raises(RegistryError) as none_yet:
        registry.rollback()
    assert none_yet.value.code == "no_published_model"
    for n in (1, 2, 3):
        registry.publish(_model(n))
    assert registry.rollback(to_model=_model(1).model) == _model(1)
    with pytest.raises(RegistryError) as unknown:
        registry.rollback(to_model="ft:gpt-4o-mini:org:x:never")
    assert unknown.value.code == "rollback_target_not_found"
    with pytest.raises(RegistryError) as too_far:
        registry.rollback(steps=5)
    assert too_far.value.code == "rollback_target_not_found"
    with pytest.raises(RegistryError) as same:
        registry.rollback(to_model=_model(1).model)
    assert same.value.code == "already_current"


def test_coach_models_lists_published_models_and_marks_the_served_one(ssm):
    assert "no fine-tuned model has been published" in _cli("list")
    registry = ModelRegistry(ssm, PARAMETER)
    for n in (1, 2):
        registry.publish(_model(n))
    table = _cli()
    lines = table.splitlines()
    assert lines[1].startswith("*") and _model(2).model in lines[1]
    assert _model(1).model in lines[2] and not lines[2].startswith("*")
    listed = json.loads(_cli("list", "--json"))
    assert listed["current"]["model"] == _model(2).model
    assert [p["model"] for p in listed["published"]] == [_model(2).model, _model(1).model]


def test_coach_models_rollback_changes_the_served_model(ssm):
    registry = ModelRegistry(ssm, PARAMETER)
    for n in (1, 2, 3):
        registry.publish(_model(n))
    assert _model(2).model in _cli("rollback")
    assert _model(1).model in _cli("rollback", "--to", _model(1).model)
    assert registry.current() == _model(1)


def test_coach_models_refuses_contradictory_options(ssm):
    from coach.errors import InputError

    with pytest.raises(InputError):
        _cli("rollback", "--to", "m", "--steps", "2")
    with pytest.raises(InputError):
        _cli("list", "--steps", "1")


def test_coach_models_talks_to_an_emulator_through_endpoint_url(monkeypatch):
    from moto.server import ThreadedMotoServer

    from coach.local.emulator import free_port

    for name in ("AWS_ENDPOINT_URL", "AWS_PROFILE", "COACH_MODEL_PARAMETER", "AWS_ACCESS_KEY_ID",
                 "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.delenv(name, raising=False)
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        url = f"http://127.0.0.1:{port}"
        client = boto3.client("ssm", endpoint_url=url, region_name="us-east-1", aws_access_key_id="x",
                              aws_secret_access_key="x")
        ModelRegistry(client, "/coach/critique-model").publish(_model(4))
        out = _cli("list", "--endpoint-url", url)
        assert _model(4).model in out and "/coach/critique-model" in out
    finally:
        server.stop()


def test_coach_models_list_shows_provider_and_shutdown_and_warns_within_sixty_days(ssm, monkeypatch):
    from datetime import date

    from coach.domain import retirement

    monkeypatch.setattr(retirement, "today", lambda: date(2026, 12, 2))
    registry = ModelRegistry(ssm, PARAMETER)
    registry.publish(_model(1).model_copy(update={"retires_on": "2027-01-14"}))
    deployment = "arn:aws:bedrock:us-east-1:123456789012:custom-model-deployment/abc123"
    registry.publish(PublishedModel(model=deployment, prompt_version="editor-compact-v1", build_id="build-9",
                                    trained_at="2026-12-01T00:00:00Z", provider="bedrock",
                                    base_model="amazon.nova-lite-v1:0:300k"))
    table = _cli()
    header, newest, oldest = table.splitlines()[:3]
    assert "provider" in header and "shuts down" in header
    cells = header.split()
    assert cells[cells.index("shuts") - 1] == "published"
    assert deployment in newest and " bedrock " in newest and "2027" not in newest
    assert " openai " in oldest and "2027-01-14" in oldest
    assert (f"warning: {_model(1).model} shuts down on 2027-01-14 (43 days from today)") in table
