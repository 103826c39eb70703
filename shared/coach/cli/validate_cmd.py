"""`coach validate IN.jsonl --out OUT.jsonl`: judge critiques with the validator's rules.

Input lines: {"id", "story", "feedback"} plus an optional "finish_reason" and any other keys.
Output lines: {"id", "verdict", "reasons", "feedback" (cleaned), "cleaned", "evidence", ...other input
keys}. A summary by reason goes to stderr; `--report` also writes the JSON validation report.
The whole input is checked as it is read; on a bad line nothing is written and the error names the line.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

from coach.domain.validation import build_report, validate_feedback
from coach.errors import InputError

REQUIRED_KEYS = ("id", "story", "feedback")
_OWN_KEYS = {"id", "verdict", "reasons", "feedback", "cleaned", "evidence"}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("input", metavar="IN.jsonl", help="critiques to judge, one JSON object a line ('-' = stdin)")
    parser.add_argument("--out", metavar="OUT.jsonl", default="-", help="where the verdicts go (default stdout)")
    parser.add_argument("--report", metavar="REPORT.json", help="also write the validation report as JSON")
    parser.add_argument("--examples", type=int, default=1, help="examples per reason in the report (default 1)")


def _open_input(path: str) -> IO[str]:
    if path == "-":
        return sys.stdin
    file = Path(path)
    if file.is_dir():
        raise InputError(f"{path} is a folder: give one JSONL file of critiques ({{\"id\", \"story\", \"feedback\"}} "
                         "per line)", code="input_is_a_folder")
    if not file.is_file():
        raise InputError(f"{path}: no such file; give a JSONL file of critiques", code="input_not_found")
    try:
        return file.open(encoding="utf-8")
    except OSError as exc:
        raise InputError(f"{path}: cannot be read ({exc.strerror})", code="input_unreadable") from None


def _records(stream: IO[str], name: str) -> Iterator[tuple[int, dict[str, Any]]]:
    try:
        for number, line in enumerate(stream, start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as exc:
                raise InputError(f"{name} line {number}: not valid JSON ({exc.msg})", code="bad_jsonl") from None
            if not isinstance(record, dict):
                raise InputError(f"{name} line {number}: expected a JSON object", code="bad_jsonl")
            missing = [key for key in REQUIRED_KEYS if key not in record]
            if missing:
                raise InputError(f"{name} line {number}: missing key(s) {', '.join(missing)}", code="missing_key")
            for key in ("story", "feedback"):
                if record[key] is not None and not isinstance(record[key], str):
                    raise InputError(f"{name} line {number}: '{key}' must be a string", code="bad_record")
            if record.get("finish_reason") is not None and not isinstance(record["finish_reason"], str):
                raise InputError(f"{name} line {number}: 'finish_reason' must be a string", code="bad_record")
            yield number, record
    except UnicodeDecodeError:
        raise InputError(f"{name}: not UTF-8 text", code="bad_jsonl") from None


def _judge(record: dict[str, Any]) -> tuple[dict[str, Any], Any]:
    verdict = validate_feedback(
        record["feedback"] or "",
        story=record["story"] or "",
        story_id=str(record["id"]),
        finish_reason=record.get("finish_reason"),
    )
    out: dict[str, Any] = {
        "id": record["id"],
        "verdict": verdict.verdict,
        "reasons": verdict.reasons,
        "feedback": verdict.feedback,
        "cleaned": verdict.cleaned,
        "evidence": [e.model_dump() for e in verdict.evidence],
    }
    out.update((key, value) for key, value in record.items() if key not in _OWN_KEYS)
    return out, verdict


def _summary(report: dict, total: int) -> str:
    lines = [f"validated {total}: accepted {report['accepted']}, rejected {report['rejected']}"]
    lines += [f"  rejected {reason}: {count}" for reason, count in report["by_reason"].items()]
    lines += [f"  cleaned {code}: {count}" for code, count in report["cleaned"].items()]
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    name = "stdin" if args.input == "-" else args.input
    target = None if args.out == "-" else Path(args.out)
    for path in (target, Path(args.report) if args.report else None):
        if path is not None and not path.parent.is_dir():
            raise InputError(f"{path}: its folder does not exist", code="output_not_writable")
    stream = _open_input(args.input)
    verdicts = []
    tmp_name: str | None = None
    # Verdicts go to a temporary file renamed into place at the end: a bad line leaves no half output.
    if target is None:
        sink: IO[str] = sys.stdout
    else:
        fd, tmp_name = tempfile.mkstemp(prefix=".validate-", suffix=".jsonl", dir=target.parent)
        sink = os.fdopen(fd, "w", encoding="utf-8")
    try:
        with contextlib.nullcontext(stream) if stream is sys.stdin else stream:
            for _, record in _records(stream, name):
                out, verdict = _judge(record)
                verdicts.append(verdict)
                sink.write(json.dumps(out, ensure_ascii=False) + "\n")
        if tmp_name is not None:
            sink.close()
            os.replace(tmp_name, target)
            tmp_name = None
    finally:
        if tmp_name is not None:
            sink.close()
            Path(tmp_name).unlink(missing_ok=True)
    report = build_report(verdicts, examples=max(args.examples, 1))
    if args.report:
        Path(args.report).write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    print(_summary(report, len(verdicts)), file=sys.stderr)
    return 0
