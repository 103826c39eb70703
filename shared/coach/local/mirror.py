"""Keep a local build's S3 records on disk between runs, so re-running a build id resumes it.

The emulator forgets everything when the process ends; the mirror is the durable copy. It is a folder laid out
like the bucket (a DirectoryStore), so both sides are copied through the BuildStore interface.
"""

from __future__ import annotations

from coach.adapters.storage import BuildStore, build_prefix, index_prefix
from coach.local.dir_store import DirectoryStore


def _prefixes(build_id: str) -> list[str]:
    return [build_prefix(build_id), index_prefix()]


def restore(store: BuildStore, local: DirectoryStore, build_id: str) -> int:
    """Upload the mirrored objects into the (fresh) emulated bucket; returns how many."""
    count = 0
    for prefix in _prefixes(build_id):
        for key in local.list_keys(prefix):  # an interrupted save's temporary files are not listed
            data = local.get_bytes(key)
            if data is not None:
                store.put_bytes(key, data)
                count += 1
    return count


def save(store: BuildStore, local: DirectoryStore, build_id: str, *, known: dict[str, str] | None = None) -> int:
    """Download new or changed objects of the build (by ETag) to the mirror; returns how many written."""
    known = known if known is not None else {}
    written = 0
    for prefix in _prefixes(build_id):
        for key, etag in store.list_etags(prefix):
            if known.get(key) == etag:
                continue
            data = store.get_bytes(key)
            if data is None:
                continue  # deleted since it was listed: there is nothing to keep
            local.put_bytes(key, data)  # atomic: an interrupted save never leaves half a record
            known[key] = etag
            written += 1
    return written
