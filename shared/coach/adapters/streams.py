"""Streaming reads and writes of one stored object, shared by the S3 store and the folder store.

A writer is a context manager: the object appears, whole, when the `with` block ends without an error, and
nothing appears when it raises (what was written so far is discarded), so a failed write is never taken
for a finished one. Lines are read one at a time from a buffered binary reader, never the whole object.
"""

from __future__ import annotations

import contextlib
import io
import os
from collections.abc import Iterator
from types import TracebackType
from typing import BinaryIO, Self

READ_CHUNK = 1024 * 1024  # bytes a reader asks its source for at once


class SizedReader(io.RawIOBase):
    """A seekable raw reader of `size` bytes that keeps its own position; subclasses fill `readinto`."""

    def __init__(self, size: int) -> None:
        super().__init__()
        self.size = size
        self._pos = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def _seek_target(self, offset: int, whence: int) -> int:
        return {os.SEEK_SET: 0, os.SEEK_CUR: self._pos, os.SEEK_END: self.size}[whence] + offset


class ObjectWriter:
    """Base of the stores' writers: counts what was written; subclasses store the bytes."""

    def __init__(self, key: str) -> None:
        self.key = key
        self.bytes_written = 0
        self.lines = 0  # newline characters written: the lines of a JSONL file that ends with one
        self.closed = False

    def write(self, text: str) -> None:
        self.write_bytes(text.encode("utf-8"))

    def write_bytes(self, data: bytes) -> None:
        if self.closed:
            raise ValueError(f"the writer of {self.key} is closed")
        if data:
            self._write(data)
            self.bytes_written += len(data)
            self.lines += data.count(b"\n")

    def close(self) -> None:
        """Finish the object: it is now readable, whole. A failure here discards it (and is raised)."""
        if self.closed:
            return
        self.closed = True
        try:
            self._commit()
        except BaseException:
            self._discard_quietly()
            raise

    def abort(self) -> None:
        """Discard everything written; the object is left as it was before (absent, or its old content)."""
        if self.closed:
            return
        self.closed = True
        self._discard()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if exc_type is None:
            self.close()
        elif not self.closed:
            self.closed = True
            self._discard_quietly()

    def _discard_quietly(self) -> None:
        # The error that stopped the write says more than a failed clean-up; an S3 upload left pending by
        # one is removed by the bucket's incomplete-upload lifecycle rule.
        with contextlib.suppress(Exception):
            self._discard()

    # what a store implements
    def _write(self, data: bytes) -> None:
        raise NotImplementedError

    def _commit(self) -> None:
        raise NotImplementedError

    def _discard(self) -> None:
        raise NotImplementedError


def lines_of(reader: BinaryIO) -> Iterator[str]:
    """The reader's lines as text, split on "\\n" only (a "\\r" stays in its line), without the newline.

    A last line without a newline is yielded too; a file that ends with a newline yields no empty last line.
    The reader is closed when the lines run out or the iterator is closed.
    """
    with reader:
        for raw in reader:
            yield raw.removesuffix(b"\n").decode("utf-8")
