"""`coach models`: list the published fine-tuned models, or roll the critique API back to an earlier one.

    coach models [list] [--json]
    coach models rollback [--to MODEL | --steps N]

The models live in the SSM parameter the critique API reads (see coach.adapters.model_registry). Point the
command at a running AWS emulator with --endpoint-url, or at AWS itself through the default credential
chain (profile, environment, SSO) with --parameter and --region.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Any

from coach.errors import ConfigError, InputError

DEFAULT_PARAMETER = "/coach/critique-model"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("action", nargs="?", default="list", choices=("list", "rollback"),
                        help="list (default) or rollback")
    parser.add_argument("--to", dest="to_model", metavar="MODEL", help="rollback: serve this published model")
    parser.add_argument("--steps", type=int, help="rollback: go back this many publications (default 1)")
    parser.add_argument("--parameter", help="SSM parameter name (default: $COACH_MODEL_PARAMETER or "
                                            f"{DEFAULT_PARAMETER})")
    parser.add_argument("--endpoint-url", help="an AWS emulator's URL (default: AWS via the credential chain)")
    parser.add_argument("--region", help="AWS region (default: the credential chain's)")
    parser.add_argument("--json", action="store_true", help="list: print JSON instead of a table")


def _registry(args: argparse.Namespace) -> Any:
    import boto3

    from coach.adapters.model_registry import ModelRegistry

    kwargs: dict[str, Any] = {}
    if args.endpoint_url:
        kwargs["endpoint_url"] = args.endpoint_url
        # An emulator accepts any credentials; give it some so no real profile is needed or used.
        kwargs.setdefault("aws_access_key_id", os.environ.get("AWS_ACCESS_KEY_ID", "local"))
        kwargs.setdefault("aws_secret_access_key", os.environ.get("AWS_SECRET_ACCESS_KEY", "local"))
    region = args.region or os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION")
    if region or args.endpoint_url:
        kwargs["region_name"] = region or "us-east-1"
    parameter = args.parameter or os.environ.get("COACH_MODEL_PARAMETER") or DEFAULT_PARAMETER
    from botocore.exceptions import NoRegionError

    try:
        client = boto3.client("ssm", **kwargs)
    except NoRegionError:
        raise ConfigError("no AWS region: give --region (or set AWS_REGION / a profile's region), or "
                          "--endpoint-url for an emulator", code="missing_aws_region") from None
    return ModelRegistry(client, parameter)


def _list(registry: Any, as_json: bool, out: Any) -> int:
    current = registry.current()
    published = registry.published()
    if as_json:
        out.write(json.dumps({
            "parameter": registry.parameter,
            "current": current.model_dump() if current else None,
            "published": [{**e.published.model_dump(), "version": e.version, "published_at": e.changed_at,
                           "current": bool(current and e.published.model == current.model)}
                          for e in published if e.published],
        }, indent=2) + "\n")
        return 0
    if not published:
        out.write(f"no fine-tuned model has been published to {registry.parameter}; "
                  "the critique API serves the base model\n")
        return 0
    rows = [("", "model", "build", "prompt", "trained", "published")]
    for entry in published:
        p = entry.published
        mark = "*" if current and p.model == current.model else ""
        rows.append((mark, p.model, p.build_id, p.prompt_version, p.trained_at, entry.changed_at))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for row in rows:
        out.write("  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row)).rstrip() + "\n")
    if current is None:
        out.write("(* none: the parameter holds no model, so the critique API serves the base model)\n")
    else:
        out.write(f"* served by the critique API (parameter {registry.parameter})\n")
    return 0


def run(args: argparse.Namespace, out: Any = None) -> int:
    out = out or sys.stdout
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
