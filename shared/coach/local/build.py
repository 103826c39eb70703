"""`coach build`: one whole dataset build on this machine, and the summary it prints.

Two runtimes run the same flow (coach.local.build_flow). The default, direct one (coach.local.direct_build)
calls the pipeline functions in this process over local adapters: the state folder is the bucket, the queue
is in memory, idempotency and budget are files. The emulated one (coach.local.emulated_build) runs the real
handlers against an in-process AWS emulator; it is used with --emulate-aws or an endpoint, and when the
build needs S3 for a provider to read (Bedrock fine-tuning or batch inference, an s3:// source).
"""

from __future__ import annotations

import os
import sys
from typing import TextIO

from coach.domain.records import BuildManifest, BuildRequest
from coach.errors import CoachError, ConfigError
from coach.local.build_flow import skipped_note
from coach.local.build_options import SQS_BATCH_SIZE, LocalBuildOptions, LocalBuildResult
from coach.local.file_lock import state_folder_lock
from coach.pipeline.assemble import cost_line

__all__ = ["SQS_BATCH_SIZE", "LocalBuildOptions", "LocalBuildResult", "needs_emulated_aws", "run_local_build",
           "summary_table"]


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
                from coach.local.emulated_build import run_emulated_build

                result = run_emulated_build(options, stream=stream)
            ended = "complete" if result.generation_complete else "incomplete (re-run to resume)"
            return result
        except CoachError:
            ended = "failed"  # the manifest says at which step and why
            raise
        finally:
            build_index.mark_ended(options.state, build_id, ended)


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
        ("skipped (source)", skipped_note({"skipped": c.skipped, "decode_errors": c.decode_errors})
         .removeprefix(" (skipped: ").removesuffix(")") or "none"),
        ("generated (now / reused)", f"{c.generated} ({c.generated_now} / {c.reused})"),
    ]
    if len(c.by_model) > 1:  # a mixed build says who wrote what
        rows += [(f"  by {who}", str(n)) for who, n in c.by_model.items()]
    rows += [
        ("failed / skipped (budget)", f"{c.failed} / {c.skipped_budget}"),
        *([("left out (shard batches failed)", m.shard_failures.describe())] if m.shard_failures else []),
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
