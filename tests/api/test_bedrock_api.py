"""The critique API and `coach critique` with the bedrock provider: the base model gets the full editor
prompt through Converse, and Bedrock's refusals become the API's errors."""

from __future__ import annotations

import json

import pytest

from coach.domain.prompt import SYSTEM_FULL, build_messages
from tests.api.api_support import STORY, assert_error, post_story
from tests.api.test_critique_cli import run_cli
from tests.fakes.bedrock_server import FakeBedrockServer, Fault


@pytest.fixture
def bedrock(monkeypatch):
    for name, value in {"AWS_ACCESS_KEY_ID": "local", "AWS_SECRET_ACCESS_KEY": "local",
                        "AWS_DEFAULT_REGION": "us-east-1"}.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    with FakeBedrockServer() as fake:
        monkeypatch.setenv("AWS_ENDPOINT_URL_BEDROCK_RUNTIME", fake.endpoint_url)
        yield fake


def test_the_base_model_answers_with_the_full_prompt(serve, bedrock):
    url = serve(provider="bedrock", env={"COACH_MODEL": None})
    answer = post_story(url, STORY, title="Keeper")
    assert answer.status == 200, answer.text
    assert answer.json()["model"] == "amazon.nova-pro-v1:0"
    sent = bedrock.converse_requests()[-1]
    assert sent.system == SYSTEM_FULL
    assert sent.messages[0]["content"][0]["text"] == build_messages(STORY, "Keeper").messages[1]["content"]


@pytest.mark.parametrize(("fault", "status", "code"), [
    (Fault("ThrottlingException"), 429, "upstream_rate_limited"),
    (Fault("ServiceUnavailableException"), 503, "bedrock_unavailable"),
    (Fault("AccessDeniedException"), 502, "bedrock_access_denied"),
])
def test_bedrock_refusals_become_api_errors(serve, bedrock, fault, status, code):
    url = serve(provider="bedrock", model="amazon.nova-lite-v1:0")
    bedrock.push_script(fault)
    error = assert_error(post_story(url, STORY), status, code)
    assert "Traceback" not in json.dumps(error)
    assert len(bedrock.converse_requests()) == 1  # a waiting client is answered at once, not after retries


def test_coach_critique_with_bedrock(capsys, tmp_path, bedrock):
    story = tmp_path / "keeper.md"
    story.write_text(STORY)
    code, out, err = run_cli(capsys, "critique", str(story), "--provider", "bedrock", "--json")
    assert code == 0, err
    assert json.loads(out)["model"] == "amazon.nova-pro-v1:0"
    assert len(bedrock.converse_requests()) == 1
