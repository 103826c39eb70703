"""A seekable, streaming file object over one S3 object.

Reads go through a ranged GetObject that starts where the reader is, so seeking back (an HTTP client
replaying a request body on retry) or skipping ahead costs a new request, not a download of the whole
object. Every request names the ETag seen when the reader was opened: if the object is replaced while it is
being read, the read fails instead of mixing two versions. A connection that breaks mid-object is resumed
from the current position a few times before the error is raised.
"""

from __future__ import annotations

import os
from typing import Any

from botocore.exceptions import (
    ClientError,
    ConnectionClosedError,
    IncompleteReadError,
    ReadTimeoutError,
    ResponseStreamingError,
)

from coach.adapters.streams import SizedReader
from coach.errors import CoachError

RESUMES = 3  # broken connections resumed within one read
_BROKEN = (ConnectionClosedError, IncompleteReadError, ReadTimeoutError, ResponseStreamingError, ConnectionError)


class ObjectChangedError(CoachError):
    code = "object_changed"


class S3ObjectReader(SizedReader):
    def __init__(self, s3: Any, bucket: str, key: str, *, size: int, etag: str | None) -> None:
        super().__init__(size)
        self.s3 = s3
        self.bucket = bucket
        self.key = key
        self.etag = etag
        self._body: Any = None

    def seek(self, offset: int, whence: int = os.SEEK_SET) -> int:
        target = self._seek_target(offset, whence)
        if target < 0:
            raise ValueError(f"negative seek position {target}")
        if target != self._pos:
            self._drop_body()
            self._pos = target
        return self._pos

    def readinto(self, buffer: Any) -> int:
        want = min(len(buffer), self.size - self._pos)
        if want <= 0:
            return 0
        for attempt in range(RESUMES + 1):
            try:
                data = self._open().read(want)
            except _BROKEN:
                self._drop_body()
                if attempt == RESUMES:
                    raise
                continue
            if not data:  # the stream ended before the object's size: resume from here
                self._drop_body()
                if attempt == RESUMES:
                    raise ObjectChangedError(f"{self.key} ended after {self._pos} of {self.size} bytes")
                continue
            buffer[:len(data)] = data
            self._pos += len(data)
            return len(data)
        return 0  # not reached

    def _open(self) -> Any:
        if self._body is None:
            extra = {"IfMatch": self.etag} if self.etag else {}
            try:
                answer = self.s3.get_object(Bucket=self.bucket, Key=self.key, Range=f"bytes={self._pos}-", **extra)
            except ClientError as exc:
                if exc.response.get("Error", {}).get("Code") in ("PreconditionFailed", "412", "NoSuchKey"):
                    raise ObjectChangedError(f"{self.key} was replaced or removed while it was being read; "
                                             "read it again") from None
                raise
            self._body = answer["Body"]
        return self._body

    def _drop_body(self) -> None:
        if self._body is not None:
            body, self._body = self._body, None
            body.close()

    def close(self) -> None:
        self._drop_body()
        super().close()
