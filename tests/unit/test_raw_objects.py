"""Raw bytes and listings with ETags answer alike on the S3 store (moto) and the folder store."""

from __future__ import annotations

import boto3
import pytest
from botocore.exceptions import ClientError
from botocore.stub import Stubber
from moto import mock_aws

from coach.adapters.storage import BuildStore
from coach.local.dir_store import DirectoryStore

BUCKET = "coach-raw-tests"


@pytest.fixture(params=["s3", "folder"])
def store(request, tmp_path):
    if request.param == "folder":
        yield DirectoryStore(tmp_path / "state")
        return
    with mock_aws():
        s3 = boto3.client("s3", region_name="us-east-1")
        s3.create_bucket(Bucket=BUCKET)
        yield BuildStore(BUCKET, s3)


def test_bytes_are_written_and_read_back_exactly(store):
    data = bytes(range(256)) + "é\r\n".encode()
    store.put_bytes("builds/b1/blob.bin", data)
    assert store.get_bytes("builds/b1/blob.bin") == data
    assert store.get_bytes("builds/b1/missing.bin") is None  # as get_text answers a missing key
    store.put_text("builds/b1/x.json", '{"é": 1}')
    assert store.get_bytes("builds/b1/x.json") == '{"é": 1}'.encode()


def test_list_etags_gives_each_key_in_order_with_a_tag_that_changes_with_the_object(store):
    store.put_bytes("builds/b1/b.json", b"1")
    store.put_bytes("builds/b1/a.json", b"1")
    store.put_bytes("builds/b2/a.json", b"1")
    listed = list(store.list_etags("builds/b1/"))
    assert [key for key, _ in listed] == ["builds/b1/a.json", "builds/b1/b.json"]
    assert [key for key, _ in listed] == list(store.list_keys("builds/b1/"))
    assert all(tag for _, tag in listed)
    before = dict(listed)["builds/b1/a.json"]
    store.put_bytes("builds/b1/a.json", b"22")
    after = dict(store.list_etags("builds/b1/"))
    assert after["builds/b1/a.json"] != before and after["builds/b1/b.json"] == dict(listed)["builds/b1/b.json"]
    assert list(store.list_etags("builds/none/")) == []


def test_the_s3_listing_pages_through_every_object():
    with mock_aws():
        s3 = boto3.client("s3", region_name="us-east-1")
        s3.create_bucket(Bucket=BUCKET)
        store = BuildStore(BUCKET, s3)
        for i in range(1_005):  # more than one page of list_objects_v2 (1,000 keys)
            store.put_bytes(f"index/stories/s{i:04d}", b"b1")
        listed = dict(store.list_etags("index/stories/"))
        assert len(listed) == 1_005
        assert listed["index/stories/s1004"] == s3.head_object(Bucket=BUCKET, Key="index/stories/s1004")["ETag"]


def test_s3_content_type_is_sent_only_when_given_and_other_errors_are_raised():
    with mock_aws():
        s3 = boto3.client("s3", region_name="us-east-1")
        s3.create_bucket(Bucket=BUCKET)
        store = BuildStore(BUCKET, s3)
        store.put_bytes("plain", b"x")
        store.put_bytes("typed", b"x", content_type="text/plain")
        assert s3.head_object(Bucket=BUCKET, Key="plain")["ContentType"] == "binary/octet-stream"
        assert s3.head_object(Bucket=BUCKET, Key="typed")["ContentType"] == "text/plain"
    client = boto3.client("s3", region_name="us-east-1")
    stubber = Stubber(client)
    stubber.add_client_error("get_object", service_error_code="AccessDenied", http_status_code=403)
    with stubber, pytest.raises(ClientError):  # not "missing": the caller must not read it as absent
        BuildStore(BUCKET, client).get_bytes("secret")
