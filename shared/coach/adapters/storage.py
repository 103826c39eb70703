"""S3 layout of a build, and the only place its keys are derived.

builds/{build_id}/request.json          the BuildRequest
builds/{build_id}/scrape.json           what the scraper found and enqueued
builds/{build_id}/progress.json         when the story queue was first seen drained (progress check)
builds/{build_id}/stories/{story}.json  Story records
builds/{build_id}/feedback/{story}.json GenerationRecord (generated, failed or skipped_budget)
builds/{build_id}/verdicts/{story}.json Verdict
builds/{build_id}/dataset/...           train.jsonl, validation.jsonl, rejected.jsonl, manifest.json,
                                        README.md (the dataset card)
builds/{build_id}/eval/set.json         the evaluation set (held-out stories, planted-flaw copies, references)
builds/{build_id}/eval/answers/{model}.jsonl  a critic's judged answers on the set
builds/{build_id}/eval/golden/{model}.jsonl   a model's answers kept for comparison after it is gone
builds/{build_id}/eval/reports/{model}.json   an evaluation report (scores, judge, gate decision)
builds/{build_id}/eval/promotions.jsonl       models published over the gate by a person, and why
builds/{build_id}/report/report.html    the build report: one self-contained page
builds/{build_id}/batch/state.json      batch generation: the provider batches and what each holds
builds/{build_id}/batch/requests/{chunk}.jsonl  one provider batch's requests (Bedrock reads it from here)
builds/{build_id}/batch/output/{chunk}/ what Bedrock batch inference writes for that batch
builds/{build_id}/shards/{run}/...      the shard map's output, one shard per batch of stories
builds/{build_id}/map-results/...       the shard map's ResultWriter files (failed batches, their causes)
builds/{build_id}/staging/{file}        a dataset file being written and checked
index/stories/{story_id}                marker: a story already taken by some build (deduplication)
"""

from __future__ import annotations

import hashlib
import io
import json
import re
from collections.abc import Iterator, Sequence
from typing import Any, BinaryIO, Literal, TypeVar

import boto3
from botocore.exceptions import ClientError
from pydantic import BaseModel

from coach.adapters import multipart
from coach.adapters.object_reader import S3ObjectReader
from coach.adapters.streams import READ_CHUNK, ObjectWriter, lines_of
from coach.domain.records import GenerationRecord, Story, Verdict
from coach.errors import CoachError

M = TypeVar("M", bound=BaseModel)
RecordKind = Literal["stories", "feedback", "verdicts"]


def build_prefix(build_id: str) -> str:
    return f"builds/{build_id}/"


def request_key(build_id: str) -> str:
    return f"{build_prefix(build_id)}request.json"


def scrape_key(build_id: str) -> str:
    return f"{build_prefix(build_id)}scrape.json"


def progress_key(build_id: str) -> str:
    return f"{build_prefix(build_id)}progress.json"


def records_prefix(build_id: str, kind: RecordKind) -> str:
    """Where a build keeps one JSON record per story: its stories, their feedback or their verdicts."""
    return f"{build_prefix(build_id)}{kind}/"


def index_prefix() -> str:
    """Markers of the stories some build already took, shared by every build."""
    return "index/stories/"


def record_key(build_id: str, kind: RecordKind, story_id: str) -> str:
    return f"{records_prefix(build_id, kind)}{story_id}.json"


def story_key(build_id: str, story_id: str) -> str:
    return record_key(build_id, "stories", story_id)


def feedback_key(build_id: str, story_id: str) -> str:
    return record_key(build_id, "feedback", story_id)


def verdict_key(build_id: str, story_id: str) -> str:
    return record_key(build_id, "verdicts", story_id)


def dataset_key(build_id: str, name: str) -> str:
    return f"{build_prefix(build_id)}dataset/{name}"


def fine_tune_events_key(build_id: str) -> str:
    return dataset_key(build_id, "fine-tune/events.jsonl")


def fine_tune_metrics_key(build_id: str) -> str:
    return dataset_key(build_id, "fine-tune/metrics.json")


def fine_tune_step_metrics_key(build_id: str) -> str:
    return dataset_key(build_id, "fine-tune/step_metrics.csv")


def fine_tune_validation_metrics_key(build_id: str) -> str:
    return dataset_key(build_id, "fine-tune/validation_metrics.csv")


def fine_tune_output_prefix(build_id: str) -> str:
    """Where a Bedrock customization job writes its own output (metrics files)."""
    return f"{build_prefix(build_id)}fine-tune-output/"


def model_slug(model: str) -> str:
    """A model id as one safe key segment ("ft:gpt-4o-mini:acme::x1" has colons); distinct ids stay distinct."""
    slug = re.sub(r"[^A-Za-z0-9._-]+", "_", model).strip("_.") or "model"
    if slug != model:
        slug = f"{slug[:100]}-{hashlib.sha256(model.encode('utf-8')).hexdigest()[:8]}"
    return slug


def eval_key(build_id: str, name: str) -> str:
    return f"{build_prefix(build_id)}eval/{name}"


def eval_set_key(build_id: str) -> str:
    return eval_key(build_id, "set.json")


def eval_answers_key(build_id: str, model: str) -> str:
    return eval_key(build_id, f"answers/{model_slug(model)}.jsonl")


def golden_key(build_id: str, model: str) -> str:
    return eval_key(build_id, f"golden/{model_slug(model)}.jsonl")


def eval_report_key(build_id: str, model: str) -> str:
    return eval_key(build_id, f"reports/{model_slug(model)}.json")


def promotions_key(build_id: str) -> str:
    return eval_key(build_id, "promotions.jsonl")


def report_key(build_id: str, name: str = "report.html") -> str:
    return f"{build_prefix(build_id)}report/{name}"


def card_key(build_id: str) -> str:
    """The dataset card sits beside the dataset files, as a dataset hub expects."""
    return dataset_key(build_id, "README.md")


def batch_state_key(build_id: str) -> str:
    return f"{build_prefix(build_id)}batch/state.json"


def batch_requests_key(build_id: str, chunk_id: str) -> str:
    return f"{build_prefix(build_id)}batch/requests/{chunk_id}.jsonl"


def batch_output_prefix(build_id: str, chunk_id: str) -> str:
    return f"{build_prefix(build_id)}batch/output/{chunk_id}/"


def shards_prefix(build_id: str, run_id: str) -> str:
    """A run's dataset shards (coach.pipeline.shard): lines, records and summary per batch of stories."""
    return f"{build_prefix(build_id)}shards/{run_id}/"


def map_results_prefix(build_id: str) -> str:
    """Where the shard map's ResultWriter (or the local map) lists its batches' outcomes."""
    return f"{build_prefix(build_id)}map-results"


def staging_key(build_id: str, name: str) -> str:
    """A dataset file while it is written and checked; copied to dataset/ only when every check passes."""
    return f"{build_prefix(build_id)}staging/{name}"


def index_key(story_id: str) -> str:
    return f"{index_prefix()}{story_id}"


class ObjectMissingError(CoachError):
    """A streamed read of a key that does not exist (get_text answers None instead)."""

    code = "object_missing"


def _missing(exc: ClientError) -> bool:
    return exc.response.get("Error", {}).get("Code") in ("NoSuchKey", "404", "NotFound")


class BuildStore:
    """Typed reads and writes of a build's records in one S3 bucket.

    Large files (a dataset's JSONL) are streamed: `open_writer` / `iter_lines` / `open_reader` /
    `copy_parts` never hold a whole object in memory, only one part or one line.
    """

    def __init__(self, bucket: str, s3_client: Any | None = None) -> None:
        self.bucket = bucket
        self.s3 = s3_client or boto3.client("s3")

    # raw objects ---------------------------------------------------------------------------------
    def put_bytes(self, key: str, data: bytes, content_type: str | None = None) -> None:
        """Write `data` as it is; without a content type S3 stores its default (binary/octet-stream)."""
        extra = {} if content_type is None else {"ContentType": content_type}
        self.s3.put_object(Bucket=self.bucket, Key=key, Body=data, **extra)

    def get_bytes(self, key: str) -> bytes | None:
        try:
            return self.s3.get_object(Bucket=self.bucket, Key=key)["Body"].read()
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("NoSuchKey", "404"):
                return None
            raise

    def put_text(self, key: str, text: str, content_type: str = "application/json") -> None:
        self.put_bytes(key, text.encode("utf-8"), content_type)

    def get_text(self, key: str) -> str | None:
        body = self.get_bytes(key)
        return None if body is None else body.decode("utf-8")

    def put_json(self, key: str, data: Any) -> None:
        self.put_text(key, json.dumps(data, ensure_ascii=False, indent=None))

    def get_json(self, key: str) -> Any | None:
        text = self.get_text(key)
        return None if text is None else json.loads(text)

    def put_model(self, key: str, model: BaseModel) -> None:
        self.put_text(key, model.model_dump_json())

    def get_model(self, key: str, model: type[M]) -> M | None:
        text = self.get_text(key)
        return None if text is None else model.model_validate_json(text)

    def exists(self, key: str) -> bool:
        try:
            self.s3.head_object(Bucket=self.bucket, Key=key)
        except ClientError as exc:
            if _missing(exc):
                return False
            raise
        return True

    def delete(self, key: str) -> None:
        self.s3.delete_object(Bucket=self.bucket, Key=key)

    def copy(self, source: str, key: str) -> None:
        """A server-side copy (one request for objects up to 5 GB: a dataset of about a million examples)."""
        self.s3.copy_object(Bucket=self.bucket, Key=key, CopySource={"Bucket": self.bucket, "Key": source})

    # streamed objects ----------------------------------------------------------------------------
    def open_writer(self, key: str, content_type: str = "application/x-ndjson",
                    part_size: int = multipart.DEFAULT_PART_SIZE) -> ObjectWriter:
        """A writer of `key`: `with store.open_writer(key) as out: out.write(line)`.

        At most `part_size` bytes are buffered; a larger object goes up as an S3 multipart upload, a smaller
        one as a single PutObject. The object appears when the block ends; if the block raises, the upload
        is aborted and nothing is written. A part_size under S3's minimum part (5 MiB) is a ValueError.
        """
        return multipart.MultipartWriter(self.s3, self.bucket, key, content_type=content_type,
                                         part_size=part_size)

    def open_reader(self, key: str) -> BinaryIO:
        """A buffered, seekable binary reader of `key`; ObjectMissingError (at once) if there is none."""
        size, etag = self._head(key)
        return io.BufferedReader(S3ObjectReader(self.s3, self.bucket, key, size=size, etag=etag),
                                 buffer_size=READ_CHUNK)

    def iter_lines(self, key: str) -> Iterator[str]:
        """The object's lines, one at a time (split on "\\n", newline removed, UTF-8).

        A missing key raises ObjectMissingError when this is called, not an empty iterator: an absent
        dataset must not read as an empty one. Callers that may meet a missing key check `exists` first.
        """
        return lines_of(self.open_reader(key))

    def copy_parts(self, key: str, source_keys: Sequence[str], content_type: str = "application/x-ndjson") -> int:
        """Write the concatenation of `source_keys` to `key`; returns its size in bytes.

        Joined inside S3 (UploadPartCopy, nothing downloaded) when every source but the last is at least
        one part (5 MiB); otherwise streamed through `open_writer`.
        """
        sizes = [self._head(source)[0] for source in source_keys]
        if multipart.copyable(sizes):
            return multipart.copy_objects(self.s3, self.bucket, key, list(zip(source_keys, sizes, strict=True)),
                                          content_type=content_type)
        return self._copy_streaming(key, source_keys, content_type)

    def _copy_streaming(self, key: str, source_keys: Sequence[str], content_type: str) -> int:
        with self.open_writer(key, content_type) as out:
            for source in source_keys:
                with self.open_reader(source) as reader:
                    while chunk := reader.read(READ_CHUNK):
                        out.write_bytes(chunk)
        return out.bytes_written

    def _head(self, key: str) -> tuple[int, str | None]:
        try:
            head = self.s3.head_object(Bucket=self.bucket, Key=key)
        except ClientError as exc:
            if _missing(exc):
                raise ObjectMissingError(f"no object {key} in s3://{self.bucket}") from None
            raise
        return int(head["ContentLength"]), head.get("ETag")

    def list_keys(self, prefix: str) -> Iterator[str]:
        for key, _etag in self.list_etags(prefix):
            yield key

    def list_etags(self, prefix: str) -> Iterator[tuple[str, str]]:
        """(key, ETag) of each object under `prefix`, in key order: the ETag changes whenever the content does."""
        paginator = self.s3.get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=self.bucket, Prefix=prefix):
            for item in page.get("Contents", []):
                yield item["Key"], item.get("ETag", "")

    def _models_under(self, prefix: str, model: type[M]) -> Iterator[M]:
        for key in self.list_keys(prefix):
            if key.endswith(".json"):
                found = self.get_model(key, model)
                if found is not None:
                    yield found

    # typed records -------------------------------------------------------------------------------
    def put_story(self, build_id: str, story: Story) -> None:
        self.put_model(story_key(build_id, story.story_id), story)

    def get_story(self, build_id: str, story_id: str) -> Story | None:
        return self.get_model(story_key(build_id, story_id), Story)

    def stories(self, build_id: str) -> Iterator[Story]:
        return self._models_under(records_prefix(build_id, "stories"), Story)

    def put_feedback(self, record: GenerationRecord) -> None:
        self.put_model(feedback_key(record.build_id, record.story_id), record)

    def get_feedback(self, build_id: str, story_id: str) -> GenerationRecord | None:
        return self.get_model(feedback_key(build_id, story_id), GenerationRecord)

    def feedback(self, build_id: str) -> Iterator[GenerationRecord]:
        return self._models_under(records_prefix(build_id, "feedback"), GenerationRecord)

    def put_verdict(self, build_id: str, verdict: Verdict) -> None:
        self.put_model(verdict_key(build_id, verdict.story_id), verdict)

    def verdicts(self, build_id: str) -> Iterator[Verdict]:
        return self._models_under(records_prefix(build_id, "verdicts"), Verdict)

    def seen_story_ids(self) -> set[str]:
        return {key.rsplit("/", 1)[-1] for key in self.list_keys(index_prefix())}

    def mark_seen(self, build_id: str, story_id: str) -> None:
        self.put_text(index_key(story_id), build_id, content_type="text/plain")
