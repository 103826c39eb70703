"""Fine-tuning files go to OpenAI as streams: a file over the part size through the Uploads API in parts,
cancelled if a part fails; the assembler's recorded checks are trusted only for the file it checked."""

from __future__ import annotations

import json

import openai
import pytest

from coach.adapters.storage import dataset_key
from coach.domain.records import BuildManifest, BuildRequest
from coach.errors import CoachError
from coach.local.dir_store import DirectoryStore
from coach.local.lambda_runtime import invoke
from coach.pipeline import finetune
from coach.pipeline.assemble import DatasetInvalidError, assemble
from tests.fakes.openai_server import Fault
from tests.handlers.test_finetune_lifecycle import _request, lifecycle, seed_build
from tests.support.shards import sharded

__all__ = ["lifecycle"]  # the fixture, shared with the fine-tune lifecycle tests

PART = 4096  # bytes: the seeded dataset is several parts


def _manifest(store, build_id: str = "ft-build") -> BuildManifest:
    return store.get_model(dataset_key(build_id, "manifest.json"), BuildManifest)


def _sent(upload) -> bytes:
    return b"".join(upload.parts[p] for p in upload.completed_part_ids)


def test_a_file_over_the_part_size_goes_through_the_uploads_api_in_parts(lifecycle, monkeypatch):
    fake, store = lifecycle.fake, lifecycle.store
    monkeypatch.setenv("COACH_UPLOAD_PART_BYTES", str(PART))
    seed_build(store)
    invoke("assembler", sharded(_request()))
    train = store.get_text(dataset_key("ft-build", "train.jsonl")).encode()
    assert len(train) > 3 * PART

    started = invoke("finetune", {"action": "start", "request": _request()})
    body = fake.jobs[started["job_id"]].request_body
    assert fake.file_content(body["training_file"]).encode() == train
    uploads = {u.file.id: u for u in fake.uploads.values()}
    upload = uploads[body["training_file"]]
    assert upload.status == "completed" and upload.filename == "ft-build-train.jsonl"
    assert len(upload.completed_part_ids) == -(-len(train) // PART) > 1
    assert all(len(upload.parts[p]) == PART for p in upload.completed_part_ids[:-1])
    assert _sent(upload) == train
    # The validation file went its own way (Files API or Uploads, by its size) and arrived whole too.
    validation = store.get_text(dataset_key("ft-build", "validation.jsonl"))
    assert fake.file_content(body["validation_file"]) == validation
    assert {f.purpose for f in fake.files.values()} == {"fine-tune"}
    assert _manifest(store).fine_tune.training_file == body["training_file"]


def test_a_part_that_fails_cancels_the_upload_and_the_start_fails_with_a_code(lifecycle, monkeypatch):
    fake, store = lifecycle.fake, lifecycle.store
    monkeypatch.setenv("COACH_UPLOAD_PART_BYTES", str(PART))
    seed_build(store)
    invoke("assembler", sharded(_request()))
    fake.configure(fault_paths=("/v1/uploads/",))  # parts, completion and cancel; not the creation
    fake.push_script(200, Fault(400, message="The part could not be stored."))
    with pytest.raises(CoachError) as failed:
        invoke("finetune", {"action": "start", "request": _request()})
    assert failed.value.code == "upstream_rejected"
    assert "uploading train.jsonl failed: HTTP 400: The part could not be stored." in failed.value.message
    [upload] = fake.uploads.values()
    assert upload.status == "cancelled" and upload.file is None
    assert fake.files == {} and fake.jobs == {}
    cancels = [r for r in fake.requests if r.path.endswith("/cancel")]
    assert [r.path for r in cancels] == [f"/v1/uploads/{upload.id}/cancel"]
    fine_tune = _manifest(store).fine_tune
    assert fine_tune.status == "failed" and fine_tune.error.code == "upstream_rejected"


def test_small_files_are_sent_to_the_files_api(lifecycle):
    fake, store = lifecycle.fake, lifecycle.store
    seed_build(store)
    invoke("assembler", sharded(_request()))
    started = invoke("finetune", {"action": "start", "request": _request()})
    assert fake.uploads == {} and len(fake.files) == 2
    body = fake.jobs[started["job_id"]].request_body
    assert fake.file_content(body["training_file"]) == store.get_text(dataset_key("ft-build", "train.jsonl"))


def test_a_file_changed_after_assembly_is_refused_before_upload(lifecycle):
    fake, store = lifecycle.fake, lifecycle.store
    seed_build(store)
    invoke("assembler", sharded(_request()))
    key = dataset_key("ft-build", "train.jsonl")
    lines = store.get_text(key).splitlines()
    store.put_text(key, "\n".join(lines[:-1]) + "\n")  # one example dropped: still valid JSONL
    with pytest.raises(DatasetInvalidError) as refused:
        invoke("finetune", {"action": "start", "request": _request()})
    assert refused.value.code == "dataset_changed"
    assert f"has {len(lines) - 1} lines, but the assembler checked {len(lines)} examples" in refused.value.message
    store.s3.delete_object(Bucket=store.bucket, Key=dataset_key("ft-build", "validation.jsonl"))
    store.put_text(key, "\n".join(lines) + "\n")
    with pytest.raises(DatasetInvalidError) as gone:
        invoke("finetune", {"action": "start", "request": _request()})
    assert gone.value.code == "dataset_changed" and "validation.jsonl" in gone.value.message
    assert fake.files == {} and fake.uploads == {} and fake.jobs == {}
    assert _manifest(store).fine_tune.error.code == "dataset_changed"


def test_a_file_the_assembler_never_checked_is_refused(lifecycle):
    good = {"messages": [{"role": "user", "content": "A story."}, {"role": "assistant", "content": "Good."}]}
    lifecycle.store.put_text(dataset_key("raw-build", "train.jsonl"),
                             "".join(json.dumps(good) + "\n" for _ in range(12)))
    with pytest.raises(DatasetInvalidError) as refused:
        invoke("finetune", {"action": "start", "request": _request("raw-build")})
    assert refused.value.code == "dataset_unchecked" and "run the assemble step" in refused.value.message
    with pytest.raises(DatasetInvalidError) as missing:
        invoke("finetune", {"action": "start", "request": _request("no-build")})
    assert missing.value.code == "dataset_missing"
    assert lifecycle.fake.files == {} and lifecycle.fake.uploads == {}


def test_the_part_size_setting_is_checked(lifecycle, monkeypatch):
    monkeypatch.setenv("COACH_UPLOAD_PART_BYTES", str(65 * 1024 * 1024))
    seed_build(lifecycle.store)
    invoke("assembler", sharded(_request()))
    with pytest.raises(CoachError) as refused:
        invoke("finetune", {"action": "start", "request": _request()})
    assert refused.value.code == "bad_setting" and "COACH_UPLOAD_PART_BYTES" in refused.value.message


@pytest.mark.parametrize("part", [PART, 64 * 1024 * 1024])
def test_a_local_build_streams_its_files_from_the_folder_store(lifecycle, monkeypatch, tmp_path, part):
    """The direct local runtime's store sends the files from disk, through either API."""
    monkeypatch.setenv("COACH_UPLOAD_PART_BYTES", str(part))
    store = DirectoryStore(tmp_path)
    seed_build(store)
    request = BuildRequest.model_validate(_request())
    assemble(request, store=store, shards=sharded(_request(), store)["shards"])
    fake = lifecycle.fake
    result = finetune.start(request, store=store, client_factory=lambda: openai.OpenAI(
        api_key="sk-test", base_url=fake.base_url, max_retries=0))
    train = (tmp_path / dataset_key("ft-build", "train.jsonl")).read_text()
    assert fake.file_content(result.training_file) == train
    assert bool(fake.uploads) == (part == PART)
