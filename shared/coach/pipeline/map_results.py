"""What a Distributed Map's ResultWriter leaves in S3, read back: which batches failed, how many stories they
held and why.

Step Functions writes `{prefix}/{map run id}/manifest.json`:
    {"DestinationBucket", "MapRunArn", "ResultFiles": {"FAILED": [{"Key", "Size"}], "PENDING": [...],
     "SUCCEEDED": [...]}}
and each FAILED file is a JSON array of child executions, each with "Input" (the batch, as a JSON string),
"Status", "Error" and "Cause". The local runtimes write the same files (coach.local.shard_map), so the
assembler reads a failed batch the same way wherever the build ran.
"""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

from coach.adapters.storage import BuildStore
from coach.domain.records import ShardFailures


def read_map_failures(store: BuildStore, map_output: dict[str, Any] | None) -> ShardFailures:
    """The failed batches of a map run, from its output ({"MapRunArn", "ResultWriterDetails": {"Bucket", "Key"}})."""
    details = (map_output or {}).get("ResultWriterDetails") or {}
    key = str(details.get("Key", ""))
    if not key:
        return ShardFailures()
    manifest = store.get_json(key) or {}
    failures = ShardFailures(results_key=key)
    causes: Counter[str] = Counter()
    for entry in manifest.get("ResultFiles", {}).get("FAILED", []):
        for execution in store.get_json(str(entry.get("Key", ""))) or []:
            failures.batches += 1
            causes[str(execution.get("Error") or "unknown")] += 1
            try:
                batch = json.loads(execution.get("Input") or "{}")
            except (TypeError, ValueError):
                batch = {}
            failures.stories += len(batch.get("Items", []))
    failures.causes = dict(sorted(causes.items()))
    return failures
