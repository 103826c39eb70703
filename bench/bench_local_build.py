"""Benchmark the local build: the direct runtime against `--emulate-aws`, its growth with size, its throughput.

Stories are made from the bundled samples: story i is sample (i mod 26) with its own id, a numbered title
and one varied sentence, so every story is distinct and the offline critic has real text to read.

    .venv/bin/python bench/bench_local_build.py compare [--stories 400] [--runs 5]
        `coach build` on the same stories, direct then --emulate-aws, alternately; median wall time of each
        whole command and the ratio (emulated / direct) pair by pair.
    .venv/bin/python bench/bench_local_build.py scale [--sizes 1000 10000] [--runs 3]
        direct builds of each size: median milliseconds per story, and the ratio of the largest to the smallest.
    .venv/bin/python bench/bench_local_build.py throughput [--latency 0] [--concurrency 16] [--stories 2000]
        a direct build with the openai provider against the OpenAI-compatible test server (its own process,
        answering after `latency` seconds with the offline critic's critique of each story's sample): stories per
        second over the generation phase, and its ratio to concurrency / latency.
    .venv/bin/python bench/bench_local_build.py stories --count N --path FILE    write the stories only
    .venv/bin/python bench/bench_local_build.py serve [--latency L]              run the test server only

Add --json for machine-readable output.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from fake_server import KEY, start_server, stop_server

ROOT = Path(__file__).resolve().parents[1]
SAMPLES = ROOT / "shared" / "coach" / "samples"
PLACES = ("harbour", "station", "orchard", "ferry landing", "library", "market", "bridge", "attic", "garden")
TIMES = ("at dawn", "after the rain", "before supper", "in the long evening", "on the last Sunday", "at noon")


def write_stories(path: Path, count: int, seed: int = 14) -> None:
    """`count` distinct stories from the bundled samples, one JSON object a line."""
    samples = []
    for file in sorted(SAMPLES.glob("*.md")):
        lines = file.read_text(encoding="utf-8").split("\n")
        title = lines[0].lstrip("# ").strip() if lines[0].startswith("#") else file.stem.replace("-", " ")
        samples.append((title, "\n".join(lines[1:]).strip()))
    rng = random.Random(seed)
    with path.open("w", encoding="utf-8") as out:
        for number in range(count):
            title, text = samples[number % len(samples)]
            variation = (f"Someone waited by the {rng.choice(PLACES)} {rng.choice(TIMES)}, counting to "
                         f"{number + 3}.")
            paragraphs = text.split("\n\n")
            at = 1 + number % max(1, len(paragraphs) - 1)
            paragraphs.insert(at, variation)
            out.write(json.dumps({"id": f"bench-{number:05d}", "title": f"{title} ({number})",
                                  "text": "\n\n".join(paragraphs)}) + "\n")


def coach_build(source: Path, out: Path, *extra: str, env: dict[str, str] | None = None) -> float:
    """One whole `coach build` command; returns its wall time in seconds."""
    full_env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "COACH_", "AWS_ENDPOINT"))}
    full_env.update(env or {})
    began = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "coach", "build", "--source", str(source), "--out", str(out),
                           "--build-id", "bench", *extra], capture_output=True, text=True, env=full_env, cwd=ROOT)
    elapsed = time.perf_counter() - began
    if done.returncode not in (0, 1):  # 1: the dataset was refused after generation (near-duplicate critiques)
        sys.exit(f"coach build failed ({done.returncode}): {done.stderr.strip()[-500:]}")
    return elapsed


def compare(stories: int, runs: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        source = Path(tmp) / "stories.jsonl"
        write_stories(source, stories)
        direct: list[float] = []
        emulated: list[float] = []
        for run in range(runs + 1):  # the first pair warms the file cache and is not counted
            for times, extra in ((direct, ()), (emulated, ("--emulate-aws",))):
                out = Path(tmp) / "out"
                shutil.rmtree(out, ignore_errors=True)
                elapsed = coach_build(source, out, *extra)
                if run:
                    times.append(elapsed)
    ratios = [e / d for d, e in zip(direct, emulated, strict=True)]
    return {"stories": stories, "runs": runs, "direct_median_s": statistics.median(direct),
            "emulated_median_s": statistics.median(emulated), "ratio_median": statistics.median(ratios),
            "ratio_min": min(ratios), "ratio_max": max(ratios)}


def scale(sizes: list[int], runs: int) -> dict[str, Any]:
    per_story: dict[int, float] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for size in sizes:
            source = Path(tmp) / f"stories-{size}.jsonl"
            write_stories(source, size)
            times = []
            for _ in range(runs):
                out = Path(tmp) / "out"
                shutil.rmtree(out, ignore_errors=True)
                times.append(coach_build(source, out))
            per_story[size] = statistics.median(times) / size * 1000
    smallest, largest = min(sizes), max(sizes)
    return {"runs": runs, "ms_per_story": per_story,
            "ratio_largest_to_smallest": per_story[largest] / per_story[smallest]}


def throughput(latency: float, concurrency: int, stories: int) -> dict[str, Any]:
    server, base_url = start_server(latency, critic=True)
    saved = dict(os.environ)
    try:
        os.environ.update({"OPENAI_API_KEY": KEY, "OPENAI_BASE_URL": base_url,
                           "COACH_COMPLETION_TIMEOUT": str(latency + 30)})
        from coach.domain.records import BuildRequest
        from coach.errors import CoachError
        from coach.local import direct_generation
        from coach.local.build import LocalBuildOptions, run_local_build

        window: dict[str, float] = {}
        original_run = direct_generation.DirectGenerator.run

        def timed_run(self: Any, **kwargs: Any) -> bool:  # the generation phase only
            window["began"] = time.perf_counter()
            try:
                return original_run(self, **kwargs)
            finally:
                window["ended"] = time.perf_counter()
                window["stories"] = self.stats.messages - self.stats.failures

        direct_generation.DirectGenerator.run = timed_run  # type: ignore[method-assign]
        with tempfile.TemporaryDirectory() as tmp:
            source = Path(tmp) / "stories.jsonl"
            write_stories(source, stories)
            request = BuildRequest.model_validate({
                "build_id": "bench-throughput", "source": {"kind": "jsonl", "path": str(source)},
                "provider": "openai", "model": "gpt-4o-mini"})
            options = LocalBuildOptions(request=request, out=Path(tmp) / "out", concurrency=concurrency)
            began = time.perf_counter()
            try:
                with open(os.devnull, "w") as quiet:
                    run_local_build(options, stream=quiet)
                after = "dataset assembled"
            except CoachError as exc:
                after = f"after generation: {exc.code}"
            whole = time.perf_counter() - began
    finally:
        os.environ.clear()
        os.environ.update(saved)
        stop_server(server)
    generation = window["ended"] - window["began"]
    rate = window["stories"] / generation
    ideal = concurrency / latency if latency > 0 else None
    return {"latency_s": latency, "concurrency": concurrency, "stories": int(window["stories"]),
            "generation_s": generation, "stories_per_s": rate, "ideal_per_s": ideal,
            "ratio_to_ideal": rate / ideal if ideal else None, "whole_build_s": whole, "end": after}


def serve(latency: float) -> None:
    import signal

    signal.signal(signal.SIGTERM, signal.default_int_handler)  # kill stops the test server too, as Ctrl-C does
    signal.signal(signal.SIGINT, signal.default_int_handler)
    server, base_url = start_server(latency, critic=True)
    print(base_url, flush=True)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        pass
    finally:
        stop_server(server)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="mode", required=True)
    one = sub.add_parser("compare")
    one.add_argument("--stories", type=int, default=400)
    one.add_argument("--runs", type=int, default=5)
    two = sub.add_parser("scale")
    two.add_argument("--sizes", type=int, nargs="+", default=[1000, 10000])
    two.add_argument("--runs", type=int, default=3)
    three = sub.add_parser("throughput")
    three.add_argument("--latency", type=float, default=0.0)
    three.add_argument("--concurrency", type=int, default=16)
    three.add_argument("--stories", type=int, default=2000)
    four = sub.add_parser("stories")
    four.add_argument("--count", type=int, required=True)
    four.add_argument("--path", type=Path, required=True)
    five = sub.add_parser("serve")
    five.add_argument("--latency", type=float, default=0.0)
    for p in (one, two, three):
        p.add_argument("--json", action="store_true")
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT / "shared"))
    if args.mode == "stories":
        write_stories(args.path, args.count)
        return 0
    if args.mode == "serve":
        serve(args.latency)
        return 0
    if args.mode == "compare":
        result = compare(args.stories, args.runs)
    elif args.mode == "scale":
        result = scale(args.sizes, args.runs)
    else:
        result = throughput(args.latency, args.concurrency, args.stories)
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        for key, value in result.items():
            print(f"{key:28} {value:.3f}" if isinstance(value, float) else f"{key:28} {value}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
