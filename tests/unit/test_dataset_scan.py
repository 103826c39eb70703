"""The streamed scan of a fine-tuning file, and the part windows the Uploads API sends."""

from __future__ import annotations

import hashlib
import io
import json

from coach.adapters.openai_files import Window
from coach.domain.dataset_scan import KEPT_PROBLEMS, scan_jsonl

GOOD = json.dumps({"messages": [{"role": "user", "content": "Story."}, {"role": "assistant", "content": "Yes."}]})


def test_a_good_file_is_measured_in_one_pass():
    content = (GOOD + "\n") * 3 + GOOD  # the last line has no newline
    scan = scan_jsonl(io.BytesIO(content.encode()), name="train.jsonl")
    assert scan.passed and scan.lines == 4 and scan.size == len(content.encode())
    assert scan.md5 == hashlib.md5(content.encode()).hexdigest()


def test_problems_are_reported_by_line_as_the_format_checks_report_them():
    lines = [GOOD, "", "[1, 2]", '{"messages": []}', '{"messages": [{"role": "user", "content": "x"}]}', "{cut",
             GOOD]
    scan = scan_jsonl(io.BytesIO(("\n".join(lines) + "\n").encode()), name="train.jsonl")
    assert [(p.line, p.code) for p in scan.problems] == [
        (2, "blank_line"), (3, "not_an_object"), (4, "missing_messages_list"), (5, "no_assistant_message"),
        (6, "invalid_json")]
    assert "offending lines: 2-6" in scan.check_result().one_line()
    assert not scan_jsonl(io.BytesIO(b"\xff\xfe\n"), name="x").passed


def test_a_file_broken_everywhere_keeps_a_bounded_list():
    scan = scan_jsonl(io.BytesIO(b"nope\n" * (KEPT_PROBLEMS + 50)), name="train.jsonl")
    assert len(scan.problems) == KEPT_PROBLEMS and scan.more_problems == 50
    assert "50 more lines with problems" in scan.check_result().one_line()


def test_a_window_is_a_seekable_slice_of_its_reader():
    reader = io.BufferedReader(io.BytesIO(b"0123456789"))
    window = io.BufferedReader(Window(reader, 3, 4))
    assert window.read() == b"3456"
    assert window.seek(0, io.SEEK_END) == 4
    window.seek(1)
    assert window.read(2) == b"45"
    window.seek(0)
    reader.seek(9)  # another window moved the shared reader: this one seeks it back
    assert window.read() == b"3456"
