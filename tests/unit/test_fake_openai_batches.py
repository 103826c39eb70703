"""The OpenAI test server's Batch API, spoken to by the real openai SDK."""

from __future__ import annotations

import io
import json

import openai
import pytest

from tests.fakes.openai_server import FakeOpenAIServer


def _requests(count: int) -> bytes:
    return "".join(json.dumps({"custom_id": f"r{i}", "method": "POST", "url": "/v1/chat/completions",
                               "body": {"model": "gpt-4o-mini", "max_tokens": 50,
                                        "messages": [{"role": "user", "content": f"story {i}"}]}}) + "\n"
                   for i in range(count)).encode()


@pytest.fixture
def client_and_server():
    with FakeOpenAIServer(api_key="sk-b", reply="You pace it well.", batch_polls_per_state=1) as server:
        yield openai.OpenAI(base_url=server.base_url, api_key="sk-b", max_retries=0), server


def _submit(client, count: int = 10, metadata: dict | None = None):
    uploaded = client.files.create(file=("in.jsonl", io.BytesIO(_requests(count))), purpose="batch")
    return client.batches.create(input_file_id=uploaded.id, endpoint="/v1/chat/completions",
                                 completion_window="24h", metadata=metadata)


def _statuses(client, batch_id: str) -> list[str]:
    seen = []
    for _ in range(10):
        batch = client.batches.retrieve(batch_id)
        seen.append(batch.status)
        if batch.status in ("completed", "failed", "expired", "cancelled"):
            return seen
    return seen


def test_a_batch_moves_through_its_states_and_writes_output_and_error_files(client_and_server):
    client, server = client_and_server
    server.configure(batch_error_rate=0.3)
    batch = _submit(client, 20, {"coach_batch": "b1"})
    assert batch.status == "validating" and batch.metadata == {"coach_batch": "b1"}
    assert _statuses(client, batch.id) == ["in_progress", "finalizing", "completed"]
    done = client.batches.retrieve(batch.id)
    output = [json.loads(line) for line in client.files.content(done.output_file_id).text.splitlines()]
    errors = [json.loads(line) for line in client.files.content(done.error_file_id).text.splitlines()]
    assert done.request_counts.total == 20 and done.request_counts.completed == len(output)
    assert done.request_counts.failed == len(errors) > 0
    assert {row["custom_id"] for row in output + errors} == {f"r{i}" for i in range(20)}
    assert all(row["response"]["status_code"] == 200 and row["response"]["body"]["usage"] for row in output)
    assert all(row["response"]["status_code"] == 500 and row["response"]["body"]["error"] for row in errors)
    assert server.total_successes == len(output)  # only answered requests are paid


def test_an_expired_batch_answers_half_and_lists_the_rest_as_expired(client_and_server):
    client, server = client_and_server
    server.configure(batch_expire_next=1)
    batch = _submit(client, 10)
    assert _statuses(client, batch.id)[-1] == "expired"
    done = client.batches.retrieve(batch.id)
    errors = [json.loads(line) for line in client.files.content(done.error_file_id).text.splitlines()]
    assert done.request_counts.completed == 5 and len(errors) == 5
    assert {e["error"]["code"] for e in errors} == {"batch_expired"} and all(e["response"] is None for e in errors)
    assert _statuses(client, _submit(client, 4).id)[-1] == "completed"  # only the next one expired


def test_validation_failure_and_cancel_and_list(client_and_server):
    client, _ = client_and_server
    uploaded = client.files.create(file=("bad.jsonl", io.BytesIO(b'{"custom_id": "a"}\n{"custom_id": "a"}\n')),
                                   purpose="batch")
    bad = client.batches.create(input_file_id=uploaded.id, endpoint="/v1/chat/completions", completion_window="24h")
    assert _statuses(client, bad.id) == ["failed"]
    assert client.batches.retrieve(bad.id).errors.data[0].message
    running = _submit(client, 3)
    assert client.batches.cancel(running.id).status == "cancelling"
    assert _statuses(client, running.id) == ["cancelled"]
    with pytest.raises(openai.BadRequestError):
        client.batches.cancel(running.id)
    assert {b.id for b in client.batches.list(limit=10)} == {running.id, bad.id}
    with pytest.raises(openai.BadRequestError):
        tuned = client.files.create(file=("t.jsonl", io.BytesIO(_requests(1))), purpose="fine-tune")
        client.batches.create(input_file_id=tuned.id, endpoint="/v1/chat/completions", completion_window="24h")
