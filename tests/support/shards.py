"""Runs a build's shard stage through the shard handler, batch by batch, as the Distributed Map would."""

from __future__ import annotations

from typing import Any

import boto3

from coach.adapters.storage import BuildStore, request_key, scrape_key
from coach.domain.records import BuildRequest
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


def sharded(request: dict[str, Any], store: BuildStore | None = None) -> dict[str, Any]:
    """The assembler's event for a build whose records a test wrote itself: its shards made first, in process.

    The test's verdicts stand for what the generator wrote: each gets the basis the generator would have
    given it, so the shard stage keeps it instead of judging the critique again."""
    from coach import runtime
    from coach.local.shard_map import in_process
    from coach.pipeline.validate import verdict_basis

    store = store or runtime.store()
    build_id = request["build_id"]
    scrape = store.get_json(scrape_key(build_id))
    if scrape is None:
        scrape = {"build_id": build_id, "run_id": "seeded"}
        store.put_json(scrape_key(build_id), scrape)
    if store.get_text(request_key(build_id)) is None:
        store.put_model(request_key(build_id), BuildRequest.model_validate(request))
    for verdict in list(store.verdicts(build_id)):
        record, story = store.get_feedback(build_id, verdict.story_id), store.get_story(build_id, verdict.story_id)
        if record is not None and not verdict.basis:
            store.put_verdict(build_id, verdict.model_copy(update={"basis": verdict_basis(record, story)}))
    shards = run_shard_map(build_id, scrape["run_id"], store=store, call=in_process(store, max_story_tokens=1_500))
    return {"request": request, "scrape": scrape, "shards": shards}
