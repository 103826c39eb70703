"""The critique handler invoked directly with API Gateway's own event shape (stage in the request path)."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from coach.api import service
from coach.domain.validation import validate_feedback
from coach.local.lambda_runtime import invoke

EVENTS = Path(__file__).resolve().parents[2] / "infra" / "events"


@pytest.fixture(autouse=True)
def fresh_service():
    service.reset()
    yield
    service.reset()


def load(name: str) -> dict[str, Any]:
    return json.loads((EVENTS / name).read_text(encoding="utf-8"))


def test_the_sample_post_event_gets_a_critique():
    event = load("critique_post.json")
    result = invoke("critique", event)
    assert result["statusCode"] == 200, result["body"]
    body = json.loads(result["body"])
    story = json.loads(event["body"])["story"]
    assert validate_feedback(body["critique"], story=story).accepted


def test_the_sample_health_event_is_ok():
    result = invoke("critique", load("critique_health.json"))
    assert result["statusCode"] == 200
    assert json.loads(result["body"])["status"] == "ok"


def test_behind_a_stage_the_contract_names_the_stage_as_its_server():
    event = copy.deepcopy(load("critique_health.json"))
    event.update({"path": "/swagger", "resource": "/swagger", "httpMethod": "GET",
                  "queryStringParameters": {"format": "json"},
                  "multiValueQueryStringParameters": {"format": ["json"]}})
    event["requestContext"].update({"path": "/v1/swagger", "resourcePath": "/swagger", "stage": "v1"})
    result = invoke("critique", event)
    assert result["statusCode"] == 200
    assert json.loads(result["body"])["servers"] == [{"url": "/v1"}]


def test_a_base64_body_is_decoded_before_parsing():
    import base64

    event = copy.deepcopy(load("critique_post.json"))
    event["body"] = base64.b64encode(event["body"].encode()).decode()
    event["isBase64Encoded"] = True
    assert invoke("critique", event)["statusCode"] == 200


def test_in_the_cloud_the_function_does_not_check_the_key(monkeypatch):
    monkeypatch.delenv("COACH_API_KEY", raising=False)
    event = copy.deepcopy(load("critique_post.json"))
    for headers in (event["headers"], event["multiValueHeaders"]):
        headers.pop("x-api-key")
    assert invoke("critique", event)["statusCode"] == 200  # API Gateway already did
