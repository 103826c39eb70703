"""60 stories through a Bedrock that throttles or is not ready on about 30% of Converse calls: every story
ends with exactly one paid call and a critique, or with a recorded failure and its cause; nothing is paid
twice and no failure is written as feedback.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from tests.e2e.test_bedrock_build import critique_of
from tests.e2e.test_fault_injection import write_stories
from tests.fakes.bedrock_server import FakeBedrockServer
from tests.support.stories import marker

pytestmark = pytest.mark.slow
REPO = Path(__file__).resolve().parents[2]
STORIES = 60


def test_throttled_and_not_ready_bedrock_pays_once_per_story(tmp_path):
    source = tmp_path / "stories.jsonl"
    ids = write_stories(source)[:STORIES]
    source.write_text("".join(line + "\n" for line in source.read_text().splitlines()[:STORIES]))
    rates = {"ThrottlingException": 0.15, "ModelNotReadyException": 0.15}
    with FakeBedrockServer(reply=critique_of, fault_rates=rates, latency=(0.0, 0.05), seed=11) as bedrock:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "COACH_", "AWS_"))}
        env.update(AWS_ACCESS_KEY_ID="local", AWS_SECRET_ACCESS_KEY="local", AWS_DEFAULT_REGION="us-east-1",
                   AWS_ENDPOINT_URL_BEDROCK_RUNTIME=bedrock.endpoint_url)
        out = tmp_path / "out"
        result = subprocess.run(
            [sys.executable, "-m", "coach", "build", "--source", str(source), "--provider", "bedrock",
             "--build-id", "bedrock-faults", "--out", str(out), "--concurrency", "6"],
            capture_output=True, text=True, env=env, cwd=REPO, timeout=600)
        errors = bedrock.error_counts()
        paid = {number: bedrock.successes_containing(marker(number)) for number in range(STORIES)}

    assert result.returncode == 0, result.stderr
    # The faults really happened, at about the rate asked for.
    assert errors["ThrottlingException"] > 5 and errors["ModelNotReadyException"] > 5
    records = {}
    for path in (out / ".state" / "builds" / "bedrock-faults" / "feedback").glob("*.json"):
        record = json.loads(path.read_text())
        records[record["story_id"]] = record
    assert set(records) == set(ids), "every story ends with exactly one record"
    statuses = Counter(r["status"] for r in records.values())
    for number, story_id in enumerate(ids):
        record = records[story_id]
        if record["status"] == "generated":
            assert paid[number] == 1, f"{story_id} was paid for {paid[number]} times"
            assert record["feedback"] and record["provider"] == "bedrock"
            assert record["model"] == "amazon.nova-pro-v1:0" and not record["usage"]["estimated"]
        else:
            assert record["status"] == "failed" and record["feedback"] is None
            assert record["error"]["code"] in ("bedrock_throttled", "bedrock_model_not_ready"), record["error"]
            assert paid[number] == 0
    assert statuses["generated"] >= STORIES - 3  # retries get nearly everything through
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["counts"]["generated"] == statuses["generated"]
    assert manifest["counts"]["failed"] == statuses["failed"]
    assert abs(manifest["cost"]["generation_usd"] - sum(r["cost_usd"] for r in records.values())) < 1e-6
