"""Fixtures for the critique API tests: `coach serve` on a free loopback port, spoken to over real HTTP."""

from __future__ import annotations

import argparse
import os
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from coach.api import service
from coach.cli import serve_cmd


def serve_args(**flags: Any) -> argparse.Namespace:
    defaults: dict[str, Any] = {
        "host": "127.0.0.1", "port": 0, "provider": None, "model": None, "api_key": None,
        "model_parameter": None, "endpoint_url": None, "max_story_chars": None,
        "quiet": True, "verbose": False,
    }
    unknown = set(flags) - set(defaults)
    if unknown:
        raise TypeError(f"unknown coach serve flags: {sorted(unknown)}")
    return argparse.Namespace(**{**defaults, **flags})


class Servers:
    """Starts `coach serve` gateways; the environment the flags set is put back afterwards."""

    def __init__(self) -> None:
        self._gateways: list[Any] = []
        self._saved_env = dict(os.environ)

    def start(self, *, env: dict[str, str | None] | None = None, **flags: Any) -> str:
        for name, value in (env or {}).items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        service.reset()
        gateway = serve_cmd.start_gateway(serve_args(**flags))
        self._gateways.append(gateway)
        return str(gateway.url)

    def close(self) -> None:
        for gateway in self._gateways:
            gateway.stop()
        self._gateways.clear()
        os.environ.clear()
        os.environ.update(self._saved_env)
        service.reset()


@pytest.fixture
def servers() -> Iterator[Servers]:
    started = Servers()
    try:
        yield started
    finally:
        started.close()


@pytest.fixture
def serve(servers: Servers) -> Callable[..., str]:
    """`base_url = serve(api_key="k", env={"COACH_PROVIDER": "openai"})`."""
    return servers.start


@pytest.fixture(scope="module")
def offline_api() -> Iterator[str]:
    """One offline-provider server shared by a module's tests (no API key)."""
    started = Servers()
    try:
        yield started.start()
    finally:
        started.close()
