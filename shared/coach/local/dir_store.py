"""A BuildStore over a folder laid out like the bucket: a local build's state (OUT/.state).

The direct local build reads and writes its records here (the folder is the store, nothing is copied), and
`coach report` / `coach eval` read a finished local build through it with the same typed calls as the S3 store.
Every write goes to a temporary file that is renamed over the key, so a reader (or a re-run after kill -9)
never sees half a record; temporary names are unique per thread, so concurrent writers never share one.
Streamed writes (`open_writer`) do the same with a temporary file that grows as it is written.
"""

from __future__ import annotations

import os
import shutil
import threading
import uuid
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import BinaryIO

from coach.adapters import multipart
from coach.adapters.storage import BuildStore, ObjectMissingError
from coach.adapters.streams import ObjectWriter

TMP_SUFFIX = ".tmp"


def _tmp_path(path: Path) -> Path:
    return path.with_name(f"{path.name}.{os.getpid()}-{threading.get_ident()}{TMP_SUFFIX}")


def write_atomically(path: Path, data: str | bytes) -> None:
    """Write-then-rename: the file is either the old one or the whole new one, never a part."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = _tmp_path(path)
    if isinstance(data, bytes):
        tmp.write_bytes(data)
    else:
        tmp.write_text(data, encoding="utf-8")
    tmp.replace(path)


class FileWriter(ObjectWriter):
    """Streams into a temporary file beside the key; renamed over it on success, deleted on error."""

    def __init__(self, key: str, path: Path) -> None:
        super().__init__(key)
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        self._tmp = path.with_name(f"{path.name}.{uuid.uuid4().hex[:16]}{TMP_SUFFIX}")  # one per writer
        self._file = self._tmp.open("wb")

    def _write(self, data: bytes) -> None:
        self._file.write(data)

    def _commit(self) -> None:
        self._file.flush()
        os.fsync(self._file.fileno())  # a large file is on disk before its name says it is complete
        self._file.close()
        self._tmp.replace(self.path)

    def _discard(self) -> None:
        self._file.close()
        self._tmp.unlink(missing_ok=True)


class DirectoryStore(BuildStore):
    def __init__(self, root: Path) -> None:  # no S3 client: every raw operation below is a file operation
        self.root = Path(root)
        self.bucket = str(self.root)
        self.s3 = None
        self._resolved = self.root.resolve()

    def _path(self, key: str) -> Path:
        if ".." not in key and not key.startswith("/"):
            return self._resolved / key  # the common case, without a resolve() per call
        path = (self.root / key).resolve()
        if not path.is_relative_to(self._resolved):
            raise ValueError(f"key {key!r} leaves the store")
        return path

    def put_bytes(self, key: str, data: bytes, content_type: str | None = None) -> None:
        write_atomically(self._path(key), data)

    def get_bytes(self, key: str) -> bytes | None:
        try:
            return self._path(key).read_bytes()
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
            return None

    def put_text(self, key: str, text: str, content_type: str = "application/json") -> None:
        write_atomically(self._path(key), text)

    def get_text(self, key: str) -> str | None:
        try:
            return self._path(key).read_text(encoding="utf-8")
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
            return None

    def exists(self, key: str) -> bool:
        return self._path(key).is_file()

    def open_writer(self, key: str, content_type: str = "application/x-ndjson",
                    part_size: int = multipart.DEFAULT_PART_SIZE) -> ObjectWriter:
        multipart.check_part_size(part_size)  # refused as the S3 store refuses it, though files have no parts
        return FileWriter(key, self._path(key))

    def open_reader(self, key: str) -> BinaryIO:
        try:
            return self._path(key).open("rb")
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
            raise ObjectMissingError(f"no file {key} in {self.root}") from None

    def copy_parts(self, key: str, source_keys: Sequence[str], content_type: str = "application/x-ndjson") -> int:
        return self._copy_streaming(key, source_keys, content_type)

    def delete(self, key: str) -> None:
        self._path(key).unlink(missing_ok=True)

    def copy(self, source: str, key: str) -> None:
        target = self._path(key)
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(target.name + TMP_SUFFIX)
        shutil.copyfile(self._path(source), tmp)
        tmp.replace(target)

    def list_keys(self, prefix: str) -> Iterator[str]:
        """Keys under `prefix` in S3's order (by the key's characters), temporary files left out."""
        folder = self._path(prefix.rsplit("/", 1)[0]) if "/" in prefix else self._resolved
        if not folder.is_dir():
            return
        keys = []
        for dirpath, _dirs, files in os.walk(folder):
            base = Path(dirpath).relative_to(self._resolved).as_posix()
            for name in files:
                key = f"{base}/{name}" if base != "." else name
                if key.startswith(prefix) and not name.endswith(TMP_SUFFIX):
                    keys.append(key)
        yield from sorted(keys)

    def list_etags(self, prefix: str) -> Iterator[tuple[str, str]]:
        """(key, tag) as the S3 store lists them; size and modification time, which change on every rewrite, stand
        for the ETag."""
        for key in self.list_keys(prefix):
            try:
                stat = self._path(key).stat()
            except FileNotFoundError:
                continue  # deleted since it was listed
            yield key, f"{stat.st_size}-{stat.st_mtime_ns}"
