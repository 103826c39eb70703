"""The shard stage's Distributed Map, run locally: what Step Functions does with the ASL's `BuildShards` state.

It lists the build's story keys (the ItemReader), cuts them into batches (the ItemBatcher), hands each batch
to the shard step with the event AWS sends a child, retries a failed batch, writes the ResultWriter's files
(coach.pipeline.map_results reads them back) and fails past the tolerated share of failed batches, as the
map does with States.ExceedToleratedFailureThreshold.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from typing import Any

from coach.adapters.storage import BuildStore, build_prefix, map_results_prefix
from coach.errors import CoachError

DEFAULT_BATCH_SIZE = 400  # the template's ShardBatchSize
DEFAULT_TOLERATED_PERCENT = 5.0  # ShardToleratedFailurePercent
DEFAULT_ATTEMPTS = 3  # the child task's Retry: the first call and two retries

ShardCall = Callable[[dict[str, Any]], dict[str, Any]]


def in_process(store: BuildStore, *, max_story_tokens: int) -> ShardCall:
    """The shard step as a call in this process: what the shard handler does with the event, over `store`."""
    from coach.pipeline.shard import build_shard, story_ids_of

    def call(event: dict[str, Any]) -> dict[str, Any]:
        batch = event["BatchInput"]
        summary = build_shard(batch["build_id"], batch["run_id"], story_ids_of(event["Items"], batch["build_id"]),
                              store=store, max_story_tokens=max_story_tokens)
        return summary.output()

    return call


def batch_events(store: BuildStore, build_id: str, run_id: str, batch_size: int) -> list[dict[str, Any]]:
    keys = list(store.list_keys(f"{build_prefix(build_id)}stories/"))
    batch_input = {"build_id": build_id, "run_id": run_id}
    return [{"Items": [{"Key": key, "StorageClass": "STANDARD"} for key in keys[i:i + batch_size]],
             "BatchInput": batch_input} for i in range(0, len(keys), batch_size)]


def run_shard_map(build_id: str, run_id: str, *, store: BuildStore, call: ShardCall,
                  batch_size: int = DEFAULT_BATCH_SIZE, tolerated_percent: float = DEFAULT_TOLERATED_PERCENT,
                  attempts: int = DEFAULT_ATTEMPTS) -> dict[str, Any]:
    """Runs every batch; returns the map's output ({"MapRunArn", "ResultWriterDetails"}) as the ASL's does."""
    map_run = uuid.uuid4().hex[:12]
    arn = f"local:map-run:{build_id}:{map_run}"
    succeeded: list[dict[str, Any]] = []
    failed: list[dict[str, Any]] = []
    events = batch_events(store, build_id, run_id, batch_size)
    for number, event in enumerate(events):
        execution = {"ExecutionArn": f"{arn}:{number}", "Name": str(number), "Input": json.dumps(event),
                     "InputDetails": {"Included": True}}
        for attempt in range(1, attempts + 1):
            try:
                output = call(event)
            except Exception as exc:  # the map records the child's error and cause, as Step Functions does
                if attempt < attempts:
                    continue
                failed.append({**execution, "Status": "FAILED", "Error": type(exc).__name__,
                               "Cause": str(exc)[:1000]})
            else:
                succeeded.append({**execution, "Status": "SUCCEEDED", "Output": json.dumps(output)})
            break
    folder = f"{map_results_prefix(build_id)}/{map_run}"
    files: dict[str, list[dict[str, Any]]] = {"FAILED": [], "PENDING": [], "SUCCEEDED": []}
    for status, executions in (("FAILED", failed), ("SUCCEEDED", succeeded)):
        if executions:
            key = f"{folder}/{status}_0.json"
            text = json.dumps(executions)
            store.put_text(key, text)
            files[status].append({"Key": key, "Size": len(text.encode("utf-8"))})
    manifest_key = f"{folder}/manifest.json"
    store.put_json(manifest_key, {"DestinationBucket": store.bucket, "MapRunArn": arn, "ResultFiles": files})
    if failed and len(failed) * 100 > tolerated_percent * len(events):
        raise CoachError(
            f"{len(failed)} of {len(events)} shard batches failed ({failed[0]['Error']}: {failed[0]['Cause'][:200]}),"
            f" over the {tolerated_percent:g}% tolerated; the failed batches are listed in {manifest_key}",
            code="shard_batches_failed")
    return {"MapRunArn": arn, "ResultWriterDetails": {"Bucket": store.bucket, "Key": manifest_key}}
