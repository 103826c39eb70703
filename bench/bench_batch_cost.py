"""Cost per accepted example: the same 60-story build generated synchronously and through provider batches.

Each build runs through the real handlers (checkinput, scraper, generator or the batch steps, progress,
validator, assembler) against in-process AWS (moto) and the test servers (`tests/fakes`): OpenAI's Batch API
and Bedrock batch inference. The teacher's critiques are the offline critic's (deterministic per story), so
both modes get the same critiques and the validator accepts the same ones; what differs is the price each was
paid at, and what faults cost. Faults injected, both modes alike in rate:
  - synchronous: 10% of completion calls answered 429/500 (retried; a failed call is not billed);
  - batch: 10% of requests in the batch's error file, and the first batch file expiring half way
    (files of 20 requests, at most one resubmission, then the synchronous fallback).
Cost comes from the price table (`coach.domain.pricing`) applied to the usage each fake reports; the figure
per accepted example is the manifest's generation cost divided by its accepted count.

    .venv/bin/python bench/bench_batch_cost.py [--stories 60] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from contextlib import ExitStack
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "shared"))
os.environ.update({"AWS_ACCESS_KEY_ID": "bench", "AWS_SECRET_ACCESS_KEY": "bench", "AWS_DEFAULT_REGION": "us-east-1",
                   "POWERTOOLS_TRACE_DISABLED": "1", "POWERTOOLS_METRICS_DISABLED": "true",
                   "POWERTOOLS_LOG_LEVEL": "ERROR", "POWERTOOLS_SERVICE_NAME": "bench"})
for leaked in ("AWS_PROFILE", "AWS_ENDPOINT_URL", "OPENAI_API_KEY", "OPENAI_BASE_URL"):
    os.environ.pop(leaked, None)

import boto3  # noqa: E402
from moto import mock_aws  # noqa: E402

from coach import runtime  # noqa: E402
from coach.domain.records import BuildManifest  # noqa: E402
from coach.local.emulator import provision  # noqa: E402
from coach.local.lambda_runtime import invoke  # noqa: E402
from coach.local.shard_map import run_shard_map  # noqa: E402
from tests.batch.helpers import drain_queue, run_batches, store, write_stories  # noqa: E402
from tests.fakes.bedrock_server import FakeBedrockServer  # noqa: E402
from tests.fakes.openai_server import FakeOpenAIServer  # noqa: E402
from tests.support.stories import critique  # noqa: E402

MODELS = {"openai": "gpt-4o-mini", "bedrock": "amazon.nova-lite-v1:0"}


def _chat(body: dict) -> list[dict]:
    system = [{"role": "system", "content": b["text"]} for b in body.get("system") or []]
    return system + [{"role": m["role"], "content": "".join(b.get("text", "") for b in m["content"])}
                     for m in body.get("messages") or []]


def one_build(provider: str, mode: str, stories: int, workdir: Path) -> dict[str, Any]:
    saved = dict(os.environ)
    with ExitStack() as stack, mock_aws():
        runtime.reset()
        aws = provision(None)
        os.environ.update(aws.env())
        os.environ["COACH_BATCH_MAX_RECORDS"] = "20"
        if provider == "openai":
            fake = stack.enter_context(FakeOpenAIServer(
                api_key="sk-bench", reply=critique, seed=11, retry_after=0.01,
                failure_rate=0.10 if mode == "sync" else 0.0,
                batch_error_rate=0.10, batch_expire_next=1))
            os.environ.update(OPENAI_API_KEY="sk-bench", OPENAI_BASE_URL=fake.base_url)
        else:
            s3 = boto3.client("s3")
            fake = stack.enter_context(FakeBedrockServer(
                reply=lambda body: critique(_chat(body)), s3_client_factory=lambda: s3, seed=11,
                fault_rates={"ThrottlingException": 0.05, "ServiceUnavailableException": 0.05} if mode == "sync"
                else None, min_batch_records=10, batch_record_error_rate=0.10, batch_expire_next=1))
            os.environ.update(AWS_ENDPOINT_URL_BEDROCK=fake.endpoint_url,
                              AWS_ENDPOINT_URL_BEDROCK_RUNTIME=fake.endpoint_url,
                              COACH_BEDROCK_BATCH_ROLE_ARN="arn:aws:iam::123456789012:role/bench-batch",
                              COACH_BATCH_MIN_RECORDS="10")
        source = workdir / f"{provider}-{mode}.jsonl"
        write_stories(source, stories)
        build_id = f"bench-{provider}-{mode}"
        request = invoke("checkinput", {
            "build_id": build_id, "source": {"kind": "jsonl", "path": str(source)}, "provider": provider,
            "model": MODELS[provider], "generation": mode, "batch": {"max_resubmits": 1}})
        scrape = invoke("scraper", {"request": request})
        fallback = 0
        if mode == "batch":
            fallback = sum(s.get("fallback", 0) for s in run_batches(build_id))
        drain_queue(aws)
        progress = invoke("progress", {"build_id": build_id, "enqueued": scrape["enqueued"]})
        shards = run_shard_map(build_id, scrape["run_id"], store=store(aws),
                               call=lambda event: invoke("shard", event))
        assembled = invoke("assembler", {"request": request, "scrape": scrape, "shards": shards})
        manifest = store(aws).get_model(assembled["manifest_key"], BuildManifest)
        paid_twice = sum(1 for n in fake.success_counts.values() if n > 1)
        runtime.reset()
    os.environ.clear()
    os.environ.update(saved)
    cost, accepted = manifest.cost.generation_usd, manifest.counts.accepted
    return {"provider": provider, "model": MODELS[provider], "mode": mode, "stories": stories,
            "generated": manifest.counts.generated, "failed": manifest.counts.failed, "accepted": accepted,
            "fallback_to_sync": fallback, "progress_done": progress["done"], "paid_twice": paid_twice,
            "cost_usd": cost, "sync_equivalent_usd": manifest.cost.generation_sync_equivalent_usd,
            "usd_per_accepted": cost / accepted if accepted else None}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--stories", type=int, default=60)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for provider in ("openai", "bedrock"):
            for mode in ("sync", "batch"):
                rows.append(one_build(provider, mode, args.stories, Path(tmp)))
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    print(f"{'provider/model':34} {'mode':6} {'gen':>4} {'acc':>4} {'fb':>3} {'cost USD':>10} "
          f"{'USD/accepted':>13} {'sync-equiv USD':>15} {'paid 2x':>7}")
    for row in rows:
        print(f"{row['provider'] + '/' + row['model']:34} {row['mode']:6} {row['generated']:>4} {row['accepted']:>4} "
              f"{row['fallback_to_sync']:>3} {row['cost_usd']:>10.6f} {row['usd_per_accepted'] or 0:>13.8f} "
              f"{row['sync_equivalent_usd']:>15.6f} {row['paid_twice']:>7}")
    for provider in ("openai", "bedrock"):
        sync, batch = (r for r in rows if r["provider"] == provider)
        if sync["usd_per_accepted"] and batch["usd_per_accepted"]:
            print(f"{provider}: batch / sync cost per accepted example = "
                  f"{batch['usd_per_accepted'] / sync['usd_per_accepted']:.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
