"""Benchmark `coach eval` on 200 stories with the offline critic (the target is under 30 seconds).

The stories are the bundled samples, repeated with their paragraphs rotated so every file is a distinct
story of realistic length. Each run is the real command in a fresh process
(`python -m coach eval --stories DIR --model offline --max-stories 200 --out OUT --json`): loading the
stories, planting five flaws in a copy of each (1,200 critiques in all), critiquing, judging every critique
with the output guard, scoring and writing the set, the answers and the report. Prints the median of runs.

    .venv/bin/python bench/bench_eval.py [--stories 200] [--runs 3] [--json]
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
from importlib.resources import files
from pathlib import Path

TARGET_SECONDS = 30.0


def write_stories(folder: Path, count: int) -> None:
    samples = sorted(p for p in files("coach").joinpath("samples").iterdir() if p.name.endswith(".md"))
    for number in range(count):
        sample = samples[number % len(samples)]
        title, _, body = sample.read_text(encoding="utf-8").partition("\n")
        paragraphs = [p for p in body.strip().split("\n\n") if p.strip()]
        turn = (number // len(samples)) % max(1, len(paragraphs))
        rotated = paragraphs[turn:] + paragraphs[:turn]
        (folder / f"story-{number:03d}.md").write_text(f"{title} ({number})\n\n" + "\n\n".join(rotated) + "\n",
                                                       encoding="utf-8")


def one_run(stories: Path, out: Path, count: int) -> tuple[float, dict]:
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "coach", "eval", "--stories", str(stories), "--model", "offline",
         "--max-stories", str(count), "--out", str(out), "--json"],
        capture_output=True, text=True, env={**os.environ, "COACH_TOKENIZER": os.environ.get("COACH_TOKENIZER", "")},
    )
    elapsed = time.perf_counter() - started
    if done.returncode not in (0, 5):
        sys.exit(f"coach eval failed ({done.returncode}): {done.stderr.strip()}")
    return elapsed, json.loads(done.stdout)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stories", type=int, default=200)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "stories"
        folder.mkdir()
        write_stories(folder, args.stories)
        times, report = [], {}
        for run in range(args.runs):
            elapsed, report = one_run(folder, Path(tmp) / f"out-{run}", args.stories)
            times.append(elapsed)
    candidate = report["candidate"]
    result = {
        "stories": report["stories"], "critiques": candidate["critiques"], "runs": args.runs,
        "median_s": round(statistics.median(times), 2), "runs_s": [round(t, 2) for t in times],
        "per_critique_ms": round(statistics.median(times) / candidate["critiques"] * 1000, 2),
        "target_s": TARGET_SECONDS, "within_target": statistics.median(times) < TARGET_SECONDS,
        "pass_rate": candidate["pass_rate"], "grounding": candidate["grounding"],
        "flaw_lift": candidate["flaw_lift"], "false_alarms": candidate["false_alarms"],
    }
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print(f"coach eval, offline critic: {result['stories']} stories, {result['critiques']} critiques; median "
              f"{result['median_s']} s over {args.runs} runs ({result['per_critique_ms']} ms a critique); "
              f"target < {TARGET_SECONDS:g} s: {'met' if result['within_target'] else 'MISSED'}")


if __name__ == "__main__":
    main()
