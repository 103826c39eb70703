"""`coach serve` in a working folder serves the model its local builds published, with no AWS at all."""

from __future__ import annotations

from coach.adapters.model_registry import ModelRegistry, PublishedModel
from coach.api.model_choice import ModelSelector
from coach.cli.serve_cmd import use_local_registry
from coach.domain.prompt import COMPACT_PROMPT_VERSION
from coach.local.parameter_file import MODEL_PARAMETER, ParameterFile


def test_serve_uses_the_folders_registry_file_when_no_endpoint_is_given(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    for name in ("COACH_MODEL_REGISTRY_FILE", "COACH_LOCAL_REGISTRY", "COACH_MODEL_PARAMETER", "AWS_ENDPOINT_URL"):
        monkeypatch.delenv(name, raising=False)
    env: dict[str, str] = {}
    use_local_registry(env)
    assert env == {}  # nothing published here yet: the configured base model is served
    ModelRegistry(ParameterFile(), MODEL_PARAMETER).publish(PublishedModel(
        model="ft:gpt-4o-mini:local::abc", prompt_version=COMPACT_PROMPT_VERSION, build_id="b1", trained_at="t"))
    use_local_registry(env)
    assert env["COACH_MODEL_PARAMETER"] == MODEL_PARAMETER
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    choice = ModelSelector(parameter_name=MODEL_PARAMETER, base_provider="openai", base_model="gpt-4o-mini",
                           max_age=0).current()
    assert (choice.model, choice.source, choice.build_id) == ("ft:gpt-4o-mini:local::abc", "published", "b1")


def test_an_emulator_endpoint_keeps_serve_on_the_emulators_parameter(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    ModelRegistry(ParameterFile(), MODEL_PARAMETER).publish(PublishedModel(
        model="ft:x", prompt_version=COMPACT_PROMPT_VERSION, build_id="b1", trained_at="t"))
    env = {"AWS_ENDPOINT_URL": "http://127.0.0.1:5000"}
    use_local_registry(env)
    assert "COACH_MODEL_REGISTRY_FILE" not in env
