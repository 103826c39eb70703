"""`coach builds`: the local builds of this working folder with their status, counts and cost.

Lists every build whose state is under `--root` (default out/, where `coach build` writes: out/ID/.state).
A build is running, interrupted (re-run the same build id to resume it), failed at a step (with the error
code), or complete (with its fine-tune's status).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--root", type=Path, default=Path("out"), help="folder of build outputs to look in "
                                                                      "(default: out)")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")


def run(args: argparse.Namespace) -> int:
    from coach.local.build_index import local_builds

    builds = local_builds(args.root)
    if args.json:
        print(json.dumps([b.model_dump() for b in builds], indent=2))
        return 0
    if not builds:
        print(f"no local builds under {args.root}/ (give --root for builds written elsewhere)")
        return 0
    header = ("BUILD", "STATUS", "STORIES", "GENERATED", "FAILED", "ACCEPTED", "REJECTED", "COST", "OUTPUT")
    rows = []
    for b in builds:
        fine_tune = f", fine-tune {b.fine_tune}" if b.fine_tune not in (None, "skipped", "not_started") else ""
        rows.append((b.build_id, b.status + fine_tune, str(b.stories), str(b.generated),
                     str(b.failed + b.skipped_budget), str(b.accepted), str(b.rejected), f"${b.cost_usd:.4f}", b.out))
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    for row in [header, *rows]:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip())
    return 0
