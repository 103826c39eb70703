"""A console click gets the deployment's teacher and fine-tune choices; a request's own choices win."""

from __future__ import annotations

import pytest

from coach.domain.build_defaults import DeploymentDefaults, FineTuningDisabled, with_defaults
from coach.domain.records import BuildRequest

BEDROCK = DeploymentDefaults(teacher_provider="bedrock", teacher_model="amazon.nova-pro-v1:0",
                             fine_tune_backend="bedrock", fine_tune_base_model="amazon.nova-micro-v1:0:128k")


def test_a_bare_request_gets_the_deployments_teacher_and_fine_tune():
    request = BuildRequest.model_validate(with_defaults({"build_id": "b1", "fine_tune": {"enabled": True}}, BEDROCK))
    assert (request.provider, request.model) == ("bedrock", "amazon.nova-pro-v1:0")
    assert request.fine_tune.backend == "bedrock"
    assert request.fine_tune.base_model == "amazon.nova-micro-v1:0:128k"


def test_the_requests_own_choices_win():
    event = {"build_id": "b1", "provider": "openai", "model": "my-llama",
             "fine_tune": {"enabled": True, "backend": "openai", "base_model": "gpt-4.1-mini-2025-04-14"}}
    request = BuildRequest.model_validate(with_defaults(event, BEDROCK))
    assert (request.provider, request.model) == ("openai", "my-llama")
    assert (request.fine_tune.backend, request.fine_tune.base_model) == ("openai", "gpt-4.1-mini-2025-04-14")
    # The deployment's Bedrock base model never lands on an OpenAI fine-tune.
    other = with_defaults({"build_id": "b1", "fine_tune": {"enabled": True, "backend": "openai"}}, BEDROCK)
    assert "base_model" not in other["fine_tune"]


def test_the_offline_teacher_gets_no_model_and_the_input_is_not_changed():
    event = {"build_id": "b1"}
    filled = with_defaults(event, DeploymentDefaults(teacher_provider="offline", teacher_model="amazon.nova-pro-v1:0"))
    assert filled == {"build_id": "b1", "provider": "offline"} and event == {"build_id": "b1"}


def test_a_deployment_without_fine_tuning_refuses_a_fine_tune_request():
    off = DeploymentDefaults(fine_tune_backend="none")
    with pytest.raises(FineTuningDisabled, match="FineTuneBackend none"):
        with_defaults({"build_id": "b1", "fine_tune": {"enabled": True}}, off)
    assert with_defaults({"build_id": "b1", "fine_tune": {"enabled": False}}, off)["fine_tune"] == {"enabled": False}
