"""An AWS account alone, end to end and offline: Bedrock teacher -> dataset in both formats -> customization
job -> on-demand deployment -> published -> `coach serve` answers from the deployment with the training layout.

AWS is a moto server shared by every step (so what the build publishes is still there for `coach serve` and
`coach models list`), and Bedrock is the Bedrock-shaped test server, reached through the endpoint variables
boto3 honours.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.request
from pathlib import Path

import boto3
import pytest

from coach.domain.critic import write_critique
from coach.domain.prompt import COMPACT_PROMPT_VERSION, build_messages, extract_story
from coach.local.emulator import MODEL_PARAMETER, start_server
from tests.api.api_support import STORY, post_story
from tests.api.conftest import Servers
from tests.fakes.bedrock_server import FakeBedrockServer

pytestmark = pytest.mark.slow
REPO = Path(__file__).resolve().parents[2]
AWS_KEYS = {"AWS_ACCESS_KEY_ID": "local", "AWS_SECRET_ACCESS_KEY": "local", "AWS_DEFAULT_REGION": "us-east-1"}


def critique_of(body: dict) -> str:
    """A real model writes a different critique for each story; the offline critic stands in for it."""
    messages = [{"role": m["role"], "content": "".join(b.get("text", "") for b in m["content"])}
                for m in body["messages"]]
    title, text = extract_story(messages)
    return write_critique(text, title=title)


def coach(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    full_env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "COACH_", "AWS_"))}
    full_env.update(AWS_KEYS | env)
    return subprocess.run([sys.executable, "-m", "coach", *args], capture_output=True, text=True, env=full_env,
                          cwd=REPO, timeout=300)


@pytest.fixture
def emulator():
    server, endpoint = start_server()
    try:
        yield endpoint
    finally:
        # moto keeps its state per process, not per server: forget this test's buckets and parameters.
        urllib.request.urlopen(urllib.request.Request(f"{endpoint}/moto-api/reset", method="POST"), timeout=10)
        server.stop()


@pytest.mark.parametrize("failure", [None, "job", "deployment"])
def test_bedrock_teacher_to_served_fine_tune(tmp_path, emulator, failure):
    s3 = boto3.client("s3", endpoint_url=emulator, region_name="us-east-1", aws_access_key_id="local",
                      aws_secret_access_key="local")
    with FakeBedrockServer(reply=critique_of, s3_client_factory=lambda: s3,
                           customization_failure="Training data is malformed at line 3." if failure == "job"
                           else None,
                           deployment_failure="Insufficient capacity for the deployment." if failure == "deployment"
                           else None) as bedrock:
        bedrock_env = {"AWS_ENDPOINT_URL_BEDROCK_RUNTIME": bedrock.endpoint_url,
                       "AWS_ENDPOINT_URL_BEDROCK": bedrock.endpoint_url}
        out = tmp_path / "out"
        built = coach("build", "--provider", "bedrock", "--limit", "14", "--build-id", "e2e-bedrock",
                      "--fine-tune", "--fine-tune-backend", "bedrock", "--wait", "--poll-seconds", "0.05",
                      "--endpoint-url", emulator, "--out", str(out), env=bedrock_env)
        manifest = json.loads((out / "manifest.json").read_text())
        fine_tune = manifest["fine_tune"]

        # The teacher: one paid Converse call per story, the editor prompt as system blocks.
        assert bedrock.total_successes >= 14, built.stderr
        assert all(n == 1 for n in bedrock.success_counts.values())
        assert manifest["provider"] == "bedrock" and manifest["model"] == "amazon.nova-pro-v1:0"
        assert manifest["tokens"]["usage_estimated"] is False and manifest["cost"]["generation_usd"] > 0
        # Both formats, line for line the same conversations.
        chat = [json.loads(line) for line in (out / "train.jsonl").read_text().splitlines()]
        conversation = [json.loads(line) for line in (out / "train.bedrock.jsonl").read_text().splitlines()]
        assert len(chat) == len(conversation) >= 8
        assert conversation[0]["schemaVersion"] == "bedrock-conversation-2024"
        assert conversation[0]["system"][0]["text"] == chat[0]["messages"][0]["content"]
        assert conversation[0]["messages"][1]["content"][0]["text"] == chat[0]["messages"][2]["content"]
        [job] = bedrock.calls("CreateModelCustomizationJob")
        assert job.body["baseModelIdentifier"] == "amazon.nova-lite-v1:0:300k"
        assert job.body["trainingDataConfig"]["s3Uri"].endswith("builds/e2e-bedrock/dataset/train.bedrock.jsonl")
        assert job.body["hyperParameters"]["epochCount"] == "2"

        if failure == "job":
            assert built.returncode == 4, built.stderr
            assert fine_tune["status"] == "failed" and fine_tune["error"]["code"] == "bedrock_job_failed"
            assert "Training data is malformed at line 3." in built.stderr
            assert not bedrock.calls("CreateCustomModelDeployment")
            return
        if failure == "deployment":
            assert built.returncode == 4, built.stderr
            assert fine_tune["error"]["code"] == "bedrock_deployment_failed"
            assert "Insufficient capacity" in built.stderr
            listed = coach("models", "list", "--endpoint-url", emulator, "--parameter", MODEL_PARAMETER, env={})
            assert "custom-model-deployment" not in listed.stdout  # nothing published
            return

        assert built.returncode == 0, built.stderr
        deployment = fine_tune["deployment_arn"]
        assert fine_tune["status"] == "succeeded" and fine_tune["fine_tuned_model"] == deployment
        assert ":custom-model-deployment/" in deployment
        assert fine_tune["metrics"].get("train_loss") is not None
        assert (out / "fine-tune-step_metrics.csv").exists()

        # A re-run of the same build starts no second job and no second deployment.
        again = coach("build", "--provider", "bedrock", "--limit", "14", "--build-id", "e2e-bedrock",
                      "--fine-tune", "--fine-tune-backend", "bedrock", "--wait", "--poll-seconds", "0.05",
                      "--endpoint-url", emulator, "--out", str(out), env=bedrock_env)
        assert again.returncode == 0, again.stderr
        assert len(bedrock.calls("CreateModelCustomizationJob")) == 1
        assert len(bedrock.calls("CreateCustomModelDeployment")) == 1

        listed = coach("models", "list", "--endpoint-url", emulator, "--parameter", MODEL_PARAMETER, env={})
        assert listed.returncode == 0 and deployment in listed.stdout

        servers = Servers()
        try:
            url = servers.start(model_parameter=MODEL_PARAMETER, endpoint_url=emulator,
                                env={**bedrock_env, "COACH_PROVIDER": "bedrock"})
            answer = post_story(url, STORY, title="The Keeper")
        finally:
            servers.close()
        assert answer.status == 200, answer.text
        body = answer.json()
        assert body["model"] == deployment and body["prompt_version"] == COMPACT_PROMPT_VERSION
        sent = bedrock.converse_requests()[-1]
        assert sent.model_id == deployment
        trained = build_messages(STORY, "The Keeper", layout="compact")
        assert sent.system == trained.messages[0]["content"]
        assert sent.messages[0]["content"][0]["text"] == trained.messages[1]["content"]
