"""Runs a build's shard stage through the shard handler, batch by batch, as the Distributed Map would."""

from __future__ import annotations

from typing import Any

import boto3

from coach.adapters.storage import BuildStore, scrape_key
from coach.local.lambda_runtime import invoke
from coach.local.shard_map import run_shard_map


def shard_build(bucket: str, build_id: str, *, batch_size: int = 400) -> dict[str, Any]:
    """{"accepted", "rejected", "shards": the map's output} over every batch of the build's stories."""
    store = BuildStore(bucket, boto3.client("s3"))
    run_id = (store.get_json(scrape_key(build_id)) or {})["run_id"]
    totals = {"accepted": 0, "rejected": 0}

    def call(event: dict[str, Any]) -> dict[str, Any]:
        out = invoke("shard", event)
        totals["accepted"] += out["examples"]
        totals["rejected"] += out["rejected"]
        return out

    output = run_shard_map(build_id, run_id, store=store, call=call, batch_size=batch_size)
    return {**totals, "shards": output}
