"""`coach report BUILD_ID [--open]`: write a build's report.html and dataset card again from its records.

A local build's records live under OUT/.state (the default); `--bucket` reads a build in S3 instead (the
deployed stack's bucket, or an emulator's with `--endpoint-url`) and stores the new report under the
build's prefix there. Either way the files land in OUT: report.html, and README.md (the dataset card)
when the build has a dataset.
"""

from __future__ import annotations

import argparse
import webbrowser
from pathlib import Path

from coach.adapters.storage import BuildStore, request_key
from coach.errors import InputError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("build_id", metavar="BUILD_ID", help="the build to report on")
    parser.add_argument("--out", type=Path, help="where to write report.html and README.md "
                                                 "(default: out/<build id>)")
    parser.add_argument("--state-dir", type=Path, help="a local build's records (default: OUT/.state)")
    parser.add_argument("--bucket", help="read the build from this S3 bucket instead of a local folder")
    parser.add_argument("--endpoint-url", help="with --bucket: an S3-compatible endpoint (an emulator)")
    parser.add_argument("--open", action="store_true", dest="open_browser",
                        help="open the report in the default web browser")


def _store(args: argparse.Namespace, out: Path) -> BuildStore:
    if args.bucket:
        import boto3

        store = BuildStore(args.bucket, boto3.client("s3", endpoint_url=args.endpoint_url))
        where = f"s3://{args.bucket}"
    else:
        from coach.local.dir_store import DirectoryStore

        state = args.state_dir or out / ".state"
        store = DirectoryStore(state)
        where = str(state)
    if not store.exists(request_key(args.build_id)):
        raise InputError(f"no build '{args.build_id}' in {where}: give the build's --out (or --state-dir, or "
                         "--bucket), or run coach build first", code="build_not_found")
    return store


def run(args: argparse.Namespace) -> int:
    from coach.local.report_out import write_report_files

    if args.endpoint_url and not args.bucket:
        raise InputError("--endpoint-url needs --bucket", code="invalid_option")
    out = args.out or Path("out") / args.build_id
    store = _store(args, out)
    written = write_report_files(store, args.build_id, out)
    for path in written:
        print(f"wrote {path}")
    report = out / "report.html"
    if args.open_browser and not webbrowser.open(report.resolve().as_uri()):
        print(f"no web browser found: open {report.resolve()} yourself")
    return 0
