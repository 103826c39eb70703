"""The direct local build: the build's flow over local adapters, with no AWS emulator in between.

The state folder (OUT/.state by default) is the build store itself: every record is a file there the moment
it is written (write-then-rename), so nothing needs mirroring and a re-run of the same build id resumes from
whatever the folder holds. Generation runs `--concurrency` calls at once (coach.local.direct_generation).

After kill -9 at any point, a re-run of the build id pays again only for the calls that were in flight at the
kill (at most `--concurrency`): a critique's record is written before its message leaves the queue, and the
scraper re-enqueues only stories without feedback.
"""

from __future__ import annotations

import os
import sys
import time
from typing import Any, TextIO

from coach import runtime
from coach.adapters.storage import dataset_key
from coach.domain.records import BuildManifest
from coach.errors import CoachError
from coach.local.build import (
    LocalBuildOptions,
    LocalBuildResult,
    ProgressBar,
    _follow_fine_tune,
    _publish_failure,
    _publish_outputs,
    _quiet_powertools,
    _skipped_note,
    _step,
    redrive_hint,
)
from coach.local.direct_generation import DirectGenerator
from coach.local.direct_steps import DirectAdapters, DirectSteps
from coach.local.report_out import write_report_files
from coach.local.shard_map import run_shard_map


def run_direct_build(options: LocalBuildOptions, *, stream: TextIO | None = None) -> LocalBuildResult:
    stream = stream or sys.stderr  # read at call time: tests swap sys.stderr
    request = options.request
    saved_env = dict(os.environ)
    _quiet_powertools(options.verbose)
    started = time.monotonic()
    # Every worker may have a call in flight: the provider's connection pool holds them all.
    os.environ["COACH_HTTP_POOL"] = str(max(10, options.concurrency))
    runtime.reset()
    adapters = DirectAdapters.in_folder(options.state)
    try:
        store = adapters.store
        steps = DirectSteps(adapters)

        def step(name: str, event: dict[str, Any]) -> Any:
            return _step(name, event, call=steps)

        normalised = step("checkinput", request.model_dump(mode="json"))
        scrape = step("scraper", {"request": normalised})
        stream.write(
            f"build {request.build_id}: {scrape['stories']} stories"
            + (f" (resumed from {options.state})" if scrape.get("resumed") else "")
            + _skipped_note(scrape)
            + f", {scrape['reused']} already have feedback, {scrape['enqueued']} to generate\n")
        for warning in scrape.get("warnings", [])[:20]:
            stream.write(f"warning: {warning}\n")
        to_generate = scrape["enqueued"]
        batches_done = True
        if request.generation == "batch" and to_generate:
            from coach.local.batch_loop import follow_batches

            batches = follow_batches(request.build_id, step, poll_s=options.batch_poll_s,
                                     timeout_s=options.generation_timeout_s, stream=stream)
            to_generate, batches_done = batches.fallback, batches.finished

        generator = DirectGenerator(adapters, concurrency=options.concurrency)
        bar = ProgressBar(to_generate, stream)

        def tick() -> None:
            stats = generator.stats
            bar.update(stats.messages - stats.failures, f"retries {stats.failures}" if stats.failures else "")

        drained = generator.run(on_tick=tick, timeout_s=options.generation_timeout_s) if to_generate else True
        bar.update(to_generate if drained else generator.stats.messages - generator.stats.failures)
        bar.close()
        progress = step("progress", {"build_id": request.build_id, "run_id": scrape["run_id"],
                                       "enqueued": scrape["enqueued"]})
        if not drained:
            stream.write(f"warning: generation did not finish within {options.generation_timeout_s:.0f}s; "
                         "re-run the same build id to continue\n")
        if progress["dead_lettered"]:
            stream.write(f"warning: {progress['dead_lettered']} messages are in the dead-letter queue; "
                         f"fix the cause, then `{redrive_hint(options)}`\n")

        stage = "validate"
        try:
            shards = run_shard_map(request.build_id, scrape["run_id"], store=store,
                                   call=lambda event: step("shard", event))
            # An earlier run's manifest must not pass for this run's if assembling fails.
            for name in ("manifest.json", "rejected.jsonl"):
                store.delete(dataset_key(request.build_id, name))
            stage = "assemble"
            assembled = step("assembler", {"request": normalised, "scrape": scrape, "shards": shards})
            stage = "fine-tune"
            started_job = step("finetune", {"action": "start", "request": normalised, "dataset": assembled})
        except CoachError as exc:
            _publish_failure(store, request, options.out, stage, exc)
            write_report_files(store, request.build_id, options.out, regenerate=False)  # it says what went wrong
            raise
        if options.wait_for_fine_tune and started_job.get("job_id"):
            _follow_fine_tune(started_job["job_id"], store, normalised, request.build_id, options, stream,
                              step=step)
        manifest = store.get_model(assembled["manifest_key"], BuildManifest)
        if manifest is None:
            raise CoachError("the assembler wrote no manifest", code="manifest_missing")
        _publish_outputs(store, request.build_id, options.out, manifest)
        # The assembler, a fine-tune's end and the evaluation each wrote the report as they changed the build.
        write_report_files(store, request.build_id, options.out, regenerate=False)
        return LocalBuildResult(manifest=manifest, out=options.out, elapsed_s=time.monotonic() - started,
                                generation_complete=drained and batches_done and progress["done"])
    finally:
        adapters.guard.close()
        os.environ.clear()
        os.environ.update(saved_env)
        runtime.reset()
