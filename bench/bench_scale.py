"""Benchmark a whole build at 1,000 and 10,000 stories: wall time, peak memory, and what it asks of AWS per story.

Each size runs `coach build` (direct runtime, offline critic) in its own process on stories made from the
bundled samples (bench_local_build.write_stories). Every operation the build makes on its local adapters is
counted as the AWS request the deployed build makes for it, per stage:

    store get / put / copy / delete / list page      S3 GetObject / PutObject / CopyObject / DeleteObject /
                                                     ListObjectsV2 (1,000 keys a page); a streamed write is
                                                     one PutObject, or a multipart upload of 8 MiB parts
    queue enqueue (10 per call) / receive / delete   SQS SendMessageBatch / ReceiveMessage / DeleteMessage
    tally count / read                               DynamoDB TransactWriteItems (2 writes) / GetItem
    idempotency guard run                            DynamoDB PutItem + UpdateItem (Powertools)

and priced at us-east-1 list prices (below), with one Lambda invocation per SQS batch of 10 and per shard
batch, and the state machine's transitions. The result to look at is the cost per story at 1k vs 10k: it
must not grow.

    .venv/bin/python bench/bench_scale.py [--sizes 1000 10000] [--json]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import resource
import subprocess
import sys
import tempfile
import time
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "shared"))
sys.path.insert(0, str(ROOT))

# USD per request, us-east-1 list prices (December 2026).
PRICES = {
    "s3.GetObject": 0.0004 / 1000, "s3.PutObject": 0.005 / 1000, "s3.CopyObject": 0.005 / 1000,
    "s3.ListObjectsV2": 0.005 / 1000, "s3.DeleteObject": 0.0, "s3.UploadPart": 0.005 / 1000,
    "s3.CreateMultipartUpload": 0.005 / 1000, "s3.CompleteMultipartUpload": 0.005 / 1000,
    "sqs.SendMessageBatch": 0.40 / 1e6, "sqs.ReceiveMessage": 0.40 / 1e6, "sqs.DeleteMessage": 0.40 / 1e6,
    "dynamodb.TransactWriteItems": 2 * 2 * 0.625 / 1e6,  # two items, each written transactionally (2 WRU)
    "dynamodb.GetItem": 0.125 / 1e6, "dynamodb.PutItem": 0.625 / 1e6, "dynamodb.UpdateItem": 0.625 / 1e6,
    "lambda.Invoke": 0.20 / 1e6, "states.Transition": 0.025 / 1000,
}
PART = 8 * 2**20
SQS_BATCH = 10  # the generator's event source batch: one invocation per 10 messages


def _count(calls: Counter[str], stage: list[str], name: str, n: int = 1) -> None:
    calls[f"{stage[0]}|{name}"] += n


def _instrument(calls: Counter[str], stage: list[str]) -> None:
    """Wrap the local adapters so each operation is counted as its AWS request, under the current stage."""
    from coach.adapters.run_tally import MemoryRunTally
    from coach.local import direct_generation, direct_steps
    from coach.local.dir_store import DirectoryStore
    from coach.local.file_ledgers import FileGenerationGuard
    from coach.local.memory_queue import LocalStoryQueue

    def wrap(cls: Any, method: str, name: str | None, per: Any = None) -> None:
        original = getattr(cls, method)

        def counted(self: Any, *args: Any, **kwargs: Any) -> Any:
            result = original(self, *args, **kwargs)
            if name:
                _count(calls, stage, name, per(args, result) if per else 1)
            return result

        setattr(cls, method, counted)

    wrap(DirectoryStore, "get_text", "s3.GetObject")
    wrap(DirectoryStore, "put_text", "s3.PutObject")
    wrap(DirectoryStore, "copy", "s3.CopyObject")
    wrap(DirectoryStore, "delete", "s3.DeleteObject")
    wrap(DirectoryStore, "iter_lines", "s3.GetObject")
    original_list = DirectoryStore.list_keys

    def listed(self: Any, prefix: str) -> Any:
        keys = list(original_list(self, prefix))
        _count(calls, stage, "s3.ListObjectsV2", max(1, math.ceil(len(keys) / 1000)))
        return iter(keys)

    DirectoryStore.list_keys = listed  # type: ignore[method-assign]
    original_writer = DirectoryStore.open_writer

    def writer(self: Any, key: str, *args: Any, **kwargs: Any) -> Any:
        out = original_writer(self, key, *args, **kwargs)
        close = out.close

        def closed() -> Any:
            result = close()
            parts = math.ceil(out.bytes_written / PART)
            if parts <= 1:
                _count(calls, stage, "s3.PutObject")
            else:
                _count(calls, stage, "s3.CreateMultipartUpload")
                _count(calls, stage, "s3.UploadPart", parts)
                _count(calls, stage, "s3.CompleteMultipartUpload")
            return result

        out.close = closed
        return out

    DirectoryStore.open_writer = writer  # type: ignore[method-assign]
    wrap(LocalStoryQueue, "enqueue", "sqs.SendMessageBatch", lambda args, n: math.ceil(n / SQS_BATCH))
    wrap(LocalStoryQueue, "receive", "sqs.ReceiveMessage")
    wrap(LocalStoryQueue, "delete", "sqs.DeleteMessage")
    wrap(MemoryRunTally, "count", "dynamodb.TransactWriteItems")
    wrap(MemoryRunTally, "read", "dynamodb.GetItem")
    wrap(FileGenerationGuard, "run", "dynamodb.PutItem")
    wrap(FileGenerationGuard, "run", "dynamodb.UpdateItem")

    original_call = direct_steps.DirectSteps.__call__

    def step(self: Any, name: str, event: dict[str, Any]) -> Any:
        previous, stage[0] = stage[0], name
        try:
            _count(calls, stage, "lambda.Invoke")
            return original_call(self, name, event)
        finally:
            stage[0] = previous

    direct_steps.DirectSteps.__call__ = step  # type: ignore[method-assign]
    original_run = direct_generation.DirectGenerator.run

    def generate(self: Any, *args: Any, **kwargs: Any) -> Any:
        stage[0] = "generator"
        try:
            return original_run(self, *args, **kwargs)
        finally:
            stage[0] = "flow"

    direct_generation.DirectGenerator.run = generate  # type: ignore[method-assign]


def run_one(source: Path, out: Path) -> dict[str, Any]:
    """One build in this process; the figures as JSON."""
    os.environ.setdefault("POWERTOOLS_METRICS_DISABLED", "true")
    from coach.domain.records import BuildRequest, SourceSpec
    from coach.local.build import LocalBuildOptions
    from coach.local.direct_build import run_direct_build

    calls: Counter[str] = Counter()
    stage = ["flow"]
    _instrument(calls, stage)
    request = BuildRequest(build_id="scale", source=SourceSpec(kind="jsonl", path=str(source)), provider="offline")
    options = LocalBuildOptions(request=request, out=out, concurrency=4)
    started = time.monotonic()
    with open(os.devnull, "w") as quiet:
        result = run_direct_build(options, stream=quiet)
    wall = time.monotonic() - started
    counts = result.manifest.counts
    return {"stories": counts.stories, "accepted": counts.accepted, "train": counts.train_examples,
            "wall_s": round(wall, 2),
            "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
            "calls": dict(calls)}


def summarise(raw: dict[str, Any]) -> dict[str, Any]:
    n = raw["stories"]
    by_stage: dict[str, Counter[str]] = defaultdict(Counter)
    for key, value in raw["calls"].items():
        stage, name = key.split("|", 1)
        by_stage[stage][name] += value
    # The generator runs once per SQS batch of 10; Lambda's event source does the polling (and deleting) for it.
    by_stage["generator"]["lambda.Invoke"] = math.ceil(n / SQS_BATCH)
    for polled in ("sqs.ReceiveMessage", "sqs.DeleteMessage"):
        by_stage["generator"].pop(polled, None)
    # Standard workflow transitions: ~20 for the build's fixed states; each shard batch runs in an Express child.
    by_stage["flow"]["states.Transition"] = 20
    cost = {stage: sum(PRICES.get(name, 0.0) * count for name, count in calls.items())
            for stage, calls in by_stage.items()}
    return {
        "stories": n, "accepted": raw["accepted"], "wall_s": raw["wall_s"], "peak_rss_mb": raw["peak_rss_mb"],
        "ms_per_story": round(1000 * raw["wall_s"] / n, 2),
        "calls_per_story": {stage: round(sum(c.values()) / n, 3) for stage, c in sorted(by_stage.items())},
        "usd_per_1000_stories": round(1000 * sum(cost.values()) / n, 4),
        "usd_per_1000_by_stage": {stage: round(1000 * usd / n, 5) for stage, usd in sorted(cost.items())},
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 10000])
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--one", nargs=2, metavar=("SOURCE", "OUT"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        print(json.dumps(run_one(Path(args.one[0]), Path(args.one[1]))))
        return 0
    from bench.bench_local_build import write_stories

    results = []
    with tempfile.TemporaryDirectory(prefix="coach-scale-") as tmp:
        for n in args.sizes:
            source = Path(tmp) / f"stories-{n}.jsonl"
            write_stories(source, n)
            done = subprocess.run([sys.executable, __file__, "--one", str(source), str(Path(tmp) / f"out-{n}")],
                                  capture_output=True, text=True, check=False)
            if done.returncode != 0:
                print(done.stderr[-2000:], file=sys.stderr)
                return 1
            results.append(summarise(json.loads(done.stdout.strip().splitlines()[-1])))
    if len(results) > 1:
        first, last = results[0], results[-1]
        ratio = {"usd_per_story": round(last["usd_per_1000_stories"] / first["usd_per_1000_stories"], 3),
                 "ms_per_story": round(last["ms_per_story"] / first["ms_per_story"], 3)}
    else:
        ratio = {}
    if args.json:
        print(json.dumps({"sizes": results, "ratio_largest_to_smallest": ratio}, indent=2))
    else:
        for r in results:
            print(f"{r['stories']:>7} stories: {r['wall_s']:.1f} s ({r['ms_per_story']} ms/story), peak RSS "
                  f"{r['peak_rss_mb']} MB, ${r['usd_per_1000_stories']:.4f} of AWS requests per 1,000 stories")
            print(f"         calls per story by stage: {r['calls_per_story']}")
        if ratio:
            print(f"largest / smallest: cost per story x{ratio['usd_per_story']}, "
                  f"time per story x{ratio['ms_per_story']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
