"""Each stage's handler on a build of 200 and of 5,000 stories: what one invocation asks of AWS, and its memory,
must not grow with the build (the assembler's may grow with its shards, never per story).

The builds are seeded straight into the emulator's storage (their records are what the generator and the
shard stage would have written), so the test measures the handlers, not the seeding. Calls are counted with
a botocore hook on the handlers' own clients; memory is tracemalloc's peak during the invocation.
"""

from __future__ import annotations

import functools
import json
import tracemalloc
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import boto3
import pytest
from moto.core import DEFAULT_ACCOUNT_ID
from moto.s3.models import s3_backends

from coach import runtime
from coach.adapters.run_tally import run_item_id
from coach.adapters.storage import request_key, scrape_key
from coach.domain.critic import write_critique
from coach.domain.prompt import PROMPT_VERSION
from coach.domain.records import BuildRequest, GenerationRecord, GenerationTask, Story, Usage
from coach.local.dir_store import DirectoryStore
from coach.local.lambda_runtime import invoke
from coach.local.shard_map import in_process, run_shard_map
from coach.pipeline import assemble as assemble_module
from coach.pipeline.validate import judge, verdict_basis

SAMPLES = Path(__file__).resolve().parents[2] / "shared" / "coach" / "samples"
SIZES = (200, 5_000)
RUN = "run1"
BATCH = 200  # the shard batch measured at both sizes
pytestmark = pytest.mark.xdist_group("stage-scaling")


@functools.cache
def _samples() -> list[tuple[Story, GenerationRecord]]:
    """The bundled samples, each with an offline critique: the material every seeded story is cut from."""
    out = []
    for path in sorted(SAMPLES.glob("*.md")):
        title, _, body = path.read_text(encoding="utf-8").partition("\n")
        story = Story(story_id=path.stem, title=title.lstrip("# ").strip(), text=body.strip(), source="samples")
        out.append((story, GenerationRecord(
            build_id="x", story_id=path.stem, prompt_version=PROMPT_VERSION, provider="offline",
            model="coach-offline-critic-v1", status="generated", feedback=write_critique(story.text, title=story.title),
            usage=Usage(prompt_tokens=900, completion_tokens=300, total_tokens=1200, estimated=True), run_id=RUN)))
    return out


def _seed(folder: Path, build_id: str, n: int) -> DirectoryStore:
    """A build of n critiqued stories (verdicts judged once per sample) and its shards, in a folder store."""
    store = DirectoryStore(folder)
    request = BuildRequest(build_id=build_id, provider="offline")
    store.put_model(request_key(build_id), request)
    judged = {story.story_id: judge(record, story) for story, record in _samples()}
    ids = []
    for i in range(n):
        base, record = _samples()[i % len(_samples())]
        story_id = f"s{i:05d}"
        story = base.model_copy(update={"story_id": story_id, "text": f"Case {i}. {base.text}"})
        record = record.model_copy(update={"build_id": build_id, "story_id": story_id,
                                           "feedback": f"{record.feedback}\n\nCase {i}."})
        verdict = judged[base.story_id].model_copy(update={"story_id": story_id,
                                                           "basis": verdict_basis(record, story)})
        store.put_story(build_id, story)
        store.put_feedback(record)
        store.put_verdict(build_id, verdict)
        ids.append(story_id)
    store.put_json(scrape_key(build_id), {"build_id": build_id, "run_id": RUN, "stories": n, "enqueued": n,
                                          "enqueued_ids": ids})
    return store


def _into_emulator(folder: Path, bucket: str) -> None:
    backend = s3_backends[DEFAULT_ACCOUNT_ID]["global"]
    for path in folder.rglob("*"):
        if path.is_file():
            backend.put_object(bucket, path.relative_to(folder).as_posix(), path.read_bytes())


@contextmanager
def _measured() -> Iterator[dict]:
    """AWS calls by operation, and the peak of traced memory, of what runs inside."""
    calls: Counter[str] = Counter()
    hooks = []
    for service in ("s3", "sqs", "dynamodb"):
        client = runtime.client(service)

        def hook(model, _service=service, **_):
            calls[f"{_service}.{model.name}"] += 1

        client.meta.events.register("before-call", hook)
        hooks.append((client, hook))
    found: dict = {"calls": calls}
    tracemalloc.start()
    try:
        yield found
    finally:
        found["peak"] = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        for client, hook in hooks:
            client.meta.events.unregister("before-call", hook)


@pytest.fixture(scope="module")
def seeded(tmp_path_factory) -> dict[int, Path]:
    """Each size's build, seeded once and shared by the tests (its shards included)."""
    folders = {}
    for n in SIZES:
        folder = tmp_path_factory.mktemp(f"build{n}")
        store = _seed(folder, f"scale{n}", n)
        run_shard_map(f"scale{n}", RUN, store=store, call=in_process(store, max_story_tokens=1_500))
        folders[n] = folder
    return folders


def _load(aws, seeded, n: int) -> str:
    _into_emulator(seeded[n], aws.bucket)
    return f"scale{n}"


def _sqs_event(aws, tasks: list[GenerationTask]) -> dict:
    return {"Records": [{
        "messageId": f"m{i}", "receiptHandle": f"r{i}", "body": task.model_dump_json(),
        "attributes": {"ApproximateReceiveCount": "1", "SentTimestamp": "0", "SenderId": "x",
                       "ApproximateFirstReceiveTimestamp": "0"},
        "messageAttributes": {}, "md5OfBody": "", "eventSource": "aws:sqs", "eventSourceARN": aws.queue_arn,
        "awsRegion": "us-east-1"} for i, task in enumerate(tasks)]}


def _per_size(aws, seeded, run) -> dict[int, dict]:
    results = {}
    for n in SIZES:
        build_id = _load(aws, seeded, n)
        results[n] = run(build_id, n)
    return results


def test_the_generator_asks_the_same_of_aws_at_any_build_size(aws, seeded):
    def run(build_id: str, n: int) -> dict:
        stories = [Story(story_id=f"new{n}-{i}", title="New", text=_samples()[i][0].text, source="samples")
                   for i in range(2)]
        store = runtime.store()
        for story in stories:
            store.put_story(build_id, story)
        tasks = [GenerationTask(build_id=build_id, story_id=s.story_id, prompt_version=PROMPT_VERSION,
                                provider="offline", model="coach-offline-critic-v1", run_id=RUN) for s in stories]
        with _measured() as found:
            result = invoke("generator", _sqs_event(aws, tasks))
        assert result["batchItemFailures"] == []
        return found

    results = _per_size(aws, seeded, run)
    assert results[200]["calls"] == results[5_000]["calls"]
    assert results[5_000]["calls"]["dynamodb.TransactWriteItems"] == 2  # each story counted in the run's tally


def test_the_progress_check_is_a_few_calls_at_any_build_size(aws, seeded):
    def run(build_id: str, n: int) -> dict:
        boto3.client("dynamodb").put_item(TableName=aws.table, Item={
            "id": {"S": run_item_id(build_id, RUN)}, "generated": {"N": str(n)}})
        with _measured() as found:
            progress = invoke("progress", {"build_id": build_id, "run_id": RUN, "enqueued": n})
        assert progress["done"] and progress["generated"] == n
        return found

    results = _per_size(aws, seeded, run)
    assert results[200]["calls"] == results[5_000]["calls"]
    assert sum(results[5_000]["calls"].values()) == 3  # the tally, the queue, the dead-letter queue


def test_a_shard_batch_asks_the_same_of_aws_and_holds_the_same_memory_at_any_build_size(aws, seeded):
    def run(build_id: str, n: int) -> dict:
        keys = [f"builds/{build_id}/stories/s{i:05d}.json" for i in range(BATCH)]
        event = {"Items": [{"Key": k, "Size": 1, "StorageClass": "STANDARD"} for k in keys],
                 "BatchInput": {"build_id": build_id, "run_id": "measured"}}
        with _measured() as found:
            out = invoke("shard", event)
        assert out["stories"] == BATCH
        return found

    results = _per_size(aws, seeded, run)
    calls = results[5_000]["calls"]
    assert results[200]["calls"] == calls
    # Three reads per story (story, critique, verdict: the generator's verdict is reused, not judged again),
    # the request, and the shard's three files.
    assert calls == {"s3.GetObject": 3 * BATCH + 1, "s3.PutObject": 3}
    assert results[5_000]["peak"] < 1.25 * results[200]["peak"]


def test_the_assembler_asks_less_per_story_as_the_build_grows(aws, seeded, monkeypatch):
    monkeypatch.setattr(assemble_module, "REPORT_SAMPLE", 100)

    def run(build_id: str, n: int) -> dict:
        shards = run_shard_map_output(build_id)
        with _measured() as found:
            out = invoke("assembler", {"request": {"build_id": build_id, "provider": "offline"},
                                       "scrape": {"build_id": build_id, "run_id": RUN}, "shards": shards})
        assert out["train_examples"] + out["validation_examples"] > 0
        found["stories"] = n
        return found

    def run_shard_map_output(build_id: str) -> dict:
        store = runtime.store()
        manifest = next(k for k in store.list_keys(f"builds/{build_id}/map-results/") if k.endswith("manifest.json"))
        return {"MapRunArn": "local", "ResultWriterDetails": {"Bucket": aws.bucket, "Key": manifest}}

    results = _per_size(aws, seeded, run)
    small, large = results[200], results[5_000]
    per_story = {n: sum(r["calls"].values()) / n for n, r in results.items()}
    assert per_story[5_000] < per_story[200]
    assert large["peak"] / 5_000 < small["peak"] / 200  # the fixed cost spreads; no per-story growth
    assert large["peak"] < 64 * 2**20
    print(json.dumps({n: {"calls": dict(r["calls"]), "peak_mb": round(r["peak"] / 2**20, 1)}
                      for n, r in results.items()}))
