"""Streamed writes and reads of large objects: S3 multipart uploads (moto) and the folder store's files."""

from __future__ import annotations

import os
from collections import Counter

import boto3
import pytest
from moto import mock_aws

from coach.adapters import multipart
from coach.adapters.object_reader import ObjectChangedError
from coach.adapters.storage import BuildStore, ObjectMissingError
from coach.local.dir_store import DirectoryStore

BUCKET = "coach-stream-tests"
MiB = 1024 * 1024


@pytest.fixture
def s3_store():
    with mock_aws():
        s3 = boto3.client("s3", region_name="us-east-1")
        s3.create_bucket(Bucket=BUCKET)
        calls: Counter[str] = Counter()
        s3.meta.events.register("before-call.s3", lambda event_name, **_: calls.update([event_name.rsplit(".", 1)[1]]))
        store = BuildStore(BUCKET, s3)
        store.calls = calls
        yield store


def _lines(count: int, width: int = 100) -> list[str]:
    """Distinct JSON-ish lines of about `width` characters, with some non-ASCII text."""
    return [f'{{"n": {i}, "text": "é{"x" * (width - 20)}"}}' for i in range(count)]


def _content(store: BuildStore, key: str) -> bytes:
    return store.s3.get_object(Bucket=BUCKET, Key=key)["Body"].read()


def test_a_12_mib_write_goes_up_as_three_parts_and_reads_back_exactly(s3_store):
    lines = _lines(12 * MiB // 100 + 1)
    with s3_store.open_writer("big.jsonl", part_size=5 * MiB) as out:
        for line in lines:
            out.write(line + "\n")
    expected = "".join(line + "\n" for line in lines).encode()
    assert len(expected) > 12 * MiB
    assert out.bytes_written == len(expected) and out.lines == len(lines)
    calls = s3_store.calls
    assert calls["CreateMultipartUpload"] == 1 and calls["UploadPart"] == 3
    assert calls["CompleteMultipartUpload"] == 1 and calls["PutObject"] == 0
    assert _content(s3_store, "big.jsonl") == expected
    assert s3_store.s3.head_object(Bucket=BUCKET, Key="big.jsonl")["ContentType"] == "application/x-ndjson"
    assert list(s3_store.iter_lines("big.jsonl")) == lines


def test_a_small_write_is_a_single_put_object(s3_store):
    with s3_store.open_writer("small.jsonl", content_type="text/plain") as out:
        out.write("one\n")
        out.write("two\n")
    assert s3_store.calls["PutObject"] == 1
    assert s3_store.calls["CreateMultipartUpload"] == 0 and s3_store.calls["UploadPart"] == 0
    assert _content(s3_store, "small.jsonl") == b"one\ntwo\n"
    assert s3_store.s3.head_object(Bucket=BUCKET, Key="small.jsonl")["ContentType"] == "text/plain"


def test_exactly_one_part_is_still_a_single_put_object(s3_store):
    with s3_store.open_writer("one-part", part_size=5 * MiB) as out:
        out.write_bytes(b"a" * (5 * MiB))
    assert s3_store.calls["PutObject"] == 1 and s3_store.calls["UploadPart"] == 0
    assert s3_store.s3.head_object(Bucket=BUCKET, Key="one-part")["ContentLength"] == 5 * MiB


def test_an_error_inside_the_block_aborts_the_upload_and_writes_nothing(s3_store):
    with pytest.raises(RuntimeError, match="generator failed"), \
            s3_store.open_writer("broken.jsonl", part_size=5 * MiB) as out:
        out.write_bytes(b"x" * (11 * MiB))  # two parts are already in S3
        raise RuntimeError("generator failed")
    assert s3_store.calls["UploadPart"] == 2 and s3_store.calls["AbortMultipartUpload"] == 1
    assert s3_store.calls["CompleteMultipartUpload"] == 0
    assert not s3_store.exists("broken.jsonl")
    assert s3_store.s3.list_multipart_uploads(Bucket=BUCKET).get("Uploads", []) == []
    with pytest.raises(ValueError, match="closed"):
        out.write("late\n")


def test_an_error_before_the_first_part_writes_nothing_and_keeps_the_old_object(s3_store):
    s3_store.put_text("kept.jsonl", "old\n")
    with pytest.raises(KeyError), s3_store.open_writer("kept.jsonl") as out:
        out.write("new\n")
        raise KeyError("boom")
    assert s3_store.get_text("kept.jsonl") == "old\n"
    assert s3_store.calls["CreateMultipartUpload"] == 0


def test_a_failed_completion_aborts_the_upload(s3_store, monkeypatch):
    def refuse(**_):
        raise RuntimeError("S3 said no")

    out = s3_store.open_writer("refused.jsonl", part_size=5 * MiB)
    out.write_bytes(b"y" * (6 * MiB))
    monkeypatch.setattr(s3_store.s3, "complete_multipart_upload", refuse)
    with pytest.raises(RuntimeError, match="S3 said no"):
        out.close()
    assert s3_store.calls["AbortMultipartUpload"] == 1 and not s3_store.exists("refused.jsonl")
    assert s3_store.s3.list_multipart_uploads(Bucket=BUCKET).get("Uploads", []) == []


def test_part_sizes_under_s3s_minimum_are_refused_unless_the_minimum_is_lowered(s3_store, monkeypatch):
    with pytest.raises(ValueError, match="part_size"):
        s3_store.open_writer("k", part_size=MiB)
    with pytest.raises(ValueError, match="part_size"):
        DirectoryStore(os.devnull).open_writer("k", part_size=MiB)
    monkeypatch.setattr(multipart, "MIN_PART_SIZE", 1024)
    assert s3_store.open_writer("k", part_size=MiB).part_size == MiB


def test_iter_lines_returns_the_exact_lines(s3_store):
    long_line = "z" * (3 * MiB)  # longer than one read: a line is joined across chunks
    text = "first\n\nsecond \u2014 caf\u00e9\r\n" + long_line + "\n{\"a\": \"\\n\"}\nno newline at the end"
    s3_store.put_text("lines.txt", text)
    assert list(s3_store.iter_lines("lines.txt")) == text.split("\n")
    s3_store.put_text("ends.txt", "a\nb\n")
    assert list(s3_store.iter_lines("ends.txt")) == ["a", "b"]
    s3_store.put_text("empty.txt", "")
    assert list(s3_store.iter_lines("empty.txt")) == []


def test_a_missing_key_raises_at_once(s3_store):
    with pytest.raises(ObjectMissingError) as missing:
        s3_store.iter_lines("absent.jsonl")
    assert missing.value.code == "object_missing" and "absent.jsonl" in missing.value.message
    with pytest.raises(ObjectMissingError):
        s3_store.open_reader("absent.jsonl")


def test_the_reader_seeks_and_refuses_an_object_replaced_while_read(s3_store):
    s3_store.put_text("seek.txt", "0123456789")
    with s3_store.open_reader("seek.txt") as reader:
        assert reader.read(4) == b"0123"
        assert reader.seek(0, os.SEEK_END) == 10 and reader.read() == b""
        reader.seek(2)
        assert reader.read(3) == b"234"
        reader.seek(0)
        assert reader.read() == b"0123456789"
    reader = s3_store.open_reader("seek.txt")
    s3_store.put_text("seek.txt", "another version")
    with pytest.raises(ObjectChangedError):
        reader.read()


def test_copy_parts_joins_large_objects_inside_s3(s3_store):
    first, second, last = b"a" * (5 * MiB) + b"\n", b"b" * (6 * MiB) + b"\n", b"tail\n"
    for key, body in (("p1", first), ("p2", second), ("p3", last)):
        s3_store.s3.put_object(Bucket=BUCKET, Key=key, Body=body)
    size = s3_store.copy_parts("joined.jsonl", ["p1", "p2", "p3"])
    assert size == len(first + second + last)
    assert s3_store.calls["UploadPartCopy"] == 3 and s3_store.calls["UploadPart"] == 0
    assert _content(s3_store, "joined.jsonl") == first + second + last


def test_copy_parts_streams_small_objects_through_the_writer(s3_store):
    for key, body in (("s1", "one\n"), ("s2", "two\n"), ("s3", "three\n")):
        s3_store.put_text(key, body)
    assert s3_store.copy_parts("joined.jsonl", ["s1", "s2", "s3"]) == len("one\ntwo\nthree\n")
    assert s3_store.calls["UploadPartCopy"] == 0
    assert s3_store.get_text("joined.jsonl") == "one\ntwo\nthree\n"
    with pytest.raises(ObjectMissingError):
        s3_store.copy_parts("nope.jsonl", ["s1", "absent"])
    assert not s3_store.exists("nope.jsonl")


# -- the folder store -------------------------------------------------------------------------------------

def test_directory_store_writes_and_reads_a_stream(tmp_path):
    store = DirectoryStore(tmp_path)
    lines = _lines(2_000)
    with store.open_writer("builds/b/dataset/train.jsonl") as out:
        for line in lines:
            out.write(line + "\n")
        # Not visible under its name (nor listed) until it is complete.
        assert not store.exists("builds/b/dataset/train.jsonl")
        assert list(store.list_keys("builds/b/")) == []
    assert out.lines == len(lines)
    assert out.bytes_written == (tmp_path / "builds/b/dataset/train.jsonl").stat().st_size
    assert list(store.iter_lines("builds/b/dataset/train.jsonl")) == lines
    assert store.get_text("builds/b/dataset/train.jsonl") == "".join(line + "\n" for line in lines)


def test_directory_store_leaves_no_file_after_an_error(tmp_path):
    store = DirectoryStore(tmp_path)
    with pytest.raises(RuntimeError), store.open_writer("builds/b/dataset/train.jsonl") as out:
        out.write("half a dataset\n")
        raise RuntimeError("stopped")
    assert not store.exists("builds/b/dataset/train.jsonl")
    assert [p.name for p in (tmp_path / "builds/b/dataset").iterdir()] == []  # no temporary file either
    store.put_text("builds/b/dataset/train.jsonl", "old\n")
    with pytest.raises(RuntimeError), store.open_writer("builds/b/dataset/train.jsonl") as out:
        out.write("new\n")
        raise RuntimeError("stopped")
    assert store.get_text("builds/b/dataset/train.jsonl") == "old\n"


def test_directory_store_missing_keys_and_copy_parts(tmp_path):
    store = DirectoryStore(tmp_path)
    with pytest.raises(ObjectMissingError):
        store.iter_lines("absent.jsonl")
    store.put_text("a.jsonl", "a\n")
    store.put_text("b.jsonl", "b\nlast")
    assert store.copy_parts("ab.jsonl", ["a.jsonl", "b.jsonl"]) == 8
    assert list(store.iter_lines("ab.jsonl")) == ["a", "b", "last"]
    with pytest.raises(ValueError, match="leaves the store"):
        store.open_writer("../outside.jsonl")
