"""How a benchmark with a target ends: its figures printed as one JSON object or as a sentence, and exit
status 1 when the target was missed (`result["within_target"]` false), so a script can gate on it."""

from __future__ import annotations

import json
from typing import Any


def finish(result: dict[str, Any], sentence: str, *, as_json: bool) -> int:
    print(json.dumps(result) if as_json else sentence)
    return 0 if result["within_target"] else 1
