"""`coach models`: list the published fine-tuned models with their scores, roll the critique API back to an
earlier one, or publish a model the evaluation gate refused.

    coach models [list] [--json]
    coach models rollback [--to MODEL | --steps N]
    coach models promote VERSION --force [--reason TEXT] [--out DIR | --bucket NAME]

`promote` takes a build id (the fine-tuned model its Evaluate step refused) or a version number from the
list. Publishing over the gate needs --force and is recorded three times: in the parameter version's
description, in the build's manifest (evaluation.forced) and in builds/{id}/eval/promotions.jsonl.

The models live in the SSM parameter the critique API reads (see coach.adapters.model_registry). Point the
command at a running AWS emulator with --endpoint-url, or at AWS itself through the default credential
chain (profile, environment, SSO) with --parameter and --region.
"""

from __future__ import annotations

import argparse
import getpass
import json
import os
import sys
from pathlib import Path
from typing import Any

from coach.domain.retirement import parse_shutdown, retirement_notice
from coach.errors import CoachError, ConfigError, InputError
from coach.settings import DEFAULT_MODEL_PARAMETER, Settings

DEFAULT_PARAMETER = DEFAULT_MODEL_PARAMETER


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("action", nargs="?", default="list", choices=("list", "rollback", "promote"),
                        help="list (default), rollback or promote")
    parser.add_argument("version", nargs="?", metavar="VERSION",
                        help="promote: a build id (its evaluated fine-tune) or a parameter version number")
    parser.add_argument("--force", action="store_true", help="promote: publish even though the gate refused it")
    parser.add_argument("--reason", default="", help="promote: why (kept with the record)")
    parser.add_argument("--out", type=Path, help="promote: a local build's output folder (default: out/<build>)")
    parser.add_argument("--state-dir", type=Path, help="promote: a local build's records (default: OUT/.state)")
    parser.add_argument("--bucket", help="promote: the S3 bucket of a deployed build")
    parser.add_argument("--to", dest="to_model", metavar="MODEL", help="rollback: serve this published model")
    parser.add_argument("--steps", type=int, help="rollback: go back this many publications (default 1)")
    parser.add_argument("--parameter", help="SSM parameter name (default: $COACH_MODEL_PARAMETER or "
                                            f"{DEFAULT_PARAMETER})")
    parser.add_argument("--endpoint-url", help="an AWS emulator's URL (default: AWS via the credential chain)")
    parser.add_argument("--region", help="AWS region (default: the credential chain's)")
    parser.add_argument("--json", action="store_true", help="list: print JSON instead of a table")


def _aws_kwargs(args: argparse.Namespace) -> dict[str, Any]:
    kwargs: dict[str, Any] = {}
    if args.endpoint_url:
        kwargs["endpoint_url"] = args.endpoint_url
        # An emulator accepts any credentials; give it some so no real profile is needed or used.
        kwargs.setdefault("aws_access_key_id", os.environ.get("AWS_ACCESS_KEY_ID", "local"))
        kwargs.setdefault("aws_secret_access_key", os.environ.get("AWS_SECRET_ACCESS_KEY", "local"))
    region = args.region or os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION")
    if region or args.endpoint_url:
        kwargs["region_name"] = region or "us-east-1"
    return kwargs


def _registry(args: argparse.Namespace) -> Any:
    import boto3

    from coach.adapters.model_registry import ModelRegistry

    parameter = args.parameter or Settings.from_env().model_parameter or DEFAULT_PARAMETER
    from botocore.exceptions import NoRegionError

    from coach.local.parameter_file import ParameterFile, registry_path

    if not args.endpoint_url and not args.region and registry_path().is_file():
        return ModelRegistry(ParameterFile(), parameter)  # what local builds of this working folder published

    try:
        client = boto3.client("ssm", **_aws_kwargs(args))
    except NoRegionError:
        raise ConfigError("no AWS region: give --region (or set AWS_REGION / a profile's region), or "
                          "--endpoint-url for an emulator", code="missing_aws_region") from None
    return ModelRegistry(client, parameter)


def _score_cells(scores: Any) -> tuple[str, str, str, str]:
    """pass rate, grounding, planted-flaw lift and the gate's verdict of a published version."""
    if scores is None:
        return "-", "-", "-", "not evaluated"
    pct = (lambda v: "-" if v is None else f"{v:.0%}")  # noqa: E731
    lift = "-" if scores.flaw_lift is None else f"{scores.flaw_lift:+.2f}"
    gate = "passed" if scores.passed else f"forced over: {', '.join(scores.reasons)}" if scores.forced else \
        f"refused: {', '.join(scores.reasons)}"
    return pct(scores.pass_rate), pct(scores.grounding), lift, gate


def _list(registry: Any, as_json: bool, out: Any) -> int:
    current = registry.current()
    published = registry.published()
    if as_json:
        out.write(json.dumps({
            "parameter": registry.parameter,
            "current": current.model_dump() if current else None,
            "published": [{**e.published.model_dump(mode="json"), "version": e.version,
                           "published_at": e.changed_at, "action": e.action,
                           "current": bool(current and e.published.model == current.model)}
                          for e in published if e.published],
        }, indent=2) + "\n")
        return 0
    if not published:
        out.write(f"no fine-tuned model has been published to {registry.parameter}; "
                  "the critique API serves the base model\n")
        return 0
    rows = [("", "version", "model", "provider", "build", "prompt", "trained", "published", "shuts down", "pass",
             "grounding", "lift", "gate")]
    for entry in published:
        p = entry.published
        mark = "*" if current and p.model == current.model else ""
        rows.append((mark, str(entry.version), p.model, p.provider, p.build_id, p.prompt_version, p.trained_at,
                     entry.changed_at, p.retires_on or "-", *_score_cells(p.scores)))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for row in rows:
        out.write("  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row)).rstrip() + "\n")
    if current is None:
        out.write("(* none: the parameter holds no model, so the critique API serves the base model)\n")
    else:
        out.write(f"* served by the critique API (parameter {registry.parameter})\n")
    for entry in published:
        notice = retirement_notice(entry.published.model, parse_shutdown(entry.published.retires_on))
        if notice is not None:
            out.write(f"warning: {notice.message}\n")
    return 0


def _promote(args: argparse.Namespace, out: Any) -> int:
    from coach.adapters.model_registry import PublishedModel
    from coach.adapters.storage import dataset_key, promotions_key
    from coach.cli.eval_cmd import open_store
    from coach.domain.prompt import COMPACT_PROMPT_VERSION
    from coach.domain.records import BuildManifest, utc_now

    if not args.version:
        raise InputError("name what to promote: coach models promote BUILD_ID|VERSION --force", code="invalid_option")
    registry = _registry(args)
    who = os.environ.get("COACH_OPERATOR") or getpass.getuser()
    why = f"; reason: {args.reason}" if args.reason else ""
    if args.version.isdigit():  # a version of the parameter: serve its model again
        entry = next((e for e in registry.history() if e.version == int(args.version)), None)
        if entry is None or entry.published is None:
            raise InputError(f"version {args.version} of {registry.parameter} holds no model", code="version_not_found")
        chosen = entry.published
        if chosen.scores is not None and not chosen.scores.passed and not args.force:
            raise CoachError(f"{chosen.model} was refused by the evaluation gate ({', '.join(chosen.scores.reasons)});"
                             " add --force to serve it anyway (recorded)", code="gate_refused")
        registry.promote(chosen, f"version {entry.version} again by {who}{why}")
        out.write(f"promoted: the critique API now serves {chosen.model} (version {entry.version} again)\n")
        return 0

    build_id = args.version
    store = open_store(argparse.Namespace(**{**vars(args), "stories": None}), build_id)
    key = dataset_key(build_id, "manifest.json")
    manifest = store.get_model(key, BuildManifest)
    if manifest is None:
        raise InputError(f"no manifest for build {build_id}: give its --out/--state-dir or --bucket",
                         code="build_not_found")
    evaluation = manifest.evaluation
    model = manifest.fine_tune.fine_tuned_model or (evaluation.model if evaluation else None)
    if not model:
        raise CoachError(f"build {build_id} has no fine-tuned model to promote", code="nothing_to_promote")
    refused = evaluation is not None and evaluation.model == model and not evaluation.passed
    if refused and not args.force:
        raise CoachError(f"{model} was refused by the evaluation gate ({', '.join(evaluation.reasons)}); add --force "
                         "to publish it anyway (recorded)", code="gate_refused")
    scores = evaluation.model_copy(update={"forced": True}) if refused and evaluation else evaluation
    published = PublishedModel(model=model, prompt_version=COMPACT_PROMPT_VERSION, build_id=build_id,
                               trained_at=manifest.fine_tune.published_at or manifest.created_at, scores=scores)
    note = (f"forced over the gate ({', '.join(evaluation.reasons)}) by {who}{why}" if refused and evaluation
            else f"by {who}{why}")
    version = registry.promote(published, note)
    if refused and evaluation:
        manifest.evaluation = scores
        manifest.fine_tune.published_at = utc_now()
        store.put_text(key, manifest.model_dump_json(indent=2))
        previous = store.get_text(promotions_key(build_id)) or ""
        store.put_text(promotions_key(build_id), previous + json.dumps({
            "model": model, "build_id": build_id, "version": version, "by": who, "reason": args.reason,
            "gate_reasons": evaluation.reasons, "at": utc_now()}) + "\n", "application/x-ndjson")
    out.write(f"promoted: the critique API now serves {model} (parameter {registry.parameter} version {version})"
              + (f", over the gate's refusal ({', '.join(evaluation.reasons)}); recorded" if refused and evaluation
                 else "") + "\n")
    return 0


def run(args: argparse.Namespace, out: Any = None) -> int:
    out = out or sys.stdout
    if args.action != "promote" and (args.version or args.force):
        raise InputError("VERSION and --force belong to `coach models promote`", code="invalid_option")
    if args.action == "promote":
        return _promote(args, out)
    if args.action == "list":
        if args.to_model or args.steps is not None:
            raise InputError("--to and --steps belong to `coach models rollback`", code="invalid_option")
        return _list(_registry(args), args.json, out)
    if args.to_model and args.steps is not None:
        raise InputError("give --to MODEL or --steps N, not both", code="invalid_option")
    if args.steps is not None and args.steps < 1:
        raise InputError("--steps must be 1 or more", code="invalid_option")
    registry = _registry(args)
    target = registry.rollback(to_model=args.to_model, steps=args.steps)
    out.write(f"rolled back: the critique API now serves {target.model} (build {target.build_id}, "
              f"prompt {target.prompt_version}); it picks the change up within its cache time\n")
    return 0
