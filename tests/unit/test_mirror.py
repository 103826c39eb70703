"""The local build's mirror: a build's objects (and the story index) saved to the state folder and restored."""

from __future__ import annotations

import boto3
import pytest
from moto import mock_aws

from coach.adapters.storage import BuildStore
from coach.local import mirror
from coach.local.dir_store import DirectoryStore

BUCKET = "coach-mirror-tests"


@pytest.fixture
def store():
    with mock_aws():
        s3 = boto3.client("s3", region_name="us-east-1")
        s3.create_bucket(Bucket=BUCKET)
        yield BuildStore(BUCKET, s3)


def test_save_writes_only_new_or_changed_objects_of_the_build(store, tmp_path):
    store.put_text("builds/b1/stories/s1.json", '{"n": 1}')
    store.put_text("builds/b1/dataset/train.jsonl", "a\nb\n", content_type="application/x-ndjson")
    store.put_text("index/stories/s1", "b1", content_type="text/plain")
    store.put_text("builds/b2/stories/s9.json", "{}")  # another build's: not this mirror's
    known: dict[str, str] = {}
    assert mirror.save(store, DirectoryStore(tmp_path), "b1", known=known) == 3
    assert (tmp_path / "builds/b1/stories/s1.json").read_text() == '{"n": 1}'
    assert (tmp_path / "builds/b1/dataset/train.jsonl").read_bytes() == b"a\nb\n"
    assert (tmp_path / "index/stories/s1").read_text() == "b1"
    assert not (tmp_path / "builds/b2").exists()
    assert mirror.save(store, DirectoryStore(tmp_path), "b1", known=known) == 0  # nothing changed since
    store.put_text("builds/b1/stories/s1.json", '{"n": 2}')
    assert mirror.save(store, DirectoryStore(tmp_path), "b1", known=known) == 1
    assert (tmp_path / "builds/b1/stories/s1.json").read_text() == '{"n": 2}'
    assert not list(tmp_path.rglob("*.tmp"))
    assert mirror.save(store, DirectoryStore(tmp_path), "b1") == 3  # without what it knew, everything is written again


def test_restore_uploads_the_mirror_into_a_fresh_bucket(store, tmp_path):
    (tmp_path / "builds/b1/feedback").mkdir(parents=True)
    (tmp_path / "builds/b1/feedback/s1.json").write_bytes('{"é": 1}'.encode())
    (tmp_path / "builds/b1/feedback/s2.json.tmp").write_text("half a record")  # an interrupted save's
    (tmp_path / "index/stories").mkdir(parents=True)
    (tmp_path / "index/stories/s1").write_text("b1")
    (tmp_path / "builds/b2").mkdir(parents=True)
    (tmp_path / "builds/b2/request.json").write_text("{}")
    assert mirror.restore(store, DirectoryStore(tmp_path), "b1") == 2
    assert sorted(store.list_keys("")) == ["builds/b1/feedback/s1.json", "index/stories/s1"]
    assert store.get_text("builds/b1/feedback/s1.json") == '{"é": 1}'
    assert mirror.restore(store, DirectoryStore(tmp_path), "nothing-here") == 1  # only the index
