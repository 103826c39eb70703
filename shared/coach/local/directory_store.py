"""A build's records in a folder, keyed exactly as in S3: the state folder a local build keeps (OUT/.state).

`coach eval` reads and writes a local build through it with the same typed calls as the S3 store.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from coach.adapters.storage import BuildStore


class DirectoryStore(BuildStore):
    def __init__(self, root: Path) -> None:  # no S3 client: every raw call below goes to the folder
        self.root = Path(root).resolve()  # keys are listed relative to it, from resolved paths
        self.bucket = str(self.root)
        self.s3 = None

    def _path(self, key: str) -> Path:
        path = (self.root / key).resolve()
        if self.root.resolve() not in path.parents:
            raise ValueError(f"key {key!r} leaves the store")
        return path

    def put_text(self, key: str, text: str, content_type: str = "application/json") -> None:
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(text, encoding="utf-8")
        tmp.replace(path)  # atomic, like an S3 put: a reader never sees half a file

    def get_text(self, key: str) -> str | None:
        path = self._path(key)
        return path.read_text(encoding="utf-8") if path.is_file() else None

    def exists(self, key: str) -> bool:
        return self._path(key).is_file()

    def list_keys(self, prefix: str) -> Iterator[str]:
        base = self.root / prefix.rsplit("/", 1)[0] if "/" in prefix else self.root
        if not base.is_dir():
            return
        for path in sorted(base.rglob("*")):
            key = path.relative_to(self.root).as_posix()
            if path.is_file() and key.startswith(prefix) and not key.endswith(".tmp"):
                yield key
