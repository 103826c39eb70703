"""A BuildStore over a folder laid out like the bucket: a local build's OUT/.state mirror.

Lets `coach report` read a finished local build's records without starting the AWS emulator.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from coach.adapters.storage import BuildStore


class DirectoryStore(BuildStore):
    def __init__(self, root: Path) -> None:  # no S3 client: every raw operation below is a file operation
        self.root = Path(root).resolve()  # keys are listed relative to it, from resolved paths
        self.bucket = str(root)
        self.s3 = None

    def _path(self, key: str) -> Path:
        path = (self.root / key).resolve()
        if not path.is_relative_to(self.root.resolve()):
            raise ValueError(f"key {key!r} leaves the store")
        return path

    def put_text(self, key: str, text: str, content_type: str = "application/json") -> None:
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(text, encoding="utf-8")
        tmp.replace(path)  # atomic, as the mirror writes

    def get_text(self, key: str) -> str | None:
        path = self._path(key)
        return path.read_text(encoding="utf-8") if path.is_file() else None

    def exists(self, key: str) -> bool:
        return self._path(key).is_file()

    def list_keys(self, prefix: str) -> Iterator[str]:
        folder = self._path(prefix.rsplit("/", 1)[0]) if "/" in prefix else self.root
        if not folder.is_dir():
            return
        for path in sorted(folder.rglob("*")):
            key = path.relative_to(self.root).as_posix()
            if path.is_file() and key.startswith(prefix) and not key.endswith(".tmp"):
                yield key
