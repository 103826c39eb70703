"""The flow of a local build, shared by its two runtimes.

The flow mirrors the state machine: check input -> scrape -> generation -> progress -> validate (shards) ->
assemble -> fine-tune start (with --wait: follow the job, evaluate its model, publish it only if the gate
passed). A runtime supplies what differs: the steps (pipeline functions called directly, or the real Lambda
handlers against an AWS emulator), the store they write, the generation loop, and a checkpoint that makes
the state folder hold every record written so far (the direct runtime writes there already; the emulated one
copies the emulator's bucket there, since the emulator forgets everything when the command ends).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import time
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, Protocol, TextIO

from coach import runtime
from coach.adapters.storage import BuildStore, dataset_key
from coach.domain.records import BuildManifest, BuildRequest, StepFailure
from coach.errors import CoachError, InputError
from coach.local.build_options import OPTIONAL_FILES, OUTPUT_FILES, LocalBuildOptions, LocalBuildResult
from coach.local.report_out import write_report_files
from coach.local.shard_map import run_shard_map
from coach.step_errors import (
    BatchFailed,
    BatchProviderBusy,
    DatasetInvalid,
    DatasetTooSmall,
    InvalidBuildRequest,
    NoStories,
    SourceFailed,
)

Step = Callable[[str, dict[str, Any]], Any]


class Stats(Protocol):
    messages: int
    failures: int


class Generator(Protocol):
    """The generation loop: the direct runtime's worker threads, or the emulated runtime's SQS poller."""

    stats: Stats

    def run(self, *, on_tick: Callable[[], None] | None = None, timeout_s: float | None = None) -> bool: ...


class BuildRuntime(Protocol):
    store: BuildStore

    def step(self, name: str, event: dict[str, Any]) -> Any:
        """Run one step with the event its handler takes; fail with its step error."""

    def resumed_note(self) -> str:
        """What a resumed build's first line says about where its records came from."""

    def generator(self) -> Generator: ...

    def while_generating(self) -> None:
        """Called on every tick of the generation loop."""

    def checkpoint(self) -> None:
        """Make the state folder hold every record written so far."""

    def report_store(self) -> BuildStore:
        """Where the finished build's report and card are read from (after a checkpoint)."""


@contextlib.contextmanager
def build_environment(verbose: bool) -> Iterator[None]:
    """Quiet Powertools for a terminal, and leave the process's environment and clients as they were."""
    saved = dict(os.environ)
    _quiet_powertools(verbose)
    runtime.reset()
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)
        runtime.reset()


def _quiet_powertools(verbose: bool) -> None:
    os.environ.setdefault("POWERTOOLS_SERVICE_NAME", "writing-coach")
    os.environ.setdefault("POWERTOOLS_METRICS_NAMESPACE", "WritingCoach")
    os.environ.setdefault("POWERTOOLS_TRACE_DISABLED", "1")
    os.environ.setdefault("POWERTOOLS_METRICS_DISABLED", "true")
    os.environ["POWERTOOLS_LOG_LEVEL"] = "INFO" if verbose else "ERROR"
    # A handler that fails before adding a metric flushes none; in a terminal that is noise, not news.
    warnings.filterwarnings("ignore", message="No application metrics to publish")


def redrive_hint(options: LocalBuildOptions) -> str:
    """The `coach redrive` command for this build, with the folders it used."""
    import shlex

    build_id = options.request.build_id
    parts = ["coach", "redrive", build_id]
    if options.out != Path("out") / build_id:
        parts += ["--out", str(options.out)]
    if options.state_dir is not None:
        parts += ["--state-dir", str(options.state_dir)]
    return shlex.join(parts)


class ProgressBar:
    def __init__(self, total: int, stream: TextIO, width: int = 30) -> None:
        self.total, self.stream, self.width = total, stream, width
        self.tty = stream.isatty()
        self._last_pct = -1

    def update(self, done: int, note: str = "") -> None:
        done = min(done, self.total)
        pct = 100 if self.total == 0 else done * 100 // self.total
        filled = self.width * pct // 100
        line = f"generating [{'#' * filled}{'.' * (self.width - filled)}] {done}/{self.total} {note}"
        if self.tty:
            self.stream.write("\r" + line.ljust(78))
            self.stream.flush()
        elif pct // 25 != self._last_pct // 25:  # logs get a line per quarter, not a flood
            self.stream.write(line + "\n")
        self._last_pct = pct

    def close(self) -> None:
        if self.tty:
            self.stream.write("\n")


def run_step(name: str, event: dict[str, Any], call: Step) -> Any:
    """Run one step (a handler, or its direct counterpart) and turn its step error into a one-line CoachError."""
    try:
        return call(name, event)
    except InvalidBuildRequest as exc:
        code, _, message = str(exc).partition(": ")
        if message and code.isidentifier() and code.islower():
            raise InputError(message, code=code) from None
        raise InputError(str(exc), code="invalid_build_request") from None
    except NoStories as exc:
        raise CoachError(str(exc), code="no_stories") from None
    except SourceFailed as exc:
        code, _, message = str(exc).partition(": ")
        raise CoachError(message or code, code=code if message else "source_error") from None
    except DatasetTooSmall as exc:
        raise CoachError(str(exc), code="dataset_too_small") from None
    except DatasetInvalid as exc:
        code, _, message = str(exc).partition(": ")
        if message and re.fullmatch(r"[a-z_]+", code):  # a cause that names its own code
            raise CoachError(message, code=code) from None
        raise CoachError(str(exc), code="dataset_invalid") from None
    except (BatchFailed, BatchProviderBusy) as exc:
        code, _, message = str(exc).partition(": ")
        raise CoachError(message or code, code=code if message else "batch_failed") from None


def _publish_outputs(store: BuildStore, build_id: str, out: Path, manifest: BuildManifest) -> None:
    """Write the dataset files next to each other, the manifest last: a manifest means a complete set."""
    out.mkdir(parents=True, exist_ok=True)
    staging = out / f".staging-{build_id}"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir()
    for name in OUTPUT_FILES:
        (staging / name).write_text(store.get_text(dataset_key(build_id, name)) or "", encoding="utf-8")
    for name in OPTIONAL_FILES:
        text = store.get_text(dataset_key(build_id, name))
        if text is not None:
            (staging / name.replace("/", "-")).write_text(text, encoding="utf-8")
    (staging / "validation_report.json").write_text(json.dumps(manifest.validation_report, indent=2) + "\n")
    (out / "manifest.json").unlink(missing_ok=True)
    for path in staging.iterdir():
        path.replace(out / path.name)
    staging.rmdir()
    (out / "manifest.json").write_text(manifest.model_dump_json(indent=2) + "\n", encoding="utf-8")


def skipped_note(scrape: dict[str, Any]) -> str:
    skips = {**scrape.get("skipped", {}), **({"unreadable": scrape["decode_errors"]}
                                              if scrape.get("decode_errors") else {})}
    if not skips:
        return ""
    return " (skipped: " + ", ".join(f"{reason} {n}" for reason, n in sorted(skips.items())) + ")"


def _publish_failure(store: BuildStore, request: BuildRequest, out: Path, step: str, exc: CoachError) -> None:
    """Leave OUT/manifest.json saying which step failed and why, never an earlier run's manifest."""
    from coach.domain.prompt import PROMPT_VERSION
    from coach.pipeline.scrape import default_model

    manifest = store.get_model(dataset_key(request.build_id, "manifest.json"), BuildManifest)
    if manifest is None:  # the step failed before the assembler counted anything
        manifest = BuildManifest(build_id=request.build_id, provider=request.provider, model=default_model(request),
                                 prompt_version=PROMPT_VERSION, source=request.source)
    if manifest.failure is None:
        manifest.failure = StepFailure(step=step, code=exc.code, message=exc.message)
    if step == "fine-tune":  # the dataset itself is complete: publish it with the manifest that says so
        _publish_outputs(store, request.build_id, out, manifest)
        return
    out.mkdir(parents=True, exist_ok=True)
    # Dataset files of an earlier run would not match this manifest; the records stay in the state folder.
    for name in ("train.jsonl", "validation.jsonl", "train_legacy.jsonl", "validation_legacy.jsonl"):
        (out / name).unlink(missing_ok=True)
    rejected = store.get_text(dataset_key(request.build_id, "rejected.jsonl"))
    if rejected is not None:
        (out / "rejected.jsonl").write_text(rejected, encoding="utf-8")
    (out / "manifest.json").write_text(manifest.model_dump_json(indent=2) + "\n", encoding="utf-8")


def _follow_fine_tune(job_id: str, store: BuildStore, normalised: dict[str, Any], build_id: str,
                      options: LocalBuildOptions, stream: TextIO, step: Step) -> None:
    """Poll the job (and, on Bedrock, its deployment) as the state machine would, evaluate the model, and
    publish it only if the gate passes (into the model registry the runtime uses)."""
    from coach.pipeline import finetune, finetune_bedrock

    def report(job: Any) -> None:
        where = f" ({job.deployment_arn})" if getattr(job, "deployment_arn", None) else ""
        stream.write(f"fine-tune {job_id}: {job.status}{where}\n")

    if options.request.fine_tune.backend == "bedrock":
        result = finetune_bedrock.follow(job_id, store=store, bedrock=runtime.bedrock(), build_id=build_id,
                                         interval_s=options.fine_tune_poll_s, on_poll=report)
    else:
        result = finetune.follow(job_id, client_factory=runtime.openai_client, store=store, build_id=build_id,
                                 interval_s=options.fine_tune_poll_s, on_poll=report)
    if result.job.error:
        stream.write(f"fine-tune failed: {result.job.error.code}: {result.job.error.message}\n")
        return
    if result.job.status != "succeeded":
        return
    job = result.job.model_dump(mode="json")
    evaluation = step("evaluate", {"request": normalised, "job": job})
    if not evaluation["passed"]:
        stream.write(f"not published: {evaluation['summary']}\n")
        return
    stream.write(f"evaluated: {evaluation['summary']}\n")
    published = step("finetune", {"action": "publish", "build_id": build_id, "job": job})
    stream.write(f"published {published['model']} to {published['parameter']}\n")




def run_flow(options: LocalBuildOptions, rt: BuildRuntime, stream: TextIO) -> LocalBuildResult:
    """The whole build over `rt`; a failed step leaves OUT/manifest.json saying which and why."""
    request = options.request
    started = time.monotonic()
    normalised = rt.step("checkinput", request.model_dump(mode="json"))
    scrape = rt.step("scraper", {"request": normalised})
    _announce(request, scrape, rt.resumed_note(), stream)
    rt.checkpoint()
    to_generate, batches_done = _batch_generation(options, rt, scrape["enqueued"], stream)
    drained = _generate(options, rt, to_generate, stream)
    progress = rt.step("progress", {"build_id": request.build_id, "run_id": scrape["run_id"],
                                    "enqueued": scrape["enqueued"]})
    _warn_unfinished(options, drained, progress["dead_lettered"], stream)
    assembled, started_job = _make_dataset(options, rt, normalised, scrape)
    if options.wait_for_fine_tune and started_job.get("job_id"):
        _follow_fine_tune(started_job["job_id"], rt.store, normalised, request.build_id, options, stream,
                          step=rt.step)
    rt.checkpoint()
    manifest = rt.store.get_model(assembled["manifest_key"], BuildManifest)
    if manifest is None:
        raise CoachError("the assembler wrote no manifest", code="manifest_missing")
    _publish_outputs(rt.store, request.build_id, options.out, manifest)
    # The assembler, a fine-tune's end and the evaluation each wrote the report as they changed the build.
    write_report_files(rt.report_store(), request.build_id, options.out, regenerate=False)
    return LocalBuildResult(manifest=manifest, out=options.out, elapsed_s=time.monotonic() - started,
                            generation_complete=drained and batches_done and progress["done"])


def _announce(request: BuildRequest, scrape: dict[str, Any], resumed_note: str, stream: TextIO) -> None:
    stream.write(
        f"build {request.build_id}: {scrape['stories']} stories"
        + (resumed_note if scrape.get("resumed") else "")
        + skipped_note(scrape)
        + f", {scrape['reused']} already have feedback, {scrape['enqueued']} to generate\n")
    for warning in scrape.get("warnings", [])[:20]:
        stream.write(f"warning: {warning}\n")


def _batch_generation(options: LocalBuildOptions, rt: BuildRuntime, to_generate: int,
                      stream: TextIO) -> tuple[int, bool]:
    """With --batch: follow the provider's batches; returns the stories left to generate synchronously and
    whether every batch finished."""
    if options.request.generation != "batch" or not to_generate:
        return to_generate, True
    from coach.local.batch_loop import follow_batches

    try:
        batches = follow_batches(options.request.build_id, rt.step, poll_s=options.batch_poll_s,
                                 timeout_s=options.generation_timeout_s, stream=stream, on_poll=rt.checkpoint)
    finally:
        rt.checkpoint()
    return batches.fallback, batches.finished


def _generate(options: LocalBuildOptions, rt: BuildRuntime, to_generate: int, stream: TextIO) -> bool:
    """Generate until the queue drains (True) or the timeout passes (False), with a progress bar."""
    worker = rt.generator()
    bar = ProgressBar(to_generate, stream)

    def done() -> int:
        return worker.stats.messages - worker.stats.failures

    def tick() -> None:
        failures = worker.stats.failures
        bar.update(done(), f"retries {failures}" if failures else "")
        rt.while_generating()

    try:
        drained = worker.run(on_tick=tick, timeout_s=options.generation_timeout_s) if to_generate else True
    finally:
        rt.checkpoint()  # interrupted (Ctrl-C) too: the workers finished their calls; keep what they wrote
    bar.update(to_generate if drained else done())
    bar.close()
    return drained


def _warn_unfinished(options: LocalBuildOptions, drained: bool, dead_lettered: int, stream: TextIO) -> None:
    if not drained:
        stream.write(f"warning: generation did not finish within {options.generation_timeout_s:.0f}s; "
                     "re-run the same build id to continue\n")
    if dead_lettered:
        stream.write(f"warning: {dead_lettered} messages are in the dead-letter queue; "
                     f"fix the cause, then `{redrive_hint(options)}`\n")


def _make_dataset(options: LocalBuildOptions, rt: BuildRuntime, normalised: dict[str, Any],
                  scrape: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Validate (the shard map), assemble and start the fine-tune: (the assembler's answer, the job's)."""
    request = options.request
    stage = "validate"
    try:
        shards = run_shard_map(request.build_id, scrape["run_id"], store=rt.store,
                               call=lambda event: rt.step("shard", event))
        # An earlier run's manifest must not pass for this run's if assembling fails.
        for name in ("manifest.json", "rejected.jsonl"):
            rt.store.delete(dataset_key(request.build_id, name))
        stage = "assemble"
        try:
            assembled = rt.step("assembler", {"request": normalised, "scrape": scrape, "shards": shards})
        finally:
            rt.checkpoint()
        stage = "fine-tune"
        started_job = rt.step("finetune", {"action": "start", "request": normalised, "dataset": assembled})
    except CoachError as exc:
        _publish_failure(rt.store, request, options.out, stage, exc)
        write_report_files(rt.store, request.build_id, options.out, regenerate=False)  # it says what went wrong
        rt.checkpoint()
        raise
    return assembled, started_job
