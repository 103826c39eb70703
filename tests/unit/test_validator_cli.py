"""`coach validate IN.jsonl --out OUT.jsonl`: verdicts out, a summary on stderr, one-line errors on bad input."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from coach.cli import main

STORY = ("Mara kept the lighthouse for forty years and never once let the lamp go out, not even in the storm "
         "that took the pier. When the inspectors came to automate it she made them tea and said nothing.")
GOOD = ("Your restraint is the strength of this piece: Mara making the inspectors tea and saying nothing tells us "
        "more about forty years of duty than any speech could. The storm that took the pier is mentioned in "
        "passing, though, and it deserves a scene of its own; consider slowing down there so that we feel what "
        "keeping the lamp lit cost her. The final silence is exactly right, so keep it.")


def write_jsonl(path: Path, rows: list[object]) -> Path:
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows), encoding="utf-8")
    return path


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def test_verdicts_are_written_with_cleaned_text_and_extra_keys(tmp_path: Path,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    source = write_jsonl(tmp_path / "in.jsonl", [
        {"id": "s1", "story": STORY, "feedback": GOOD, "model": "m1"},
        {"id": "s2", "story": STORY, "feedback": "FEEDBACK:\n\n" + GOOD, "finish_reason": "stop"},
        {"id": "s3", "story": STORY, "feedback": "1. Nice.\n2. Good pacing.\n3. Lovely ending.",
         "finish_reason": "length", "batch": 7},
        {"id": 4, "story": STORY, "feedback": None},
    ])
    out = tmp_path / "out.jsonl"
    report = tmp_path / "report.json"
    assert main(["validate", str(source), "--out", str(out), "--report", str(report)]) == 0

    rows = read_jsonl(out)
    assert [r["id"] for r in rows] == ["s1", "s2", "s3", 4]
    assert rows[0]["verdict"] == "accepted" and rows[0]["reasons"] == [] and rows[0]["model"] == "m1"
    assert rows[1]["verdict"] == "accepted" and rows[1]["feedback"] == GOOD
    assert rows[1]["cleaned"] == ["strip_label"] and rows[1]["finish_reason"] == "stop"
    assert rows[2]["verdict"] == "rejected" and rows[2]["batch"] == 7
    assert {"truncated_output", "list_format", "too_short"} <= set(rows[2]["reasons"])
    assert all(e["reason"] in rows[2]["reasons"] for e in rows[2]["evidence"])
    assert rows[3]["reasons"] == ["empty"]

    err = capsys.readouterr().err
    assert "validated 4: accepted 2, rejected 2" in err
    assert "rejected too_short: 1" in err and "rejected empty: 1" in err
    saved = json.loads(report.read_text(encoding="utf-8"))
    assert saved["accepted"] == 2 and saved["by_reason"]["empty"] == 1
    assert saved["examples"]["list_format"]["story_id"] == "s3"


def test_without_out_the_verdicts_go_to_stdout(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    source = write_jsonl(tmp_path / "in.jsonl", [{"id": "a", "story": STORY, "feedback": GOOD}])
    assert main(["validate", str(source)]) == 0
    captured = capsys.readouterr()
    assert json.loads(captured.out)["verdict"] == "accepted"
    assert "validated 1" in captured.err


@pytest.mark.parametrize(
    ("lines", "code", "where"),
    [
        (['{"id": "a", "story": "s", "feedback": "f"}', "{not json"], "bad_jsonl", "line 2"),
        (['{"id": "a", "story": "s", "feedback": "f"}', "[1, 2]"], "bad_jsonl", "line 2"),
        (['{"id": "a", "story": "s"}'], "missing_key", "line 1"),
        (['{"id": "a", "story": "s", "feedback": "f"}', "", '{"story": "s", "feedback": "f"}'], "missing_key",
         "line 3"),
        (['{"id": "a", "story": 5, "feedback": "f"}'], "bad_record", "line 1"),
        (['{"id": "a", "story": "s", "feedback": "f", "finish_reason": 3}'], "bad_record", "line 1"),
    ],
)
def test_bad_input_is_one_error_line_naming_the_line_and_leaves_no_output(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], lines: list[str], code: str, where: str
) -> None:
    source = write_jsonl(tmp_path / "in.jsonl", lines)
    out = tmp_path / "out.jsonl"
    assert main(["validate", str(source), "--out", str(out)]) != 0
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"error: {code}: ") and where in err
    assert "\n" not in err and "Traceback" not in err
    assert not out.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.jsonl"]


def test_a_missing_input_file_is_a_clear_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["validate", str(tmp_path / "nope.jsonl"), "--out", str(tmp_path / "o.jsonl")]) != 0
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: input_not_found: ") and "nope.jsonl" in err


def test_a_binary_file_is_a_clear_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    source = tmp_path / "in.jsonl"
    source.write_bytes(b"\xff\xfe\x00garbage")
    assert main(["validate", str(source), "--out", str(tmp_path / "o.jsonl")]) != 0
    assert capsys.readouterr().err.strip().startswith("error: bad_jsonl: ")


def test_the_installed_command_reports_errors_without_a_traceback(tmp_path: Path) -> None:
    source = write_jsonl(tmp_path / "in.jsonl", ["oops"])
    result = subprocess.run(
        [sys.executable, "-m", "coach", "validate", str(source), "--out", str(tmp_path / "o.jsonl")],
        capture_output=True, text=True, timeout=60, check=False,
    )
    assert result.returncode != 0
    assert result.stderr.strip().startswith("error: bad_jsonl:") and "Traceback" not in result.stderr
