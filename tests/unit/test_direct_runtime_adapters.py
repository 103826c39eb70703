"""The direct local build's adapters behave as the AWS services the generator was written against."""

from __future__ import annotations

import json
import threading

import pytest

from coach.adapters.idempotency import GenerationInProgressError, NotCached
from coach.adapters.model_registry import ModelRegistry, PublishedModel
from coach.domain.records import GenerationTask
from coach.local.dir_store import DirectoryStore
from coach.local.file_ledgers import FileBudgetLedger, FileGenerationGuard
from coach.local.memory_queue import LocalStoryQueue
from coach.local.parameter_file import ParameterFile


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def task(story_id: str) -> GenerationTask:
    return GenerationTask(build_id="b", story_id=story_id, provider="offline", model="m", prompt_version="editor-v1")


def test_an_unsettled_message_comes_back_after_the_visibility_timeout_then_dead_letters():
    clock = Clock()
    queue = LocalStoryQueue(max_receive_count=2, visibility_timeout_s=60, clock=clock)
    queue.enqueue([task("s1")])
    [first] = queue.receive(5)
    assert first.receive_count == 1 and queue.receive(5) == [] and queue.depth() == 1
    clock.now = 61  # the worker never answered
    [second] = queue.receive(5)
    assert second.receive_count == 2
    queue.delete(first.receipt_handle)  # a stale handle settles nothing
    assert queue.depth() == 1
    queue.retry_later(second.receipt_handle, 5)
    clock.now = 66
    assert queue.receive(5) == []  # its receive count reached the maximum: moved aside, never delivered again
    assert [t.story_id for t in queue.dead_letters()] == ["s1"] and queue.depth() == 0
    assert queue.redrive() == 1 and queue.receive(5)[0].receive_count == 1


def test_retry_later_brings_a_message_back_sooner_and_delete_removes_it():
    clock = Clock()
    queue = LocalStoryQueue(max_receive_count=3, visibility_timeout_s=900, clock=clock)
    queue.enqueue([task("s1"), task("s2")])
    one, two = queue.receive(10)
    queue.delete(one.receipt_handle)
    queue.retry_later(two.receipt_handle, 1)
    assert queue.receive(10) == []
    clock.now = 1
    [again] = queue.receive(10)
    assert again.task.story_id == "s2" and again.receive_count == 2
    queue.delete(again.receipt_handle)
    assert queue.depth() == 0 and queue.dead_letters() == []


def test_concurrent_reserves_never_commit_more_than_the_allowance_and_survive_a_new_process(tmp_path):
    ledger = FileBudgetLedger(tmp_path)
    granted = []

    def spend() -> None:
        for _ in range(50):
            reservation = ledger.reserve("b", "r1", amount_usd=0.01, allowance_usd=1.0)
            if reservation is not None:
                granted.append(reservation)

    threads = [threading.Thread(target=spend) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(granted) == 100  # exactly what fits, from 400 attempts
    for reservation in granted[:10]:
        ledger.settle(reservation, 0.005)
    ledger.release(granted[10])
    reread = FileBudgetLedger(tmp_path).state("b", "r1")  # as a re-run after a crash reads it
    assert reread.calls == 10 and reread.spent_usd == pytest.approx(0.05)
    assert reread.committed_usd == pytest.approx(0.05 + 0.89) and reread.reserved_usd == pytest.approx(0.89)
    assert not list(tmp_path.glob("*.tmp"))


def test_the_guard_runs_work_once_replays_it_after_a_restart_and_refuses_a_concurrent_duplicate(tmp_path):
    guard = FileGenerationGuard(tmp_path)
    key = task("s1").model_dump(mode="json")
    calls = []
    inside = threading.Event()
    release = threading.Event()

    def work() -> dict:
        calls.append(1)
        inside.set()
        release.wait(5)
        return {"record": "r"}

    worker = threading.Thread(target=lambda: guard.run(key, work))
    worker.start()
    inside.wait(5)
    with pytest.raises(GenerationInProgressError):
        guard.run(key, work)
    release.set()
    worker.join()
    guard.close()
    assert FileGenerationGuard(tmp_path).run(key, work) == ({"record": "r"}, True)
    assert len(calls) == 1
    # kill -9 in the middle of a journal line: the cut line is ignored, the complete ones still answer.
    with (tmp_path / "completed.jsonl").open("a") as journal:
        journal.write('{"key": "coach-generation-cut", "resu')
    after_crash = FileGenerationGuard(tmp_path)
    assert after_crash.run(key, work) == ({"record": "r"}, True)
    third = task("s3").model_dump(mode="json")
    assert after_crash.run(third, lambda: {"record": "new"}) == ({"record": "new"}, False)
    after_crash.close()
    assert FileGenerationGuard(tmp_path).run(third, work) == ({"record": "new"}, True)

    def skipped() -> dict:
        raise NotCached({"record": "failed"})

    other = task("s2").model_dump(mode="json")
    assert guard.run(other, skipped) == ({"record": "failed"}, False)
    assert guard.run(other, lambda: {"record": "ok"}) == ({"record": "ok"}, False)  # a failure is not remembered


def test_the_registry_file_keeps_publications_and_rollbacks_like_the_ssm_parameter(tmp_path):
    path = tmp_path / "registry.json"
    registry = ModelRegistry(ParameterFile(path), "/coach/critique-model")
    assert registry.current() is None and registry.history() == []
    for model in ("ft:a", "ft:b"):
        registry.publish(PublishedModel(model=model, prompt_version="p", build_id="b", trained_at="t"))
    again = ModelRegistry(ParameterFile(path), "/coach/critique-model")  # a later command
    assert again.current().model == "ft:b"
    assert again.rollback().model == "ft:a"
    assert [e.action for e in again.history()] == ["rollback", "publish", "publish"]
    assert json.loads(path.read_text())["parameters"]["/coach/critique-model"][-1]["Version"] == 3


def test_the_directory_store_lists_in_s3_key_order_and_never_shows_a_temporary_file(tmp_path):
    store = DirectoryStore(tmp_path)
    for key in ("builds/b/x/a.json", "builds/b/x-y.json", "builds/b/x.json"):
        store.put_text(key, "{}")
    (tmp_path / "builds" / "b" / "x" / "c.json.123-4.tmp").write_text("{half")
    assert list(store.list_keys("builds/b/")) == sorted(["builds/b/x/a.json", "builds/b/x-y.json",
                                                         "builds/b/x.json"])
    store.delete("builds/b/x.json")
    assert store.get_text("builds/b/x.json") is None and not store.exists("builds/b/x.json")
