"""Batch generation's pure parts: batch prices, splitting at provider limits, request and result lines."""

from __future__ import annotations

import json

import pytest

from coach.domain.batch import (
    BEDROCK_LIMITS,
    OPENAI_LIMITS,
    BatchLimits,
    bedrock_record_id,
    bedrock_request_line,
    generation_key,
    openai_request_line,
    read_bedrock_line,
    read_openai_line,
    split_requests,
)
from coach.domain.budget import estimate_build
from coach.domain.pricing import ModelPrice, PriceTable, parse_price_json
from coach.domain.prompt import END_MARKER, build_messages
from coach.domain.records import Usage

USAGE = Usage(prompt_tokens=1_000_000, completion_tokens=1_000_000, total_tokens=2_000_000)


@pytest.mark.parametrize("model, sync_usd", [("gpt-4o-mini", 0.75), ("gpt-4.1", 10.0),
                                             ("amazon.nova-lite-v1:0", 0.30), ("us.amazon.nova-pro-v1:0", 4.0)])
def test_batch_price_is_half_the_synchronous_price(model, sync_usd):
    table = PriceTable()
    assert table.cost_usd(model, USAGE) == pytest.approx(sync_usd)
    quote = table.quote(model, USAGE, batch=True)
    assert quote.usd == pytest.approx(sync_usd / 2) and quote.priced_as.endswith("(batch)")


def test_a_model_without_a_batch_price_is_priced_like_synchronous_calls():
    table = PriceTable().merged({"my-model": ModelPrice(input=1.0, output=2.0)})
    assert table.cost_usd("my-model", USAGE, batch=True) == table.cost_usd("my-model", USAGE) == 3.0
    custom = parse_price_json('{"my-model": {"input": 1, "output": 2, "batch_discount": 0.25}}')
    assert PriceTable().merged(custom).cost_usd("my-model", USAGE, batch=True) == pytest.approx(2.25)
    with pytest.raises(Exception, match="batch_discount"):
        parse_price_json('{"my-model": {"input": 1, "output": 2, "batch_discount": 1.5}}')


def test_the_budget_estimate_uses_batch_prices():
    table = PriceTable()
    sync = estimate_build("gpt-4o-mini", [2000] * 60, table, max_completion_tokens=800)
    batch = estimate_build("gpt-4o-mini", [2000] * 60, table, max_completion_tokens=800, batch=True)
    assert batch.usd == pytest.approx(sync.usd / 2)


def test_split_spreads_requests_evenly_over_the_fewest_batches():
    limits = BatchLimits(max_requests=20, max_bytes=10_000, min_requests=1)
    batches, left = split_requests([10] * 45, limits)
    assert [len(b) for b in batches] == [15, 15, 15] and not left
    assert [i for b in batches for i in b] == list(range(45))


def test_split_respects_the_byte_limit():
    batches, left = split_requests([400] * 10, BatchLimits(max_requests=100, max_bytes=1_000))
    assert all(sum(400 for _ in b) <= 1_000 for b in batches) and sum(len(b) for b in batches) == 10
    assert not left


def test_below_the_minimum_nothing_is_batched():
    batches, left = split_requests([10] * 99, BEDROCK_LIMITS)
    assert batches == [] and left == list(range(99))
    batches, left = split_requests([10] * 100, BEDROCK_LIMITS)
    assert [len(b) for b in batches] == [100] and left == []
    assert split_requests([], OPENAI_LIMITS) == ([], [])


def test_openai_limits_are_the_documented_ones():
    assert (OPENAI_LIMITS.max_requests, OPENAI_LIMITS.max_bytes) == (50_000, 200 * 1024 * 1024)
    batches, _ = split_requests([100] * 120_000, OPENAI_LIMITS)
    assert len(batches) == 3 and max(len(b) for b in batches) <= 50_000


def test_request_lines_carry_the_generation_key_and_the_one_prompt():
    prompt = build_messages("She ran. The door slammed behind her.", "Door", layout="full")
    key = generation_key("b1", "s1", "v3", "openai", "gpt-4o-mini")
    assert key.startswith("s1.") and key != generation_key("b1", "s1", "v3", "openai", "gpt-4o")
    row = json.loads(openai_request_line(key, prompt.messages, model="gpt-4o-mini", max_tokens=800,
                                         stop=[END_MARKER], token_param="max_completion_tokens"))
    assert row["custom_id"] == key and row["method"] == "POST" and row["url"] == "/v1/chat/completions"
    assert row["body"]["messages"] == prompt.messages and row["body"]["max_completion_tokens"] == 800
    record = json.loads(bedrock_request_line(key, prompt.messages, max_tokens=800, stop=[END_MARKER]))
    assert record["recordId"] == bedrock_record_id(key) and record["recordId"].isalnum()
    assert bedrock_record_id(key) != bedrock_record_id(generation_key("b1", "s2", "v3", "openai", "gpt-4o-mini"))
    assert record["modelInput"]["system"][0]["text"] == prompt.messages[0]["content"]
    assert record["modelInput"]["messages"][0]["content"][0]["text"] == prompt.messages[1]["content"]
    assert record["modelInput"]["inferenceConfig"] == {"maxTokens": 800, "temperature": 0.7,
                                                       "stopSequences": [END_MARKER]}


def test_openai_result_lines():
    ok = read_openai_line(json.dumps({"id": "r1", "custom_id": "s1.k", "error": None, "response": {
        "status_code": 200, "body": {"model": "gpt-4o-mini-2024-07-18", "choices": [
            {"message": {"content": "You open well."}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 10, "completion_tokens": 4, "total_tokens": 14}}}}))
    assert ok.ok and ok.text == "You open well." and ok.usage.total_tokens == 14 and not ok.usage.estimated
    assert ok.model == "gpt-4o-mini-2024-07-18"
    failed = read_openai_line(json.dumps({"id": "r2", "custom_id": "s2.k", "error": None, "response": {
        "status_code": 500, "body": {"error": {"message": "boom", "type": "server_error", "code": None}}}}))
    assert not failed.ok and failed.error_code == "batch_server_error" and failed.error_message == "boom"
    expired = read_openai_line(json.dumps({"id": "r3", "custom_id": "s3.k", "response": None,
                                           "error": {"code": "batch_expired", "message": "too late"}}))
    assert not expired.ok and expired.error_code == "batch_batch_expired"
    empty = read_openai_line(json.dumps({"custom_id": "s4.k", "response": {"status_code": 200, "body": {
        "choices": [{"message": {"content": ""}, "finish_reason": "length"}]}}}))
    assert not empty.ok and empty.error_code == "upstream_empty"  # a failure never looks like data


def test_bedrock_result_lines():
    ok = read_bedrock_line(json.dumps({"recordId": "s1.k", "modelInput": {}, "modelOutput": {
        "output": {"message": {"role": "assistant", "content": [{"text": "You open well."}]}},
        "stopReason": "end_turn", "usage": {"inputTokens": 10, "outputTokens": 4, "totalTokens": 14}}}))
    assert ok.ok and ok.text == "You open well." and ok.finish_reason == "stop" and ok.usage.prompt_tokens == 10
    failed = read_bedrock_line(json.dumps({"recordId": "s2.k", "modelInput": {},
                                           "error": {"errorCode": 500, "errorMessage": "model failed"}}))
    assert not failed.ok and failed.error_code == "batch_500" and failed.error_message == "model failed"
    assert read_bedrock_line(json.dumps({"modelInput": {}})) is None
