"""`coach build`: a whole local dataset build (see coach.local.build)."""

from __future__ import annotations

import argparse
import os
import re
import shlex
import sys
from pathlib import Path

from pydantic import ValidationError

from coach.domain.records import BatchOptions, BuildRequest, FineTuneOptions, SourceSpec, slugify
from coach.errors import InputError, describe_validation_error


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--source", default="samples",
                        help="samples | reddit[:SUBREDDIT] | a folder of .txt/.md files | one .txt/.md story | "
                             "a .jsonl file | s3://bucket/prefix (needs --endpoint-url locally)")
    parser.add_argument("--limit", type=int, help="at most this many stories")
    parser.add_argument("--provider", default="offline", help="offline (default), bedrock or openai")
    parser.add_argument("--model", help="completion model (bedrock default: amazon.nova-pro-v1:0)")
    parser.add_argument("--out", type=Path, help="output folder (default: out/<build id>)")
    parser.add_argument("--build-id", help="re-use an id to resume a build (default: derived from the source)")
    parser.add_argument("--concurrency", type=int, default=4, help="critiques requested at once")
    parser.add_argument("--batch-size", type=int,
                        help="with --emulate-aws: SQS messages per generator invocation (default 5)")
    parser.add_argument("--batch", action="store_true",
                        help="generate through the provider's batch API at the batch price (openai, bedrock)")
    parser.add_argument("--batch-resubmits", type=int, default=2,
                        help="new batches for failed or expired requests before the fallback (default 2)")
    parser.add_argument("--batch-fallback", choices=("sync", "fail"), default="sync",
                        help="then: synchronous calls (default) or record them as failed")
    parser.add_argument("--batch-poll-seconds", type=float, default=30.0, help="batch status poll interval")
    parser.add_argument("--budget", type=float, dest="budget_usd", help="stop paying for critiques at this USD")
    parser.add_argument("--validation-fraction", type=float, default=0.1)
    parser.add_argument("--fine-tune", action="store_true", help="start a fine-tuning job at the end")
    parser.add_argument("--fine-tune-backend", choices=("bedrock", "openai"), default="bedrock",
                        help="where to fine-tune: bedrock (default) or openai (organisations that still have it)")
    parser.add_argument("--base-model", default="",
                        help="model to fine-tune (bedrock default: amazon.nova-lite-v1:0:300k; openai: required)")
    parser.add_argument("--epochs", type=int, help="fine-tuning epochs (default: the backend's rule)")
    parser.add_argument("--wait", action="store_true",
                        help="with --fine-tune: follow the job until it ends and publish the model")
    parser.add_argument("--poll-seconds", type=float, default=30.0, help="fine-tune status poll interval")
    parser.add_argument("--skip-seen", action="store_true",
                        help="leave out stories that an earlier build already took (counted in the summary)")
    parser.add_argument("--allow-mixed-models", action="store_true",
                        help="assemble even when critiques of the build come from several providers/models")
    parser.add_argument("--legacy-export", action="store_true",
                        help="also write {prompt, completion} JSONL for completion-style trainers")
    parser.add_argument("--subreddit", default="WritingPrompts")
    parser.add_argument("--listing", default="top", help="top, hot or new (reddit)")
    parser.add_argument("--time-filter", default="month", help="hour, day, week, month, year, all (top)")
    parser.add_argument("--post-limit", type=int, default=25)
    parser.add_argument("--min-chars", type=int, default=300)
    parser.add_argument("--max-chars", type=int, default=20_000)
    parser.add_argument("--emulate-aws", action="store_true",
                        help="run the real Lambda handlers against an in-process AWS emulator (slower; the default "
                             "calls the same pipeline functions directly, with the state folder as the store)")
    parser.add_argument("--endpoint-url", help="use this AWS emulator instead of starting one (implies --emulate-aws)")
    parser.add_argument("--state-dir", type=Path, help="where the build's records persist (default: OUT/.state)")
    parser.add_argument("--verbose", action="store_true", help="show the handlers' logs")


# Request fields -> the flags that set them, so a refused value is named as the user typed it.
FIELD_FLAGS = {
    "build_id": "--build-id", "limit": "--limit", "model": "--model", "budget_usd": "--budget",
    "validation_fraction": "--validation-fraction", "fine_tune.base_model": "--base-model",
    "fine_tune.epochs": "--epochs", "source.subreddit": "--subreddit", "source.listing": "--listing",
    "source.time_filter": "--time-filter", "source.post_limit": "--post-limit", "source.min_chars": "--min-chars",
    "source.max_chars": "--max-chars", "source.path": "--source", "source": "--source",
}


def describe_flags(exc: ValidationError, limit: int = 3) -> str:
    """'--budget: Input should be greater than 0; ...' for the request fields the flags filled."""
    parts = []
    for err in exc.errors()[:limit]:
        field = ".".join(str(p) for p in err.get("loc", ()))
        message = str(err.get("msg", "invalid")).removeprefix("Value error, ")
        parts.append(f"{FIELD_FLAGS.get(field, field)}: {message}" if field else message)
    return "; ".join(parts) or describe_validation_error(exc)


def check_option_pairs(args: argparse.Namespace) -> None:
    """Options that mean nothing on their own, or out of range, are refused rather than ignored."""
    if args.wait and not args.fine_tune:
        raise InputError("--wait follows a fine-tuning job: add --fine-tune", code="invalid_option")
    if args.poll_seconds <= 0:
        raise InputError("--poll-seconds must be more than 0", code="invalid_option")
    check_worker_options(args.concurrency, args.batch_size, emulated=args.emulate_aws or bool(args.endpoint_url))


def check_worker_options(concurrency: int, batch_size: int | None, *, emulated: bool,
                         emulator_flag: str = "--emulate-aws") -> None:
    if concurrency < 1:
        raise InputError("--concurrency must be >= 1", code="invalid_option")
    if batch_size is None:
        return
    if not emulated:
        # The direct build has no SQS batches: each of its --concurrency workers takes one story at a time.
        raise InputError(f"--batch-size is the SQS batch of the emulated generator: add {emulator_flag}, or "
                         "leave it out (the direct build runs --concurrency calls at once)", code="invalid_option")
    if not 1 <= batch_size <= 10:
        raise InputError("--batch-size must be between 1 and 10 (SQS's limit for a Lambda batch)",
                         code="invalid_option")


def source_spec(args: argparse.Namespace) -> SourceSpec:
    raw = args.source.strip()
    common = {"subreddit": args.subreddit, "listing": args.listing, "time_filter": args.time_filter,
              "post_limit": args.post_limit, "min_chars": args.min_chars, "max_chars": args.max_chars}
    if raw == "samples":
        return SourceSpec(kind="samples", **common)
    if raw == "reddit" or raw.startswith("reddit:"):
        if raw.startswith("reddit:"):
            common["subreddit"] = raw.split(":", 1)[1]
        return SourceSpec(kind="reddit", **common)
    if raw.startswith("s3://"):
        return SourceSpec(kind="s3", path=raw, **common)
    scheme = re.match(r"^([A-Za-z][A-Za-z0-9+.-]+):/", raw)
    if scheme:  # a URL is never a folder name (s3:/bucket, http://, ftp://...)
        raise InputError(f"--source {raw}: the {scheme.group(1)}: scheme is not a story source; use samples, "
                         "reddit[:SUBREDDIT], a folder, a .txt/.md story file, a .jsonl file, or s3://bucket/prefix",
                         code="source_unsupported")
    kind = "jsonl" if raw.lower().endswith(".jsonl") else "directory"
    return SourceSpec(kind=kind, path=str(Path(raw).expanduser().resolve()), **common)


def check_s3_source(spec: SourceSpec, endpoint_url: str | None) -> None:
    """Locally, S3 is the build's own in-process emulator unless --endpoint-url names another one."""
    if spec.kind == "s3" and not endpoint_url:
        raise InputError(
            f"--source {spec.path}: a local build reads S3 through its own in-process AWS emulator, which does "
            "not hold your bucket; give --endpoint-url of an emulator that holds it, or copy the stories to a "
            f"folder (aws s3 sync {spec.path} ./stories) and use --source ./stories", code="source_s3_needs_endpoint")


def request_from_args(args: argparse.Namespace) -> BuildRequest:
    if args.provider not in ("offline", "openai", "bedrock"):
        raise InputError(f"unknown provider '{args.provider}': use offline, bedrock or openai",
                         code="unknown_provider")
    model = args.model or (os.environ.get("COACH_MODEL") if args.provider == "openai" else None)
    if args.provider == "openai" and not model:
        from coach.adapters.completion import OPENAI_MODEL_REQUIRED

        raise InputError(OPENAI_MODEL_REQUIRED, code="model_required")
    try:
        spec = source_spec(args)
        build_id = args.build_id or slugify(
            f"{spec.kind}-{Path(spec.path).name if spec.path else spec.subreddit if spec.kind == 'reddit' else ''}"
            f"-{args.provider}", max_len=60)
        return BuildRequest(
            build_id=build_id, source=spec, limit=args.limit, provider=args.provider, model=model,
            budget_usd=args.budget_usd, validation_fraction=args.validation_fraction,
            allow_mixed_models=args.allow_mixed_models, skip_seen=args.skip_seen,
            generation="batch" if args.batch else "sync",
            batch=BatchOptions(max_resubmits=args.batch_resubmits, fallback=args.batch_fallback),
            fine_tune=FineTuneOptions(enabled=args.fine_tune, backend=args.fine_tune_backend,
                                      base_model=args.base_model, epochs=args.epochs,
                                      legacy_export=args.legacy_export),
        )
    except ValidationError as exc:
        raise InputError(describe_flags(exc), code="invalid_option") from None


def usable_folder(flag: str, folder: Path) -> None:
    """Fail before any work when the output folder cannot be one: not after paying for critiques."""
    if folder.exists() and not folder.is_dir():
        raise InputError(f"{flag} {folder} is a file: give a folder for the build's output", code="out_not_a_folder")
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InputError(f"cannot create {flag} folder {folder}: {exc.strerror or exc}", code="out_unwritable") \
            from None
    if not os.access(folder, os.W_OK):
        raise InputError(f"{flag} folder {folder} is not writable", code="out_unwritable")


def run(args: argparse.Namespace) -> int:
    from coach.local.build import SQS_BATCH_SIZE, LocalBuildOptions, run_local_build, summary_table

    check_option_pairs(args)
    request = request_from_args(args)
    check_s3_source(request.source, args.endpoint_url)
    out = args.out or Path("out") / request.build_id
    for flag, folder in (("--out", out), ("--state-dir", args.state_dir)):
        if folder is not None:
            usable_folder(flag, folder)
    result = run_local_build(LocalBuildOptions(
        request=request, out=out, state_dir=args.state_dir, endpoint_url=args.endpoint_url,
        concurrency=args.concurrency, batch_size=args.batch_size or SQS_BATCH_SIZE, verbose=args.verbose,
        emulate_aws=args.emulate_aws, wait_for_fine_tune=args.wait, fine_tune_poll_s=args.poll_seconds,
        batch_poll_s=args.batch_poll_seconds,
    ))
    print(summary_table(result))
    print(f"\ndataset written to {out}/ (train.jsonl, validation.jsonl, rejected.jsonl, manifest.json)")
    print(f"report: {out / 'report.html'} (open it in a browser); dataset card: {out / 'README.md'}")
    job = result.manifest.fine_tune
    if job.job_id and job.status in ("validating_files", "queued", "running") and not args.wait:
        again = shlex.join(["coach", *sys.argv[1:], "--wait"])
        print(f"fine-tuning job {job.job_id} is {job.status}; follow it (and publish the model when it succeeds) "
              f"with:\n  {again}\nThe build is resumed, nothing is generated or uploaded again.")
    if result.manifest.fine_tune.status in ("failed", "cancelled"):
        return 4
    evaluation = result.manifest.evaluation
    if evaluation is not None and not evaluation.passed and not evaluation.forced:
        return 5  # the fine-tune finished, but the evaluation gate refused to publish it
    return 0 if result.generation_complete else 3
