"""Benchmark: a 100,000-example fine-tuning dataset written, read and sent to OpenAI without holding it in memory
(a script, not a test).

Each stage runs in a fresh child process and reports its own peak resident memory (ru_maxrss), so a stage
that held the whole file would show it. The dataset goes into a folder store (the direct local runtime's
store); the fine-tune start runs against the fake OpenAI server in another process, so the server's copy of
the file is not counted.

    .venv/bin/python bench/bench_large_dataset.py                       # 100,000 examples, about 450 MB
    .venv/bin/python bench/bench_large_dataset.py --examples 10000 --dir /tmp/coach-bench
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BUILD = "bench-large"
WORDS = ("lantern", "harbour", "quiet", "river", "salt", "window", "letter", "mother", "winter", "orchard", "engine",
         "silver", "kettle", "dusk", "bridge", "station", "mirror", "ledger", "garden", "ribbon", "violin",
         "thunder", "pocket", "candle", "ferry", "meadow")


def _example(i: int) -> str:
    words = [WORDS[(i * 7 + k * 13) % len(WORDS)] for k in range(520)]
    story = " ".join(words[:430]).capitalize() + "."
    critique = f"Your opening, example {i}, works. " + " ".join(words[430:]) + "."
    return json.dumps({"messages": [
        {"role": "system", "content": "You are a warm, exacting fiction editor. " * 4},
        {"role": "user", "content": f"Critique this story.\n\n=== STORY ===\nTitle: Tale {i}\n\n{story}\n"
                                    "=== END STORY ==="},
        {"role": "assistant", "content": critique * 2},
    ]})


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def stage_write(root: Path, examples: int) -> dict:
    from coach.adapters.storage import dataset_key
    from coach.domain.records import BuildManifest, DatasetChecks
    from coach.local.dir_store import DirectoryStore

    store = DirectoryStore(root)
    started = time.perf_counter()
    with store.open_writer(dataset_key(BUILD, "train.jsonl")) as out:
        for i in range(examples):
            out.write(_example(i) + "\n")
    seconds = time.perf_counter() - started
    # What the assembler records: the checks the fine-tune start trusts.
    manifest = BuildManifest(build_id=BUILD, provider="openai", model="gpt-4o-mini", prompt_version="bench",
                             dataset_checks={"train.jsonl": DatasetChecks(examples=out.lines, passed=True)})
    store.put_text(dataset_key(BUILD, "manifest.json"), manifest.model_dump_json())
    return {"bytes": out.bytes_written, "lines": out.lines, "seconds": round(seconds, 2)}


def stage_read(root: Path) -> dict:
    from coach.adapters.storage import dataset_key
    from coach.local.dir_store import DirectoryStore

    started = time.perf_counter()
    lines = chars = 0
    for line in DirectoryStore(root).iter_lines(dataset_key(BUILD, "train.jsonl")):
        lines += 1
        chars += len(line)
    return {"lines": lines, "chars": chars, "seconds": round(time.perf_counter() - started, 2)}


def stage_read_whole(root: Path) -> dict:
    """For comparison: what the fine-tune start did before, at the least (the text, then its bytes)."""
    from coach.adapters.storage import dataset_key
    from coach.local.dir_store import DirectoryStore

    started = time.perf_counter()
    text = DirectoryStore(root).get_text(dataset_key(BUILD, "train.jsonl")) or ""
    data = text.encode("utf-8")
    return {"bytes": len(data), "seconds": round(time.perf_counter() - started, 2)}


def stage_start(root: Path, base_url: str) -> dict:
    import openai

    from coach.domain.records import BuildRequest
    from coach.local.dir_store import DirectoryStore
    from coach.pipeline import finetune

    request = BuildRequest.model_validate({
        "build_id": BUILD, "provider": "openai", "model": "gpt-4o-mini",
        "fine_tune": {"enabled": True, "backend": "openai", "base_model": "gpt-4o-mini-2024-07-18"}})
    started = time.perf_counter()
    result = finetune.start(request, store=DirectoryStore(root), client_factory=lambda: openai.OpenAI(
        api_key="sk-bench", base_url=base_url, timeout=600, max_retries=0))
    return {"job_id": result.job_id, "training_file": result.training_file,
            "seconds": round(time.perf_counter() - started, 2)}


def _child(stage: str, *args: str, env: dict[str, str] | None = None) -> dict:
    out = subprocess.run([sys.executable, __file__, "--stage", stage, *args], check=True, capture_output=True,
                         text=True, cwd=ROOT, env={**os.environ, **(env or {})})
    return json.loads(out.stdout.strip().splitlines()[-1])


def _server() -> tuple[subprocess.Popen, str]:
    code = ("import sys, time\nfrom tests.fakes.openai_server import FakeOpenAIServer\n"
            "with FakeOpenAIServer(api_key='sk-bench', min_training_examples=1) as fake:\n"
            "    print(fake.base_url, flush=True)\n    sys.stdin.read()\n")
    server = subprocess.Popen([sys.executable, "-c", code], cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                              text=True)
    assert server.stdout is not None
    return server, server.stdout.readline().strip()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--examples", type=int, default=100_000)
    parser.add_argument("--dir", type=Path, default=None, help="where the folder store goes (default: a temp dir)")
    parser.add_argument("--part-bytes", type=int, default=64 * 1024 * 1024, help="COACH_UPLOAD_PART_BYTES")
    parser.add_argument("--stage", help=argparse.SUPPRESS)
    parser.add_argument("args", nargs="*", help=argparse.SUPPRESS)
    opts = parser.parse_args()
    if opts.stage:
        sys.path.insert(0, str(ROOT / "shared"))
        root = Path(opts.args[0])
        result = {"write": lambda: stage_write(root, int(opts.args[1])), "read": lambda: stage_read(root),
                  "read_whole": lambda: stage_read_whole(root),
                  "start": lambda: stage_start(root, opts.args[1])}[opts.stage]()
        print(json.dumps({**result, "peak_rss_mb": round(_peak_mb(), 1)}))
        return
    root = opts.dir or Path(tempfile.mkdtemp(prefix="coach-bench-"))
    try:
        report = {"examples": opts.examples, "write": _child("write", str(root), str(opts.examples))}
        report["read (iter_lines)"] = _child("read", str(root))
        report["read whole (before)"] = _child("read_whole", str(root))
        server, base_url = _server()
        try:
            report["fine-tune start"] = _child("start", str(root), base_url,
                                               env={"COACH_UPLOAD_PART_BYTES": str(opts.part_bytes)})
        finally:
            server.communicate("")
    finally:
        if opts.dir is None:  # half a gigabyte of temporary dataset
            shutil.rmtree(root, ignore_errors=True)
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
