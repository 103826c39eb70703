"""`coach build`: one whole dataset build on this machine.

The flow mirrors the state machine: check input -> scrape -> generation -> progress -> validate -> assemble
-> fine-tune start (with --wait: follow the job, evaluate its model, publish it only if the gate passed).

Two runtimes run it. The default, direct one (coach.local.direct_build) calls the pipeline functions in this
process over local adapters: the state folder is the bucket, the queue is in memory, idempotency and budget
are files. `--emulate-aws` (this module) runs the real handlers against an in-process AWS emulator, with an
SQS poller and a mirror of the bucket in the state folder; it is also used when an endpoint is given, and
when the build needs S3 for a provider to read (Bedrock fine-tuning or batch inference, an s3:// source).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import sys
import threading
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any, TextIO

import boto3
from pydantic import BaseModel

from coach import runtime
from coach.adapters.bedrock import bedrock_region
from coach.adapters.bedrock import use_session as use_bedrock_session
from coach.adapters.storage import BuildStore, dataset_key, feedback_key
from coach.domain.records import BuildManifest, BuildRequest, StepFailure
from coach.errors import CoachError, ConfigError, InputError
from coach.local import mirror
from coach.local.dir_store import DirectoryStore
from coach.local.emulator import LocalStack, start_local_stack
from coach.local.file_lock import state_folder_lock
from coach.local.lambda_runtime import invoke
from coach.local.poller import SqsPoller
from coach.local.report_out import write_report_files
from coach.local.shard_map import run_shard_map
from coach.pipeline.assemble import cost_line
from coach.step_errors import (
    BatchFailed,
    BatchProviderBusy,
    DatasetInvalid,
    DatasetTooSmall,
    InvalidBuildRequest,
    NoStories,
    SourceFailed,
)

OUTPUT_FILES = ("train.jsonl", "validation.jsonl", "rejected.jsonl")
# Written only when the build produced them (legacy export, a followed fine-tune job).
OPTIONAL_FILES = ("train.bedrock.jsonl", "validation.bedrock.jsonl", "train_legacy.jsonl",
                  "validation_legacy.jsonl", "checks.json", "fine-tune/events.jsonl",
                  "fine-tune/metrics.json", "fine-tune/step_metrics.csv")


# Messages per generator invocation on the emulated path, as the template's SQS event source sends them.
SQS_BATCH_SIZE = 5


class LocalBuildOptions(BaseModel):
    request: BuildRequest
    out: Path
    state_dir: Path | None = None
    endpoint_url: str | None = None
    concurrency: int = 4
    batch_size: int = SQS_BATCH_SIZE
    generation_timeout_s: float = 3_600
    wait_for_fine_tune: bool = False
    fine_tune_poll_s: float = 30.0
    batch_poll_s: float = 30.0
    verbose: bool = False
    emulate_aws: bool = False

    @property
    def state(self) -> Path:
        return self.state_dir or self.out / ".state"


class LocalBuildResult(BaseModel):
    manifest: BuildManifest
    out: Path
    elapsed_s: float
    generation_complete: bool


def _quiet_powertools(verbose: bool) -> None:
    os.environ.setdefault("POWERTOOLS_SERVICE_NAME", "writing-coach")
    os.environ.setdefault("POWERTOOLS_METRICS_NAMESPACE", "WritingCoach")
    os.environ.setdefault("POWERTOOLS_TRACE_DISABLED", "1")
    os.environ.setdefault("POWERTOOLS_METRICS_DISABLED", "true")
    os.environ["POWERTOOLS_LOG_LEVEL"] = "INFO" if verbose else "ERROR"
    # A handler that fails before adding a metric flushes none; in a terminal that is noise, not news.
    warnings.filterwarnings("ignore", message="No application metrics to publish")


def check_provider(request: BuildRequest) -> None:
    if request.provider == "openai" and not os.environ.get("OPENAI_API_KEY"):
        raise ConfigError(
            "the openai provider needs an API key: set OPENAI_API_KEY (and OPENAI_BASE_URL to use another "
            "OpenAI-compatible server), or use --provider offline", code="provider_key_missing")
    options = request.fine_tune
    if options.enabled and options.backend == "bedrock" and not os.environ.get("AWS_ENDPOINT_URL_BEDROCK"):
        raise ConfigError(
            "a local build keeps its dataset in the local AWS emulator, which Amazon Bedrock cannot read: "
            "fine-tune on Bedrock from the deployed stack (docs/deploy.md), or point AWS_ENDPOINT_URL_BEDROCK "
            "at a Bedrock-compatible test server", code="bedrock_fine_tune_needs_cloud")
    if request.generation == "batch" and request.provider == "bedrock" and not (
            os.environ.get("AWS_ENDPOINT_URL_BEDROCK") and os.environ.get("COACH_BEDROCK_BATCH_ROLE_ARN")):
        raise ConfigError(
            "Bedrock batch inference reads its requests from S3, which cannot reach the local AWS emulator: run "
            "batch builds on Bedrock from the deployed stack, or point AWS_ENDPOINT_URL_BEDROCK at a "
            "Bedrock-compatible test server and set COACH_BEDROCK_BATCH_ROLE_ARN", code="bedrock_batch_needs_cloud")
    if request.provider == "openai":
        probe_openai()


def _keep_bedrock_credentials(request: BuildRequest) -> None:
    """Bedrock calls go to AWS with the user's credentials, while everything else uses the emulator's."""
    if request.provider != "bedrock" or os.environ.get("AWS_ENDPOINT_URL_BEDROCK_RUNTIME"):
        return
    session = boto3.session.Session()
    credentials = session.get_credentials()
    if credentials is None:
        raise ConfigError("the bedrock provider needs AWS credentials (a profile, environment variables or "
                          "an SSO login) with bedrock:InvokeModel on the model", code="bedrock_auth")
    frozen = credentials.get_frozen_credentials()
    use_bedrock_session(boto3.session.Session(
        aws_access_key_id=frozen.access_key, aws_secret_access_key=frozen.secret_key,
        aws_session_token=frozen.token, region_name=bedrock_region()))


def probe_openai(timeout_s: float = 10.0) -> None:
    """One free request (list models) before any story is queued: a server that cannot be reached fails the
    build now with its cause, instead of every story failing its retries and the build ending as too small.
    Any HTTP answer, even an error, shows the server is there; what it thinks of the key is the generator's."""
    import openai

    base_url = os.environ.get("OPENAI_BASE_URL") or None
    client = openai.OpenAI(api_key=os.environ.get("OPENAI_API_KEY"), base_url=base_url, timeout=timeout_s,
                           max_retries=0)
    try:
        client.models.list()
    except openai.APITimeoutError:
        raise ConfigError(f"the completion API at {client.base_url} did not answer within {timeout_s:g}s: check "
                          "OPENAI_BASE_URL", code="upstream_unreachable") from None
    except openai.APIConnectionError as err:
        cause = " ".join(str(err.__cause__ or err).split())[:200]
        raise ConfigError(f"cannot reach the completion API at {client.base_url}: {cause}; check OPENAI_BASE_URL",
                          code="upstream_unreachable") from None
    except openai.APIError:
        pass
    finally:
        client.close()


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


Step = Callable[[str, dict[str, Any]], Any]


def _step(name: str, event: dict[str, Any], call: Step = invoke) -> Any:
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


def _skipped_note(scrape: dict[str, Any]) -> str:
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
                      options: LocalBuildOptions, stream: TextIO, step: Step = _step) -> None:
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


def needs_emulated_aws(options: LocalBuildOptions) -> str | None:
    """Why this build must run against the AWS emulator, or None when the direct runtime can run it."""
    request = options.request
    if options.emulate_aws:
        return "--emulate-aws"
    if options.endpoint_url:
        return "--endpoint-url"
    if request.source.kind == "s3":
        return "an s3:// source"
    if request.fine_tune.enabled and request.fine_tune.backend == "bedrock":
        return "Bedrock fine-tuning reads its dataset from S3"
    if request.generation == "batch" and request.provider == "bedrock":
        return "Bedrock batch inference reads its requests from S3"
    return None


def run_local_build(options: LocalBuildOptions, *, stream: TextIO | None = None) -> LocalBuildResult:
    """Run the build on the direct runtime unless it needs the emulator; `coach builds` can then list it."""
    stream = stream or sys.stderr  # read at call time: tests swap sys.stderr
    from coach.local import build_index

    build_id = options.request.build_id
    check_provider(options.request)  # before anything is written: a build that cannot start leaves no state
    with state_folder_lock(options.state):
        build_index.mark_running(options.state, build_id)
        ended = "interrupted (re-run to resume)"
        try:
            if needs_emulated_aws(options) is None:
                from coach.local.direct_build import run_direct_build

                result = run_direct_build(options, stream=stream)
            else:
                result = run_emulated_build(options, stream=stream)
            ended = "complete" if result.generation_complete else "incomplete (re-run to resume)"
            return result
        except CoachError:
            ended = "failed"  # the manifest says at which step and why
            raise
        finally:
            build_index.mark_ended(options.state, build_id, ended)


def run_emulated_build(options: LocalBuildOptions, *, stream: TextIO | None = None) -> LocalBuildResult:
    stream = stream or sys.stderr  # read at call time: tests swap sys.stderr
    request = options.request
    _keep_bedrock_credentials(request)
    saved_env = dict(os.environ)
    _quiet_powertools(options.verbose)
    started = time.monotonic()
    stack: LocalStack = start_local_stack(options.endpoint_url)
    # Every worker may have a call in flight: the provider's connection pool holds them all.
    os.environ["COACH_HTTP_POOL"] = str(max(10, options.concurrency))
    runtime.reset()
    try:
        s3 = boto3.client("s3", endpoint_url=stack.endpoint_url)
        store = BuildStore(stack.bucket, s3)
        state = options.state
        restored = mirror.restore(store, state, request.build_id) if options.endpoint_url is None else 0
        known: dict[str, str] = {}
        normalised = _step("checkinput", request.model_dump(mode="json"))
        scrape = _step("scraper", {"request": normalised})
        stream.write(
            f"build {request.build_id}: {scrape['stories']} stories"
            + (f" (resumed, {restored} records restored)" if scrape.get("resumed") else "")
            + _skipped_note(scrape)
            + f", {scrape['reused']} already have feedback, {scrape['enqueued']} to generate\n")
        for warning in scrape.get("warnings", [])[:20]:
            stream.write(f"warning: {warning}\n")
        mirror.save(store, state, request.build_id, known=known)
        to_generate = scrape["enqueued"]
        batches_done = True
        if request.generation == "batch" and to_generate:
            from coach.local.batch_loop import follow_batches

            try:
                batches = follow_batches(
                    request.build_id, _step, poll_s=options.batch_poll_s, timeout_s=options.generation_timeout_s,
                    stream=stream, on_poll=lambda: mirror.save(store, state, request.build_id, known=known))
            finally:
                mirror.save(store, state, request.build_id, known=known)
            to_generate, batches_done = batches.fallback, batches.finished

        def keep_batch(messages: list[dict[str, Any]]) -> None:
            # Each batch's records reach the disk before its messages are deleted: a crash (kill -9) then
            # loses at most the critiques in flight, not everything since the last periodic save.
            for message in messages:
                attributes = message.get("MessageAttributes", {})
                build_id = attributes.get("build_id", {}).get("StringValue")
                story_id = attributes.get("story_id", {}).get("StringValue")
                key = feedback_key(build_id, story_id) if build_id and story_id else None
                text = store.get_text(key) if key else None
                if key and text is not None:
                    target = state / key
                    target.parent.mkdir(parents=True, exist_ok=True)
                    tmp = target.with_name(f"{target.name}.{threading.get_ident()}.tmp")
                    tmp.write_text(text, encoding="utf-8")
                    tmp.replace(target)  # atomic, as the periodic save writes

        poller = SqsPoller(boto3.client("sqs", endpoint_url=stack.endpoint_url), stack.queue_url,
                           stack.queue_arn, batch_size=options.batch_size, concurrency=options.concurrency,
                           after_batch=keep_batch)
        bar = ProgressBar(to_generate, stream)
        last_save = [time.monotonic()]

        def tick() -> None:
            bar.update(poller.stats.messages - poller.stats.failures,
                       f"retries {poller.stats.failures}" if poller.stats.failures else "")
            if time.monotonic() - last_save[0] > 2.0:  # a crash loses at most a couple of seconds of work
                mirror.save(store, state, request.build_id, known=known)
                last_save[0] = time.monotonic()

        try:
            drained = (poller.run(on_tick=tick, timeout_s=options.generation_timeout_s)
                       if to_generate else True)
        except BaseException:
            # Interrupted (Ctrl-C): the workers have finished their batches; keep what they wrote for the re-run.
            mirror.save(store, state, request.build_id, known=known)
            raise
        bar.update(to_generate if drained else poller.stats.messages - poller.stats.failures)
        bar.close()
        mirror.save(store, state, request.build_id, known=known)
        # The poller has just watched the queue drain, so the progress check need not wait to confirm it.
        os.environ["COACH_QUEUE_DRAIN_CONFIRM_SECONDS"] = "0"
        progress = _step("progress", {"build_id": request.build_id, "run_id": scrape["run_id"],
                                        "enqueued": scrape["enqueued"]})
        if not drained:
            stream.write(f"warning: generation did not finish within {options.generation_timeout_s:.0f}s; "
                         "re-run the same build id to continue\n")
        if progress["dead_lettered"]:
            stream.write(f"warning: {progress['dead_lettered']} messages are in the dead-letter queue; "
                         f"fix the cause, then `{redrive_hint(options)}`\n")

        step = "validate"
        try:
            shards = run_shard_map(request.build_id, scrape["run_id"], store=store,
                                   call=lambda event: _step("shard", event))
            # An earlier run's manifest must not pass for this run's if assembling fails.
            for name in ("manifest.json", "rejected.jsonl"):
                s3.delete_object(Bucket=stack.bucket, Key=dataset_key(request.build_id, name))
            step = "assemble"
            try:
                assembled = _step("assembler", {"request": normalised, "scrape": scrape, "shards": shards})
            finally:
                mirror.save(store, state, request.build_id, known=known)
            step = "fine-tune"
            started_job = _step("finetune", {"action": "start", "request": normalised, "dataset": assembled})
        except CoachError as exc:
            _publish_failure(store, request, options.out, step, exc)
            write_report_files(store, request.build_id, options.out, regenerate=False)  # it says what went wrong
            mirror.save(store, state, request.build_id, known=known)
            raise
        if options.wait_for_fine_tune and started_job.get("job_id"):
            _follow_fine_tune(started_job["job_id"], store, normalised, request.build_id, options, stream)
        mirror.save(store, state, request.build_id, known=known)
        manifest = store.get_model(assembled["manifest_key"], BuildManifest)
        if manifest is None:
            raise CoachError("the assembler wrote no manifest", code="manifest_missing")
        _publish_outputs(store, request.build_id, options.out, manifest)
        write_report_files(DirectoryStore(state), request.build_id, options.out)  # the mirror: fast local reads
        return LocalBuildResult(manifest=manifest, out=options.out, elapsed_s=time.monotonic() - started,
                                generation_complete=drained and batches_done and progress["done"])
    finally:
        stack.stop()
        # The emulator's endpoint must not leak into whatever runs next in this process.
        os.environ.clear()
        os.environ.update(saved_env)
        use_bedrock_session(None)
        runtime.reset()


def generation_cost(m: BuildManifest) -> str:
    unknown = m.cost.unpriced_models
    if not unknown:
        return f"${m.cost.generation_usd:.4f}"
    note = f"unknown (no price for {', '.join(unknown)}: add it to COACH_PRICE_TABLE)"
    return f"${m.cost.generation_usd:.4f} + {note}" if m.cost.generation_usd else note


def summary_table(result: LocalBuildResult) -> str:
    m = result.manifest
    c = m.counts
    rows: list[tuple[str, str]] = [
        ("build", m.build_id),
        ("provider / model", f"{m.provider} / {m.model}"),
        ("prompt version", m.prompt_version),
        ("stories", str(c.stories)),
        ("skipped (source)", _skipped_note({"skipped": c.skipped, "decode_errors": c.decode_errors})
         .removeprefix(" (skipped: ").removesuffix(")") or "none"),
        ("generated (now / reused)", f"{c.generated} ({c.generated_now} / {c.reused})"),
    ]
    if len(c.by_model) > 1:  # a mixed build says who wrote what
        rows += [(f"  by {who}", str(n)) for who, n in c.by_model.items()]
    rows += [
        ("failed / skipped (budget)", f"{c.failed} / {c.skipped_budget}"),
        ("accepted", str(c.accepted)),
        ("rejected", str(c.rejected)),
    ]
    rows += [(f"  {reason}", str(n)) for reason, n in sorted(c.rejected_by_reason.items())]
    estimate = " (estimated)" if m.tokens.usage_estimated else " (as billed)"
    rows += [
        ("examples (train / validation)", f"{c.train_examples} / {c.validation_examples}"),
        ("tokens (prompt / completion)", f"{m.tokens.prompt_tokens} / {m.tokens.completion_tokens}{estimate}"),
        ("dataset tokens", f"{m.tokens.dataset_tokens} [{m.tokens.method}"
         + (", estimated]" if m.tokens.method.startswith("chars") else "]")),
        ("generation cost", generation_cost(m) + (
            f" (${m.cost.generation_batch_usd:.4f} at batch prices; synchronous calls: "
            f"${m.cost.generation_sync_equivalent_usd:.4f})" if m.cost.generation_batch_usd else "")),
    ]
    if m.budget_usd is not None:
        rows.append(("budget", f"${m.budget_usd:.4f}"))
    rows += [
        ("fine-tune estimate", cost_line(m).removeprefix("fine-tune estimate: ")),
        ("fine-tune", m.fine_tune.status + (f": {m.fine_tune.reason}" if m.fine_tune.reason else "")
         + (f" (job {m.fine_tune.job_id})" if m.fine_tune.job_id and not m.fine_tune.fine_tuned_model else "")
         + (f" ({m.fine_tune.fine_tuned_model})" if m.fine_tune.fine_tuned_model else "")
         + (f": {m.fine_tune.error.code}: {m.fine_tune.error.message}" if m.fine_tune.error else "")),
        ("elapsed", f"{result.elapsed_s:.1f}s"),
    ]
    width = max(len(k) for k, _ in rows)
    return "\n".join(f"{k.ljust(width)}  {v}" for k, v in rows)
