"""The fake OpenAI server's Uploads API, through the real `openai` SDK: a file sent in parts becomes a file
like any other once completed, with the checks the real API makes."""

from __future__ import annotations

import hashlib
import io

import openai
import pytest

from tests.fakes.openai_server import FakeOpenAIServer

KEY = "sk-test-0123456789"


@pytest.fixture
def client():
    with FakeOpenAIServer(api_key=KEY) as fake:
        sdk = openai.OpenAI(base_url=fake.base_url, api_key=KEY, max_retries=0, timeout=10.0)
        sdk.fake = fake
        yield sdk


def _create(client, content: bytes, **extra):
    return client.uploads.create(bytes=len(content), filename="train.jsonl", mime_type="application/jsonl",
                                 purpose="fine-tune", **extra)


def test_parts_are_joined_in_the_order_given_at_completion(client):
    content = b"".join(b'{"messages": [{"role": "assistant", "content": "%d"}]}\n' % i for i in range(30))
    upload = _create(client, content)
    assert upload.status == "pending" and upload.object == "upload" and upload.bytes == len(content)
    assert upload.expires_at == upload.created_at + 3600 and upload.file is None
    pieces = [content[:400], content[400:900], content[900:]]
    # Sent out of order (as parallel parts may be), joined by the order of part_ids.
    third = client.uploads.parts.create(upload.id, data=pieces[2])
    first = client.uploads.parts.create(upload.id, data=io.BytesIO(pieces[0]))
    second = client.uploads.parts.create(upload.id, data=("part-2", pieces[1]))
    assert first.object == "upload.part" and first.upload_id == upload.id
    done = client.uploads.complete(upload.id, part_ids=[first.id, second.id, third.id],
                                   md5=hashlib.md5(content).hexdigest())
    assert done.status == "completed" and done.file is not None
    assert done.file.purpose == "fine-tune" and done.file.bytes == len(content)
    assert done.file.filename == "train.jsonl"
    assert client.files.content(done.file.id).content == content
    job = client.fine_tuning.jobs.create(model="gpt-4o-mini", training_file=done.file.id)
    assert job.training_file == done.file.id
    with pytest.raises(openai.BadRequestError):  # completed: no more parts
        client.uploads.parts.create(upload.id, data=b"more")


def test_completion_checks_the_size_the_parts_and_the_checksum(client):
    upload = _create(client, b"0123456789")
    part = client.uploads.parts.create(upload.id, data=b"01234")
    with pytest.raises(openai.BadRequestError, match="does not match the number of bytes expected"):
        client.uploads.complete(upload.id, part_ids=[part.id])
    rest = client.uploads.parts.create(upload.id, data=b"56789")
    with pytest.raises(openai.BadRequestError, match="Invalid part_ids"):
        client.uploads.complete(upload.id, part_ids=[part.id, "part_unknown"])
    with pytest.raises(openai.BadRequestError, match="md5"):
        client.uploads.complete(upload.id, part_ids=[part.id, rest.id], md5="0" * 32)
    with pytest.raises(openai.BadRequestError, match="exceed"):
        client.uploads.parts.create(upload.id, data=b"x")
    assert client.uploads.complete(upload.id, part_ids=[part.id, rest.id]).status == "completed"


def test_a_cancelled_upload_takes_no_parts_and_makes_no_file(client):
    upload = _create(client, b"abc")
    client.uploads.parts.create(upload.id, data=b"ab")
    cancelled = client.uploads.cancel(upload.id)
    assert cancelled.status == "cancelled" and cancelled.file is None
    with pytest.raises(openai.BadRequestError):
        client.uploads.parts.create(upload.id, data=b"c")
    assert client.fake.files == {}
    with pytest.raises(openai.NotFoundError):
        client.uploads.cancel("upload_missing")


def test_fine_tune_uploads_must_be_jsonl(client):
    with pytest.raises(openai.BadRequestError, match="mime type"):
        client.uploads.create(bytes=3, filename="x.txt", mime_type="text/plain", purpose="fine-tune")
