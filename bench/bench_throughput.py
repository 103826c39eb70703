"""Benchmark dataset-build throughput: stories per second against a completion API with a fixed latency.

With C generator invocations at once and a completion that always takes L seconds, no build can do better
than C / L stories per second; the ratio to that ideal is what the pipeline's own work costs (SQS receives
and deletes, S3 reads and writes, the idempotency and budget records, prompt building, the SDK).

It runs a real emulated-AWS local build (`coach build --emulate-aws`: the in-process AWS emulator, the scraper,
the SQS poller with `--concurrency` workers invoking the generator handler, the records kept on disk after
each batch) with the `openai` provider against the OpenAI-compatible test server, started in a separate
process so its threads do not share this process's interpreter lock (a remote API would not). Throughput
counts from the first generator invocation to the last one finishing; the rest of the build (scrape,
validation, assembly) is reported apart.

    .venv/bin/python bench/bench_throughput.py [--latency 1.0] [--concurrency 16] [--stories 320]
        [--batch-size 5] [--budget USD] [--min-ratio 0.8] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from fake_server import KEY, start_server, stop_server

WORDS = ("harbour", "lantern", "kettle", "orchard", "ferry", "letter", "winter", "violin", "ledger", "candle",
         "station", "mirror", "quietly", "waited", "remembered", "laughed", "she", "he", "the", "a", "across",
         "under", "before", "window", "morning", "said", "never", "again")


def write_stories(path: Path, count: int, seed: int = 11) -> None:
    rng = random.Random(seed)
    with path.open("w", encoding="utf-8") as out:
        for number in range(count):
            paragraphs = [" ".join(rng.choice(WORDS) for _ in range(60)).capitalize() + "." for _ in range(4)]
            out.write(json.dumps({"id": f"bench-{number:05d}", "title": f"Piece {number}",
                                  "text": "\n\n".join(paragraphs)}) + "\n")


def start_emulator() -> tuple[subprocess.Popen, str]:
    """moto's server in its own process: what `coach build --endpoint-url` talks to."""
    from coach.local.emulator import free_port

    port = free_port()
    process = subprocess.Popen([str(Path(sys.executable).with_name("moto_server")), "-p", str(port)],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    endpoint = f"http://127.0.0.1:{port}"
    import urllib.request

    for _ in range(100):
        try:
            urllib.request.urlopen(endpoint + "/moto-api/", timeout=1).close()
            return process, endpoint
        except OSError:
            time.sleep(0.1)
    process.kill()
    sys.exit("the separate emulator did not start")


def run(latency: float, concurrency: int, stories: int, batch_size: int, budget: float | None,
        separate_emulator: bool = False) -> dict[str, Any]:
    server, base_url = start_server(latency)
    emulator, endpoint = start_emulator() if separate_emulator else (None, None)
    saved = dict(os.environ)
    try:
        os.environ.update({
            "OPENAI_API_KEY": KEY, "OPENAI_BASE_URL": base_url, "COACH_COMPLETION_TIMEOUT": str(latency + 30),
            "POWERTOOLS_TRACE_DISABLED": "1", "POWERTOOLS_METRICS_DISABLED": "true",
            "POWERTOOLS_SERVICE_NAME": "writing-coach-bench",
        })
        if budget is not None:
            os.environ["COACH_PRICE_TABLE"] = json.dumps({"bench-model": {"input": 0.15, "output": 0.6}})
        from coach.domain.records import BuildRequest
        from coach.errors import CoachError
        from coach.local import poller
        from coach.local.build import LocalBuildOptions, run_local_build
        from coach.local.lambda_runtime import invoke

        window: dict[str, Any] = {"first": None, "last": 0.0, "stories": 0}
        lock = threading.Lock()

        def timed_invoke(name: str, event: dict) -> Any:  # the poller's way into the generator handler
            started = time.perf_counter()
            with lock:
                window["first"] = window["first"] or started
            result = invoke(name, event)
            with lock:
                window["last"] = max(window["last"], time.perf_counter())
                window["stories"] += len(event["Records"]) - len(result.get("batchItemFailures", []))
            return result

        poller.invoke = timed_invoke  # type: ignore[assignment]
        with tempfile.TemporaryDirectory() as tmp:
            source = Path(tmp) / "stories.jsonl"
            write_stories(source, stories)
            request = BuildRequest.model_validate({
                "build_id": "bench-throughput", "source": {"kind": "jsonl", "path": str(source)},
                "provider": "openai", "model": "bench-model", "budget_usd": budget})
            options = LocalBuildOptions(request=request, out=Path(tmp) / "out", endpoint_url=endpoint,
                                        concurrency=concurrency, batch_size=batch_size, emulate_aws=True)
            began = time.perf_counter()
            try:
                run_local_build(options, stream=open(os.devnull, "w"))  # noqa: SIM115
                after = "dataset assembled"
            except CoachError as exc:  # the test server's critiques are near-duplicates; generation is done
                after = f"after generation: {exc.code}"
            whole = time.perf_counter() - began
    finally:
        os.environ.clear()
        os.environ.update(saved)
        stop_server(server, timeout=10)
        if emulator is not None:
            emulator.terminate()
            emulator.wait(timeout=10)
    busy = window["last"] - (window["first"] or window["last"])
    throughput = window["stories"] / busy if busy > 0 else 0.0
    ideal = concurrency / latency
    return {
        "stories": stories, "generated": window["stories"], "latency_s": latency, "concurrency": concurrency,
        "batch_size": batch_size, "budget_usd": budget,
        "emulator": "separate process" if separate_emulator else "in-process",
        "generation_s": round(busy, 3), "build_s": round(whole, 3), "outcome": after,
        "stories_per_s": round(throughput, 3), "ideal_per_s": round(ideal, 3),
        "ratio": round(throughput / ideal, 3),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--latency", type=float, default=1.0, help="seconds every completion takes (L)")
    parser.add_argument("--concurrency", type=int, default=16, help="generator invocations at once (C)")
    parser.add_argument("--stories", type=int, help="stories to generate (default: C x batch size x 4)")
    parser.add_argument("--batch-size", type=int, default=5, help="SQS messages per generator invocation")
    parser.add_argument("--budget", type=float, help="run with a budget, so every story also uses the ledger")
    parser.add_argument("--separate-emulator", action="store_true",
                        help="run the AWS emulator in its own process (as with coach build --endpoint-url)")
    parser.add_argument("--min-ratio", type=float, help="exit 1 when the ratio to C/L is below this")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args()
    stories = args.stories or args.concurrency * args.batch_size * 4
    figures = run(args.latency, args.concurrency, stories, args.batch_size, args.budget,
                  args.separate_emulator)
    if args.json:
        print(json.dumps(figures))
    else:
        print(f"{figures['generated']}/{stories} stories, C={args.concurrency}, L={args.latency:g}s, "
              f"batch size {args.batch_size}{', with budget' if args.budget else ''}, "
              f"AWS emulator {figures['emulator']}")
        print(f"generation: {figures['generation_s']:.2f}s (whole build: {figures['build_s']:.2f}s, "
              f"{figures['outcome']})")
        print(f"throughput: {figures['stories_per_s']:.2f} stories/s; "
              f"ideal C/L = {figures['ideal_per_s']:.2f}; ratio {figures['ratio']:.3f}")
    if args.min_ratio is not None and figures["ratio"] < args.min_ratio:
        sys.exit(1)


if __name__ == "__main__":
    main()
