"""`coach build --batch` on this machine against the OpenAI test server's Batch API: the dataset comes from
batches at half the price, failed requests are resubmitted or fall back to synchronous calls, and a re-run
of the same build pays for nothing again."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from tests.batch.helpers import write_stories
from tests.fakes.openai_server import FakeOpenAIServer
from tests.support.stories import critique, marker

REPO = Path(__file__).resolve().parents[2]
KEY = "sk-local-batch"


def coach(*args: str, base_url: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "COACH_", "AWS_ENDPOINT"))}
    env.update(OPENAI_API_KEY=KEY, OPENAI_BASE_URL=base_url)
    return subprocess.run([sys.executable, "-m", "coach", *args], capture_output=True, text=True, env=env,
                          cwd=REPO, timeout=300)


def test_coach_build_batch_against_the_fake(tmp_path):
    source = tmp_path / "stories.jsonl"
    write_stories(source, 30)
    out = tmp_path / "out"
    args = ("build", "--source", str(source), "--provider", "openai", "--model", "gpt-4o-mini", "--batch",
            "--batch-resubmits", "1", "--batch-poll-seconds", "0.05", "--build-id", "local-batch", "--out", str(out))
    with FakeOpenAIServer(api_key=KEY, reply=critique, batch_error_rate=0.1, seed=3) as server:
        built = coach(*args, base_url=server.base_url)
        assert built.returncode == 0, built.stderr
        assert "batches collected" in built.stderr
        manifest = json.loads((out / "manifest.json").read_text())
        assert manifest["counts"]["generated"] == 30 and manifest["counts"]["failed"] == 0
        cost = manifest["cost"]
        assert 0 < cost["generation_batch_usd"] <= cost["generation_usd"] < cost["generation_sync_equivalent_usd"]
        for number in range(30):
            assert server.successes_containing(marker(number)) == 1, number
        assert server.batches and all(b.metadata["coach_batch"].startswith("coach-local-batch-")
                                      for b in server.batches.values())

        paid = server.total_successes
        again = coach(*args, base_url=server.base_url)
        assert again.returncode == 0, again.stderr
        assert server.total_successes == paid  # the re-run reuses every critique


def test_batch_with_the_offline_provider_is_refused_in_one_line(tmp_path):
    refused = subprocess.run([sys.executable, "-m", "coach", "build", "--batch", "--out", str(tmp_path / "o")],
                             capture_output=True, text=True, cwd=REPO, timeout=120)
    assert refused.returncode != 0
    assert "batch" in refused.stderr and "Traceback" not in refused.stderr
    assert len(refused.stderr.strip().splitlines()) == 1
