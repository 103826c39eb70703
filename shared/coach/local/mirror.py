"""Keep a local build's S3 records on disk between runs, so re-running a build id resumes it.

The emulator forgets everything when the process ends; the mirror is the durable copy.
"""

from __future__ import annotations

from pathlib import Path

from coach.adapters.storage import BuildStore, build_prefix, index_prefix


def _prefixes(build_id: str) -> list[str]:
    return [build_prefix(build_id), index_prefix()]


def restore(store: BuildStore, state_dir: Path, build_id: str) -> int:
    """Upload the mirrored objects into the (fresh) emulated bucket; returns how many."""
    count = 0
    for prefix in _prefixes(build_id):
        root = state_dir / prefix
        if not root.is_dir():
            continue
        for path in sorted(root.rglob("*")):
            if path.is_file() and not path.name.endswith(".tmp"):
                key = path.relative_to(state_dir).as_posix()
                store.s3.put_object(Bucket=store.bucket, Key=key, Body=path.read_bytes())
                count += 1
    return count


def save(store: BuildStore, state_dir: Path, build_id: str, *, known: dict[str, str] | None = None) -> int:
    """Download new or changed objects of the build (by ETag) to the mirror; returns how many written."""
    known = known if known is not None else {}
    written = 0
    paginator = store.s3.get_paginator("list_objects_v2")
    for prefix in _prefixes(build_id):
        for page in paginator.paginate(Bucket=store.bucket, Prefix=prefix):
            for item in page.get("Contents", []):
                key, etag = item["Key"], item.get("ETag", "")
                if known.get(key) == etag:
                    continue
                target = state_dir / key
                target.parent.mkdir(parents=True, exist_ok=True)
                tmp = target.with_name(target.name + ".tmp")
                tmp.write_bytes(store.s3.get_object(Bucket=store.bucket, Key=key)["Body"].read())
                tmp.replace(target)  # atomic: an interrupted save never leaves half a record
                known[key] = etag
                written += 1
    return written
