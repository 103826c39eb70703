"""Property-based run of the published OpenAPI document against `coach serve` (schemathesis).

Requests are generated from the document the server itself publishes (valid ones, and invalid ones in
negative mode); every answer must not be a server error and must match the documented schema for its
status. The offline critic answers, so the run needs no network and stays well under a minute.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

schemathesis = pytest.importorskip("schemathesis", reason="schemathesis is not installed")

from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402
from schemathesis import GenerationMode  # noqa: E402
from schemathesis.checks import not_a_server_error  # noqa: E402
from schemathesis.specs.openapi.checks import response_schema_conformance  # noqa: E402

from tests.api.conftest import Servers  # noqa: E402

API_KEY = "schemathesis-key"
CHECKS = [not_a_server_error, response_schema_conformance]

def run_settings(examples: int) -> settings:
    return settings(max_examples=examples, deadline=None, database=None, derandomize=True,
                    suppress_health_check=list(HealthCheck))


@pytest.fixture(scope="module")
def api() -> Iterator[str]:
    servers = Servers()
    try:
        yield servers.start(api_key=API_KEY)
    finally:
        servers.close()


@pytest.fixture(scope="module")
def schema(api: str):
    return schemathesis.openapi.from_url(f"{api}/swagger?format=json", timeout=30)


def test_the_document_lists_the_operations(schema):
    operations = {(op.ok().method.upper(), op.ok().path) for op in schema.get_all_operations()}
    assert operations == {("POST", "/critiques"), ("GET", "/health")}


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE],
                         ids=["positive", "negative"])
def test_post_critiques_never_fails(api, schema, mode):
    operation = schema["/critiques"]["POST"]
    statuses: list[int] = []

    @run_settings(200 if mode == GenerationMode.POSITIVE else 120)
    @given(data=st.data())
    def run(data):
        case = data.draw(operation.as_strategy(generation_mode=mode))
        response = case.call_and_validate(base_url=api, headers={"x-api-key": API_KEY}, checks=CHECKS,
                                          timeout=60)
        statuses.append(response.status_code)

    run()
    assert statuses and max(statuses) < 500
    if mode == GenerationMode.POSITIVE:
        assert 200 in statuses  # generated stories do get critiques, not only refusals
    else:
        assert all(400 <= s < 500 for s in statuses)


def test_get_health_never_fails(api, schema):
    operation = schema["/health"]["GET"]

    @run_settings(10)
    @given(data=st.data())
    def run(data):
        case = data.draw(operation.as_strategy())
        case.call_and_validate(base_url=api, checks=CHECKS, timeout=30)

    run()
