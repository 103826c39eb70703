"""The worker loop shared by the local SQS poller and the direct generator."""

from __future__ import annotations

import threading

import pytest

from coach.local.workers import WorkStats, run_workers


def test_counts_added_from_many_threads_are_exact():
    stats = WorkStats()

    def count() -> None:
        for i in range(1_000):
            stats.add(2, i % 2, error=i % 10 == 0)

    threads = [threading.Thread(target=count) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert (stats.batches, stats.messages, stats.failures, stats.handler_errors) == (4_000, 8_000, 2_000, 400)


def _looper(stop: threading.Event, seen: list[str]):
    def work() -> None:
        seen.append(threading.current_thread().name)
        while not stop.is_set():
            stop.wait(0.01)
        seen.append("finished")
    return work


def test_workers_run_until_drained_and_are_joined_before_it_returns():
    stop, seen, ticks = threading.Event(), [], []
    stop.set()  # left over from an earlier run: cleared before the workers start
    drained = run_workers(_looper(stop, seen), name="w", concurrency=3, stop=stop,
                          drained=lambda: len(ticks) >= 3, on_tick=lambda: ticks.append(1), timeout_s=None,
                          tick_s=0.01)
    assert drained and len(ticks) == 3 and stop.is_set()
    assert sorted(seen) == ["finished"] * 3 + ["w-0", "w-1", "w-2"]


def test_a_timeout_is_false_and_an_interrupt_still_stops_every_worker():
    stop, seen = threading.Event(), []
    assert not run_workers(_looper(stop, seen), name="w", concurrency=2, stop=stop, drained=lambda: False,
                           on_tick=None, timeout_s=0.05, tick_s=0.01)
    assert seen.count("finished") == 2

    def interrupt() -> None:
        raise KeyboardInterrupt

    seen.clear()
    with pytest.raises(KeyboardInterrupt):
        run_workers(_looper(stop, seen), name="w", concurrency=2, stop=stop, drained=lambda: False,
                    on_tick=interrupt, timeout_s=None, tick_s=0.01)
    assert seen.count("finished") == 2
