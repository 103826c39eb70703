"""S3 multipart uploads: a streaming writer, and joining stored objects without downloading them.

S3 takes at most 10,000 parts of 5 MiB to 5 GiB each (the last part may be smaller). The writer keeps at
most one part in memory: it sends a part each time its buffer passes `part_size`, and an object that never
fills one part is sent with a single PutObject. Every failure aborts the upload, so no half object appears
and no pending upload is left for S3 to keep (and bill) in the background.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from coach.adapters.streams import ObjectWriter

MiB = 1024 * 1024
MIN_PART_SIZE = 5 * MiB  # S3's floor for every part but the last (tests against a fake S3 may lower it)
MAX_PART_SIZE = 5 * 1024 * MiB
MAX_PARTS = 10_000
DEFAULT_PART_SIZE = 8 * MiB


def check_part_size(part_size: int) -> int:
    if not MIN_PART_SIZE <= part_size <= MAX_PART_SIZE:
        raise ValueError(f"part_size {part_size} is outside S3's part sizes ({MIN_PART_SIZE} to {MAX_PART_SIZE} "
                         "bytes)")
    return part_size


class MultipartWriter(ObjectWriter):
    """Streams bytes into one S3 object; use as a context manager (see coach.adapters.streams)."""

    def __init__(self, s3: Any, bucket: str, key: str, *, content_type: str = "application/x-ndjson",
                 part_size: int = DEFAULT_PART_SIZE) -> None:
        super().__init__(key)
        self.s3 = s3
        self.bucket = bucket
        self.content_type = content_type
        self.part_size = check_part_size(part_size)
        self.upload_id: str | None = None
        self.parts: list[dict[str, Any]] = []  # {"ETag", "PartNumber"} of the parts sent so far
        self._buffer = bytearray()

    def _write(self, data: bytes) -> None:
        self._buffer += data
        # Strictly more than one part: an object of exactly one part still goes as a single PutObject.
        while len(self._buffer) > self.part_size:
            self._send_part(bytes(self._buffer[:self.part_size]))
            del self._buffer[:self.part_size]

    def _send_part(self, body: bytes) -> None:
        if self.upload_id is None:
            self.upload_id = self.s3.create_multipart_upload(
                Bucket=self.bucket, Key=self.key, ContentType=self.content_type)["UploadId"]
        number = len(self.parts) + 1
        if number > MAX_PARTS:
            raise ValueError(f"{self.key} needs more than {MAX_PARTS} parts of {self.part_size} bytes: "
                             "write it with a larger part_size")
        answer = self.s3.upload_part(Bucket=self.bucket, Key=self.key, UploadId=self.upload_id,
                                     PartNumber=number, Body=body)
        self.parts.append({"ETag": answer["ETag"], "PartNumber": number})

    def _commit(self) -> None:
        if self.upload_id is None:
            self.s3.put_object(Bucket=self.bucket, Key=self.key, Body=bytes(self._buffer),
                               ContentType=self.content_type)
        else:
            if self._buffer:
                self._send_part(bytes(self._buffer))
            self.s3.complete_multipart_upload(Bucket=self.bucket, Key=self.key, UploadId=self.upload_id,
                                              MultipartUpload={"Parts": self.parts})
        self._buffer = bytearray()

    def _discard(self) -> None:
        self._buffer = bytearray()
        if self.upload_id is not None:
            upload_id, self.upload_id = self.upload_id, None
            self.s3.abort_multipart_upload(Bucket=self.bucket, Key=self.key, UploadId=upload_id)


def copyable(sizes: Sequence[int]) -> bool:
    """Whether objects of these sizes can be joined server-side: every one but the last is a valid part."""
    return all(size >= MIN_PART_SIZE for size in sizes[:-1])


def _ranges(size: int) -> list[tuple[int, int]]:
    """Inclusive byte ranges splitting one object into as few parts as S3 allows, of near-equal sizes
    (so a remainder never falls under the minimum part size)."""
    count = max(1, math.ceil(size / MAX_PART_SIZE))
    step = math.ceil(size / count)
    return [(start, min(start + step, size) - 1) for start in range(0, size, step)]


def copy_objects(s3: Any, bucket: str, key: str, sources: Sequence[tuple[str, int]], *,
                 content_type: str = "application/x-ndjson") -> int:
    """Join (source key, size) objects of `bucket` into `key` with UploadPartCopy; returns the bytes joined.

    The caller checks `copyable` first. Empty sources add nothing and are left out (S3 refuses empty parts).
    """
    pieces = [(source, size) for source, size in sources if size > 0]
    if not pieces:
        s3.put_object(Bucket=bucket, Key=key, Body=b"", ContentType=content_type)
        return 0
    upload_id = s3.create_multipart_upload(Bucket=bucket, Key=key, ContentType=content_type)["UploadId"]
    parts: list[dict[str, Any]] = []
    try:
        for source, size in pieces:
            for first, last in _ranges(size):
                number = len(parts) + 1
                extra = {} if (first, last) == (0, size - 1) else {"CopySourceRange": f"bytes={first}-{last}"}
                answer = s3.upload_part_copy(Bucket=bucket, Key=key, UploadId=upload_id, PartNumber=number,
                                             CopySource={"Bucket": bucket, "Key": source}, **extra)
                parts.append({"ETag": answer["CopyPartResult"]["ETag"], "PartNumber": number})
        s3.complete_multipart_upload(Bucket=bucket, Key=key, UploadId=upload_id,
                                     MultipartUpload={"Parts": parts})
    except BaseException:
        s3.abort_multipart_upload(Bucket=bucket, Key=key, UploadId=upload_id)
        raise
    return sum(size for _, size in pieces)
