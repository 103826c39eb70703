"""`coach builds` lists the folder's local builds with their status, counts and cost."""

from __future__ import annotations

import json
import shutil

from coach.cli import main
from coach.local.build_index import run_marker


def test_builds_lists_complete_failed_and_interrupted_builds(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(["build", "--build-id", "whole", "--limit", "20"]) == 0
    assert main(["build", "--build-id", "tiny", "--limit", "3"]) != 0  # too few examples to assemble
    capsys.readouterr()
    # A build killed part-way leaves its run marker naming a process that no longer exists.
    gone = tmp_path / "out" / "gone" / ".state"
    shutil.copytree(tmp_path / "out" / "whole" / ".state" / "builds" / "whole", gone / "builds" / "gone")
    run_marker(gone).parent.mkdir(parents=True)
    run_marker(gone).write_text(json.dumps({"status": "running", "pid": 2**22 + 7}))

    assert main(["builds", "--json"]) == 0
    listed = {b["build_id"]: b for b in json.loads(capsys.readouterr().out)}
    assert listed["whole"]["status"] == "complete"
    assert listed["whole"]["generated"] == listed["whole"]["stories"] == 20 and listed["whole"]["accepted"] > 0
    assert listed["tiny"]["status"] == "failed at assemble: dataset_too_small"
    assert listed["gone"]["status"].startswith("interrupted") and listed["gone"]["generated"] == 20

    assert main(["builds"]) == 0
    table = capsys.readouterr().out
    assert table.splitlines()[0].split()[:3] == ["BUILD", "STATUS", "STORIES"] and "$0.0000" in table
