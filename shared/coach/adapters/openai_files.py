"""Sending a stored file to OpenAI as a stream: the Files API for a small file, the Uploads API for a large one.

Neither path holds the file in memory. A file up to one part goes to `files.create` as a seekable reader
(the SDK streams it, and rewinds it to retry). A larger one becomes an Upload: each part is a window on the
same reader, sent with `uploads.parts.create`, and `uploads.complete` lists the parts in order with the
file's MD5, so OpenAI checks it received exactly the bytes that were read. If anything fails after the
Upload was created it is cancelled, so no half file is left behind. SDK errors are raised as they come.
"""

from __future__ import annotations

import contextlib
import os
from typing import Any, BinaryIO

from coach.adapters.streams import SizedReader
from coach.errors import UpstreamError

PART_MAX_BYTES = 64 * 1024 * 1024  # OpenAI: each Upload part is at most 64 MB
UPLOAD_MAX_BYTES = 8 * 1024**3  # and an Upload at most 8 GB
JSONL = "application/jsonl"


class Window(SizedReader):
    """Bytes [start, start + length) of a seekable binary reader, as a seekable file of its own."""

    def __init__(self, reader: BinaryIO, start: int, length: int) -> None:
        super().__init__(length)
        self._reader = reader
        self._start = start
        self._length = length

    def seek(self, offset: int, whence: int = os.SEEK_SET) -> int:
        self._pos = max(0, min(self._seek_target(offset, whence), self._length))
        return self._pos

    def readinto(self, buffer: Any) -> int:
        want = min(len(buffer), self._length - self._pos)
        if want <= 0:
            return 0
        if self._reader.tell() != self._start + self._pos:
            self._reader.seek(self._start + self._pos)
        data = self._reader.read(want)
        if not data:
            raise EOFError(f"the file ended {self._length - self._pos} bytes before the part did")
        buffer[:len(data)] = data
        self._pos += len(data)
        return len(data)


def upload_jsonl(client: Any, reader: BinaryIO, *, filename: str, size: int, md5: str,
                 part_bytes: int = PART_MAX_BYTES, purpose: str = "fine-tune") -> str:
    """Send `size` bytes of `reader` (from its start) as one file; returns the OpenAI file id."""
    reader.seek(0)
    if size <= part_bytes:
        return client.files.create(file=(filename, reader), purpose=purpose).id
    upload = client.uploads.create(bytes=size, filename=filename, mime_type=JSONL, purpose=purpose)
    try:
        part_ids = []
        for number, start in enumerate(range(0, size, part_bytes), start=1):
            window = Window(reader, start, min(part_bytes, size - start))
            part = client.uploads.parts.create(upload.id, data=(f"{filename}.part{number}", window))
            part_ids.append(part.id)
        done = client.uploads.complete(upload.id, part_ids=part_ids, md5=md5)
    except BaseException:
        # The error that stopped the upload is the one to report; a failed cancel only leaves an Upload
        # that OpenAI expires within the hour.
        with contextlib.suppress(Exception):
            client.uploads.cancel(upload.id)
        raise
    if done.file is None:
        raise UpstreamError(f"the upload {upload.id} of {filename} completed without a file",
                            code="upload_incomplete")
    return done.file.id
