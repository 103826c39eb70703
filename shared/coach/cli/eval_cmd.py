"""`coach eval`: score a critic on a build's held-out stories (or on any stories) and apply the gate.

    coach eval BUILD_ID --model ID [--baseline ID|teacher|published|recorded:ID|none] [--judge ID] [--record]
    coach eval --stories samples --model offline

The build's records are read from a local build's folder (--out / --state-dir, as `coach build` left
them) or from S3 (--bucket, with --endpoint-url for an emulator). The evaluation set, the answers and the
report are written under the build's eval/ prefix. `--record` keeps the model's answers as a golden record,
so a replacement can be compared with it (`--baseline recorded:ID`) after the original model is retired.
Exit codes: 0 the gate passed; 5 the gate refused the model; 2 bad input or configuration.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from coach.domain.records import EvaluationOptions, GateConfig, SourceSpec, slugify
from coach.errors import InputError, describe_validation_error

GATE_REFUSED = 5


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("build_id", nargs="?", metavar="BUILD_ID", help="the build whose held-out stories to use")
    parser.add_argument("--model", required=True,
                        help="the critic to score: offline, openai:MODEL or a model id (e.g. ft:gpt-4o-mini:...)")
    parser.add_argument("--baseline", default="none",
                        help="compare with: a model id, teacher (the build's critic, full prompt), published "
                             "(the model the API serves), recorded:ID (a golden record), none (default)")
    parser.add_argument("--judge", help="a model id that judges each pair of critiques, both orders")
    parser.add_argument("--record", action="store_true", help="keep the model's answers as a golden record")
    parser.add_argument("--fresh", action="store_true",
                        help="ask again for items already answered on this build (default: reuse those answers)")
    parser.add_argument("--stories", help="score on these stories instead of a build: samples, a folder, a .jsonl")
    parser.add_argument("--max-stories", type=int, default=EvaluationOptions().max_stories,
                        help="held-out stories in a new evaluation set (each also gets one copy per planted flaw)")
    parser.add_argument("--layout", choices=("compact", "full"), default="compact",
                        help="prompt layout for --model: compact (a fine-tune, default) or full (a base model)")
    parser.add_argument("--out", type=Path, help="a local build's output folder (default: out/<build id>)")
    parser.add_argument("--state-dir", type=Path, help="a local build's records (default: OUT/.state)")
    parser.add_argument("--bucket", help="read the build from this S3 bucket instead of a local folder")
    parser.add_argument("--endpoint-url", help="an AWS emulator's URL (S3, and SSM for --baseline published)")
    parser.add_argument("--region", help="AWS region (default: the credential chain's)")
    parser.add_argument("--parameter", help="SSM parameter of the served model (default: $COACH_MODEL_PARAMETER "
                                            "or /coach/critique-model)")
    parser.add_argument("--concurrency", type=int, default=EvaluationOptions().concurrency,
                        help="requests at once to a model")
    gate = GateConfig()
    parser.add_argument("--min-pass-rate", type=float, default=gate.min_pass_rate)
    parser.add_argument("--min-grounding", type=float, default=gate.min_grounding)
    parser.add_argument("--max-loop-rate", type=float, default=gate.max_loop_rate)
    parser.add_argument("--min-flaw-lift", type=float, default=gate.min_flaw_lift)
    parser.add_argument("--margin", type=float, default=gate.margin, help="how much worse than the baseline")
    parser.add_argument("--json", action="store_true", help="print the report as JSON")


def _aws_kwargs(args: argparse.Namespace) -> dict[str, Any]:
    kwargs: dict[str, Any] = {}
    if args.endpoint_url:
        kwargs["endpoint_url"] = args.endpoint_url
        kwargs["aws_access_key_id"] = os.environ.get("AWS_ACCESS_KEY_ID", "local")
        kwargs["aws_secret_access_key"] = os.environ.get("AWS_SECRET_ACCESS_KEY", "local")
    region = args.region or os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION")
    if region or args.endpoint_url:
        kwargs["region_name"] = region or "us-east-1"
    return kwargs


def open_store(args: argparse.Namespace, build_id: str) -> Any:
    """The build's records: S3 with --bucket, else a local build's state folder."""
    if args.bucket:
        import boto3

        from coach.adapters.storage import BuildStore

        return BuildStore(args.bucket, boto3.client("s3", **_aws_kwargs(args)))
    from coach.local.dir_store import DirectoryStore

    state = args.state_dir or (args.out or Path("out") / build_id) / ".state"
    if not args.stories and not state.is_dir():
        raise InputError(f"no local build '{build_id}' under {state}: give the build's --out (or --state-dir), "
                         "--bucket for a deployed build, or --stories", code="build_not_found")
    return DirectoryStore(state)


def _published_model(args: argparse.Namespace) -> Any:
    def read() -> str | None:
        import boto3

        from coach.adapters.model_registry import ModelRegistry
        from coach.settings import DEFAULT_MODEL_PARAMETER, Settings

        parameter = args.parameter or Settings.from_env().model_parameter or DEFAULT_MODEL_PARAMETER
        current = ModelRegistry(boto3.client("ssm", **_aws_kwargs(args)), parameter).current()
        return current.model if current else None

    return read


def _options(args: argparse.Namespace) -> EvaluationOptions:
    try:
        return EvaluationOptions(
            baseline=args.baseline, judge=args.judge, max_stories=args.max_stories, concurrency=args.concurrency,
            gate=GateConfig(min_pass_rate=args.min_pass_rate, min_grounding=args.min_grounding,
                            max_loop_rate=args.max_loop_rate, min_flaw_lift=args.min_flaw_lift, margin=args.margin),
        )
    except ValidationError as exc:
        raise InputError(f"invalid option: {describe_validation_error(exc)}", code="invalid_option") from None


def _stories_eval_set(args: argparse.Namespace, build_id: str) -> Any:
    from coach.adapters.sources import load_stories
    from coach.cli.build_cmd import source_spec
    from coach.pipeline.evaluate import eval_set_from_stories

    spec_args = argparse.Namespace(source=args.stories, subreddit="WritingPrompts", listing="top",
                                   time_filter="month", post_limit=25, min_chars=300, max_chars=20_000)
    spec: SourceSpec = source_spec(spec_args)
    stories = load_stories(spec, limit=args.max_stories).stories
    if not stories:
        raise InputError(f"no usable stories in {args.stories}", code="no_stories")
    return eval_set_from_stories(build_id, stories, max_stories=args.max_stories, origin=args.stories)


def run(args: argparse.Namespace, out: Any = None) -> int:
    from coach.adapters.completion import make_provider
    from coach.pipeline.evaluate import evaluate, parse_model_spec

    out = out or sys.stdout
    if not args.build_id and not args.stories:
        raise InputError("name a build (BUILD_ID) or give --stories", code="invalid_option")
    if args.concurrency < 1 or args.max_stories < 1:
        raise InputError("--concurrency and --max-stories must be 1 or more", code="invalid_option")
    build_id = args.build_id or slugify(f"eval-{Path(args.stories).name}", max_len=60)
    options = _options(args)
    candidate = parse_model_spec(args.model, layout=args.layout)
    store = open_store(args, build_id)
    eval_set = _stories_eval_set(args, build_id) if args.stories else None

    def provider_for(spec: Any) -> Any:
        return make_provider(spec.provider, spec.model)

    report, key = evaluate(build_id, candidate, store=store, options=options, provider_for=provider_for,
                           published=_published_model(args), record=args.record, eval_set=eval_set,
                           reuse=not args.fresh)
    if args.json:
        out.write(json.dumps({"report_key": key, **report.model_dump(mode="json")}, indent=2) + "\n")
    else:
        from coach.cli.eval_table import render

        out.write(render(report, key, getattr(store, "bucket", "")))
    return 0 if report.gate.passed else GATE_REFUSED
