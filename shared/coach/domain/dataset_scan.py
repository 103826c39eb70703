"""One streamed pass over a chat fine-tuning JSONL file: its size, MD5 and lines, and a structural check.

The structural check is the cheap part of the format checks (each line a JSON object with a non-empty
`messages` list holding an assistant message). The full checks (roles, keys, token limits, overlap between
files) need a tokenizer and are the assembler's; this pass is what a step that trusts the assembler's
recorded checks runs to make sure the file it is about to send is the one that was checked, and JSONL.
Pure: it reads the lines it is given (bytes, each with its newline) and keeps only a bounded list of problems.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable

from pydantic import BaseModel, Field

from coach.domain.finetune_data import CheckResult, LineProblem

KEPT_PROBLEMS = 100  # a file broken on every line is reported by its first lines, and a count


class FileScan(BaseModel):
    name: str
    size: int = 0  # bytes
    lines: int = 0
    md5: str = ""
    problems: list[LineProblem] = Field(default_factory=list)
    more_problems: int = 0  # lines with problems beyond the ones kept

    @property
    def passed(self) -> bool:
        return not self.problems

    def check_result(self) -> CheckResult:
        """The problems in the format checks' shape, so they are reported the same way (file, lines)."""
        more = [f"{self.more_problems} more lines with problems"] if self.more_problems else []
        return CheckResult(name=self.name, token_limit=0, token_method="none", estimated=False,
                           problems=list(self.problems), dataset_errors=more)


def _line_problem(number: int, raw: bytes) -> LineProblem | None:
    if not raw.strip():
        return LineProblem(line=number, code="blank_line", message="the line is empty")
    try:
        row = json.loads(raw)
    except UnicodeDecodeError:
        return LineProblem(line=number, code="invalid_json", message="the line is not UTF-8")
    except json.JSONDecodeError as err:
        return LineProblem(line=number, code="invalid_json", message=err.msg)
    if not isinstance(row, dict):
        return LineProblem(line=number, code="not_an_object", message=f"the line is a JSON {type(row).__name__}")
    messages = row.get("messages")
    if not isinstance(messages, list) or not messages:
        return LineProblem(line=number, code="missing_messages_list", message="no non-empty 'messages' list")
    if not any(isinstance(m, dict) and m.get("role") == "assistant" for m in messages):
        return LineProblem(line=number, code="no_assistant_message", message="the example has no assistant message")
    return None


def scan_jsonl(lines: Iterable[bytes], *, name: str) -> FileScan:
    """Scan raw lines (as a binary file yields them); lines are numbered from 1."""
    digest = hashlib.md5(usedforsecurity=False)
    scan = FileScan(name=name)
    for number, raw in enumerate(lines, start=1):
        digest.update(raw)
        scan.size += len(raw)
        scan.lines = number
        problem = _line_problem(number, raw.removesuffix(b"\n"))
        if problem is None:
            continue
        if len(scan.problems) < KEPT_PROBLEMS:
            scan.problems.append(problem)
        else:
            scan.more_problems += 1
    scan.md5 = digest.hexdigest()
    return scan
