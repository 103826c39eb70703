"""The direct local build and the emulated-AWS one (the real handlers) write the same dataset."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow
REPO = Path(__file__).resolve().parents[2]
# Differ by design between two runs of one build: when it was made.
RUN_FIELDS = ("created_at",)


def build(out: Path, *extra: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "COACH_", "AWS_ENDPOINT"))}
    return subprocess.run([sys.executable, "-m", "coach", "build", "--build-id", "same", "--out", str(out),
                           "--validation-fraction", "0.2", *extra],
                          capture_output=True, text=True, env=env, cwd=REPO, timeout=300)


def comparable_manifest(out: Path) -> dict:
    manifest = json.loads((out / "manifest.json").read_text())
    for field in RUN_FIELDS:
        manifest.pop(field, None)
    return manifest


def test_direct_and_emulated_builds_write_byte_identical_datasets_and_equal_manifests(tmp_path):
    direct, emulated = tmp_path / "direct", tmp_path / "emulated"
    first = build(direct)
    second = build(emulated, "--emulate-aws")
    assert first.returncode == 0, first.stderr
    assert second.returncode == 0, second.stderr
    for name in ("train.jsonl", "validation.jsonl", "rejected.jsonl", "validation_report.json"):
        assert (direct / name).read_bytes() == (emulated / name).read_bytes(), name
    assert (direct / "train.jsonl").read_text().count("\n") > 10
    assert comparable_manifest(direct) == comparable_manifest(emulated)
    # Only the emulated build keeps a mirror of the bucket; the direct one writes its records in place.
    assert (direct / ".state" / "builds" / "same" / "feedback").is_dir()
    assert (direct / "report.html").is_file() and (direct / "README.md").is_file()


def test_a_direct_build_resumes_an_emulated_one_and_pays_nothing_again(tmp_path):
    out = tmp_path / "out"
    assert build(out, "--emulate-aws").returncode == 0
    before = (out / "train.jsonl").read_bytes()
    again = build(out)
    assert again.returncode == 0, again.stderr
    assert "resumed" in again.stderr and "0 to generate" in again.stderr
    counts = json.loads((out / "manifest.json").read_text())["counts"]
    assert counts["generated_now"] == 0 and counts["reused"] == counts["generated"] > 0
    assert (out / "train.jsonl").read_bytes() == before
