"""Two local processes sharing a state folder or the registry file: one build at a time, no version lost."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from coach.cli import main
from coach.local.file_lock import state_folder_lock
from coach.local.parameter_file import ParameterFile

ROOT = Path(__file__).resolve().parents[2]


def test_a_second_build_in_a_busy_state_folder_is_refused_with_one_line(tmp_path, capsys):
    out = tmp_path / "out"
    with state_folder_lock(out / ".state"):  # as a build running in another process holds it
        code = main(["build", "--source", "samples", "--limit", "2", "--out", str(out), "--build-id", "busy"])
    err = capsys.readouterr().err.strip()
    assert code == 2
    assert err.startswith("error: state_in_use: another coach command (pid ") and "--out" in err
    assert "\n" not in err and "Traceback" not in err
    assert not (out / ".state" / "builds").exists()  # nothing of the refused build was written


def test_a_killed_holder_leaves_the_folder_free(tmp_path):
    state = tmp_path / ".state"
    holder = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(f"""
            import sys, time
            sys.path.insert(0, {str(ROOT / "shared")!r})
            from pathlib import Path
            from coach.local.file_lock import state_folder_lock
            with state_folder_lock(Path({str(state)!r})):
                print("held", flush=True)
                time.sleep(60)
        """)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        with pytest.raises(Exception, match="state_in_use"), state_folder_lock(state):
            pass
    finally:
        holder.kill()  # kill -9: no chance to let go of the lock itself
        holder.wait(timeout=30)
    with state_folder_lock(state):
        pass


PUBLISHER = """
import sys
sys.path.insert(0, {shared!r})
from pathlib import Path
from coach.local.parameter_file import ParameterFile
registry = ParameterFile(Path({path!r}))
while not Path({go!r}).exists():  # both start together, so their writes interleave
    pass
for n in range({count}):
    registry.put_parameter(Name="/coach/model", Value=f"{{sys.argv[1]}}-{{n}}", Overwrite=True)
"""


def test_two_processes_publishing_at_once_keep_every_version(tmp_path):
    path = tmp_path / "registry.json"
    go = tmp_path / "go"
    count = 150
    script = PUBLISHER.format(shared=str(ROOT / "shared"), path=str(path), count=count, go=str(go))
    writers = [subprocess.Popen([sys.executable, "-c", script, name]) for name in ("a", "b")]
    time.sleep(1.0)
    go.touch()
    for writer in writers:
        assert writer.wait(timeout=120) == 0
    registry = ParameterFile(path)
    assert registry.get_parameter(Name="/coach/model")["Parameter"]["Version"] == 2 * count
    history = registry.get_parameter_history(Name="/coach/model", MaxResults=100)["Parameters"]
    assert [p["Version"] for p in history] == list(range(count * 2 - 99, 2 * count + 1))  # SSM keeps 100
