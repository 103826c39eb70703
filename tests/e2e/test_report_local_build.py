"""`coach build` and `coach report` as a user runs them: the report lands in OUT even when the build is
refused, and `coach report` writes it again from the records kept under OUT/.state."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow
REPO = Path(__file__).resolve().parents[2]
SCENES = ("the ferry", "the orchard", "the night train")


def coach(*args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "COACH_", "AWS_ENDPOINT"))}
    return subprocess.run([sys.executable, "-m", "coach", *args], capture_output=True, text=True, env=env,
                          cwd=REPO, timeout=300)


def test_a_refused_build_still_leaves_its_report_and_coach_report_rewrites_it(tmp_path):
    stories = tmp_path / "stories"
    stories.mkdir()
    for scene in SCENES:
        (stories / f"{scene.replace(' ', '-')}.txt").write_text(
            f"She waited for {scene} with her coat buttoned wrong. " * 6
            + f"\n\n\"Are you coming?\" he asked quietly, and she looked at {scene} for a long time. " * 4)
    out = tmp_path / "out"

    built = coach("build", "--source", str(stories), "--build-id", "tiny", "--out", str(out))

    assert built.returncode == 2 and "dataset_too_small" in built.stderr
    html = (out / "report.html").read_text()
    assert re.search(r'<p class="banner">only \d+ usable examples', html)
    assert html.count('<article class="ex"') == 3
    assert not (out / "README.md").exists()  # no dataset, no card

    (out / "report.html").unlink()
    again = coach("report", "tiny", "--out", str(out))
    assert again.returncode == 0, again.stderr
    assert again.stdout.strip() == f"wrote {out / 'report.html'}"
    rewritten = (out / "report.html").read_text()
    assert rewritten.count('<article class="ex"') == 3 and 'class="banner"' in rewritten
