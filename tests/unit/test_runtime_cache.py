"""The process-wide wiring builds each client and provider once, even when many threads ask at the same moment.

A direct local build starts `--concurrency` generator threads together and each asks for the provider on its
first story; an unguarded cache let every one of them build its own SDK client (and connection pool).
"""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest

from coach import runtime


@pytest.fixture(autouse=True)
def _fresh_runtime() -> Any:
    runtime.reset()
    yield
    runtime.reset()


def test_threads_asking_at_once_share_one_provider(monkeypatch: pytest.MonkeyPatch) -> None:
    built: list[object] = []

    def slow_make_provider(name: str, model: str | None, **_: Any) -> object:
        time.sleep(0.05)  # as building an SDK client takes a while, every waiting thread arrives meanwhile
        made = object()
        built.append(made)
        return made

    monkeypatch.setattr("coach.adapters.completion.make_provider", slow_make_provider)
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    threads = 16
    barrier = threading.Barrier(threads)
    got: list[object] = []

    def ask() -> None:
        barrier.wait()
        got.append(runtime.provider("openai", "gpt-4o-mini"))

    workers = [threading.Thread(target=ask) for _ in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    assert len(built) == 1
    assert len(got) == threads and all(provider is built[0] for provider in got)


def test_reset_forgets_the_provider(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("coach.adapters.completion.make_provider", lambda *a, **k: object())
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    first = runtime.provider("openai", "gpt-4o-mini")
    assert runtime.provider("openai", "gpt-4o-mini") is first
    runtime.reset()
    assert runtime.provider("openai", "gpt-4o-mini") is not first


def test_boto3_clients_are_built_once_across_threads() -> None:
    threads = 8
    barrier = threading.Barrier(threads)
    got: list[object] = []

    def ask() -> None:
        barrier.wait()
        got.append(runtime.client("s3"))

    workers = [threading.Thread(target=ask) for _ in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    assert len({id(c) for c in got}) == 1


def test_the_token_counter_is_loaded_once_across_threads(monkeypatch: pytest.MonkeyPatch) -> None:
    from coach.domain import tokens

    loads: list[str] = []

    class SlowTiktoken:
        @staticmethod
        def get_encoding(name: str) -> Any:
            loads.append(name)
            time.sleep(0.05)  # as a tokenizer load (or its failed download) takes a while
            raise OSError("offline")

    monkeypatch.setitem(__import__("sys").modules, "tiktoken", SlowTiktoken)
    tokens.get_counter.cache_clear()  # type: ignore[attr-defined]
    threads = 8
    barrier = threading.Barrier(threads)
    got: list[object] = []

    def ask() -> None:
        barrier.wait()
        got.append(tokens.get_counter(estimate=False))

    workers = [threading.Thread(target=ask) for _ in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    tokens.get_counter.cache_clear()  # type: ignore[attr-defined]
    assert loads == ["o200k_base"]
    assert all(counter is got[0] and counter.estimated for counter in got)
