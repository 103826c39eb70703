"""Benchmark `coach validate` on 10,000 records (the target is under 10 seconds).

The records are the validator's labelled fixtures, each paired with its bundled sample story and repeated
under fresh ids until there are enough: realistic critiques (good, cleanable and bad) of realistic stories.
Each run is the real command in a fresh process (`python -m coach validate IN --out OUT`), so the figure
includes interpreter start-up, imports, JSON parsing and writing. Prints the median of several runs.

    .venv/bin/python bench/bench_validate.py [--records 10000] [--runs 5] [--json]
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from importlib.resources import files
from pathlib import Path

from targets import finish

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = ROOT / "tests" / "fixtures" / "validator"
TARGET_SECONDS = 10.0


def sample_story(story_id: str) -> str:
    text = (files("coach") / "samples" / f"{story_id.removeprefix('sample-')}.md").read_text(encoding="utf-8")
    return text.partition("\n")[2].strip()


def build_input(path: Path, records: int) -> None:
    rows = [json.loads(line) for f in sorted(FIXTURES.glob("*.jsonl"))
            for line in f.read_text(encoding="utf-8").splitlines() if line.strip()]
    if not rows:
        sys.exit(f"no fixtures found under {FIXTURES}")
    stories = {row["story_id"]: sample_story(row["story_id"]) for row in rows}
    with path.open("w", encoding="utf-8") as out:
        for number, row in zip(range(records), itertools.cycle(rows), strict=False):
            record = {"id": f"bench-{number:05d}", "story": stories[row["story_id"]], "feedback": row["feedback"],
                      "story_id": row["story_id"]}
            if "finish_reason" in row:
                record["finish_reason"] = row["finish_reason"]
            out.write(json.dumps(record, ensure_ascii=False) + "\n")


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run_once(source: Path, target: Path) -> tuple[float, float]:
    """(wall seconds, CPU seconds) of one `coach validate` process. CPU time is the steadier figure on a
    shared machine: wall time also counts the time other processes held the cores."""
    cpu_before = _children_cpu()
    started = time.perf_counter()
    result = subprocess.run(
        [sys.executable, "-m", "coach", "validate", str(source), "--out", str(target)],
        capture_output=True, text=True, check=False,
    )
    elapsed = time.perf_counter() - started
    if result.returncode != 0:
        sys.exit(f"coach validate failed: {result.stderr.strip()}")
    return elapsed, _children_cpu() - cpu_before


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of text")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-validate-") as tmp:
        source, target = Path(tmp) / "in.jsonl", Path(tmp) / "out.jsonl"
        build_input(source, args.records)
        size_mb = source.stat().st_size / 1e6
        runs = [run_once(source, target) for _ in range(args.runs)]
        written = sum(1 for _ in target.open(encoding="utf-8"))
    if written != args.records:
        sys.exit(f"expected {args.records} verdicts, got {written}")
    times = [wall for wall, _ in runs]
    median = statistics.median(times)
    cpu = statistics.median(cpu for _, cpu in runs)
    result = {
        "records": args.records, "input_mb": round(size_mb, 1), "runs": args.runs,
        "median_s": round(median, 2), "min_s": round(min(times), 2), "max_s": round(max(times), 2),
        "median_cpu_s": round(cpu, 2), "records_per_s": round(args.records / median),
        "load_average": round(os.getloadavg()[0], 1), "target_s": TARGET_SECONDS,
        "within_target": median < TARGET_SECONDS,
    }
    sentence = (f"coach validate: {args.records} records ({size_mb:.1f} MB) in {median:.2f} s median of "
                f"{args.runs} runs (min {min(times):.2f}, max {max(times):.2f}; CPU {cpu:.2f} s; "
                f"{result['records_per_s']} records/s; load average {result['load_average']}; "
                f"target < {TARGET_SECONDS:.0f} s)")
    return finish(result, sentence, as_json=args.json)


if __name__ == "__main__":
    sys.exit(main())
