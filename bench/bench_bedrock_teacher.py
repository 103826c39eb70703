"""The Bedrock teacher under throttling: what a build pays, how many calls were refused, how long it took.

Runs `coach build --provider bedrock` (a subprocess, as a user runs it) on N distinct stories cut from the
bundled samples, against the Bedrock-shaped test server answering ThrottlingException and
ModelNotReadyException on a share of Converse calls. Prints one JSON line per run and a summary: stories,
paid Converse calls (the server counts an answer it wrote), refused calls by code, stories generated and
failed, paid calls per generated story (1.0 means nothing was paid twice) and wall time.

    .venv/bin/python bench/bench_bedrock_teacher.py [--stories 60] [--fault-rate 0.3] [--runs 3]
        [--concurrency 6] [--latency 0.02]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.e2e.test_bedrock_build import critique_of  # noqa: E402  (a distinct critique per story)
from tests.e2e.test_fault_injection import write_stories  # noqa: E402
from tests.fakes.bedrock_server import FakeBedrockServer  # noqa: E402
from tests.support.stories import marker  # noqa: E402


def one_run(stories: int, rate: float, concurrency: int, latency: float, seed: int) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        source = Path(tmp) / "stories.jsonl"
        write_stories(source)
        source.write_text("".join(line + "\n" for line in source.read_text().splitlines()[:stories]))
        faults = {"ThrottlingException": rate / 2, "ModelNotReadyException": rate / 2}
        with FakeBedrockServer(reply=critique_of, fault_rates=faults, latency=latency, seed=seed) as bedrock:
            env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "COACH_", "AWS_"))}
            env.update(AWS_ACCESS_KEY_ID="local", AWS_SECRET_ACCESS_KEY="local", AWS_DEFAULT_REGION="us-east-1",
                       AWS_ENDPOINT_URL_BEDROCK_RUNTIME=bedrock.endpoint_url)
            started = time.monotonic()
            done = subprocess.run(
                [sys.executable, "-m", "coach", "build", "--source", str(source), "--provider", "bedrock",
                 "--build-id", f"bench-bedrock-{seed}", "--out", str(Path(tmp) / "out"),
                 "--concurrency", str(concurrency), "--batch-size", "2"],
                capture_output=True, text=True, env=env, cwd=ROOT, timeout=1800)
            wall = time.monotonic() - started
            paid = [bedrock.successes_containing(marker(n)) for n in range(stories)]
            refused = bedrock.error_counts()
        if done.returncode != 0:
            raise SystemExit(f"build failed: {done.stderr[-2000:]}")
        manifest = json.loads((Path(tmp) / "out" / "manifest.json").read_text())
    counts = manifest["counts"]
    return {"stories": stories, "paid_calls": sum(paid), "max_paid_per_story": max(paid),
            "refused": refused, "generated": counts["generated"], "failed": counts["failed"],
            "paid_per_generated": round(sum(paid) / max(1, counts["generated"]), 4),
            "generation_usd": manifest["cost"]["generation_usd"], "wall_s": round(wall, 2)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--stories", type=int, default=60)
    parser.add_argument("--fault-rate", type=float, default=0.3)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--concurrency", type=int, default=6)
    parser.add_argument("--latency", type=float, default=0.02)
    args = parser.parse_args()
    results = []
    for run in range(args.runs):
        result = one_run(args.stories, args.fault_rate, args.concurrency, args.latency, seed=run + 1)
        results.append(result)
        print(json.dumps(result), flush=True)
    print(json.dumps({"runs": len(results),
                      "median_wall_s": statistics.median(r["wall_s"] for r in results),
                      "median_refused_share": statistics.median(
                          sum(r["refused"].values()) / (sum(r["refused"].values()) + r["paid_calls"])
                          for r in results),
                      "max_paid_per_story": max(r["max_paid_per_story"] for r in results),
                      "generated_min": min(r["generated"] for r in results)}))


if __name__ == "__main__":
    main()
