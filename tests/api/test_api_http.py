"""The critique API over real HTTP against `coach serve` with the offline critic."""

from __future__ import annotations

import json

import pytest

from coach.domain.critic import OFFLINE_MODEL
from coach.domain.prompt import PROMPT_VERSION
from coach.domain.validation import validate_feedback
from tests.api.api_support import STORY, assert_error, http_call, post_story


def test_a_story_gets_a_critique_that_meets_the_house_standard(offline_api):
    reply = post_story(offline_api, STORY, title="Keeper")

    assert reply.status == 200, reply.text
    body = reply.json()
    assert set(body) == {"critique", "model", "prompt_version", "truncated", "usage", "style"}
    assert body["model"] == OFFLINE_MODEL
    assert body["prompt_version"] == PROMPT_VERSION
    assert body["truncated"] is False
    usage = body["usage"]
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"] > 0
    verdict = validate_feedback(body["critique"], story=STORY)
    assert verdict.accepted, verdict.reasons
    # The measured notes quote the story, so a writer can check them.
    assert body["style"], "expected at least one style note for a story with adverbs in its dialogue tags"
    for note in body["style"]:
        assert note["code"] and note["message"]
        assert all(example in STORY for example in note["examples"])


def test_health_and_the_contract_are_served(offline_api):
    health = http_call(offline_api, "GET", "/health")
    assert health.status == 200
    assert health.json()["status"] == "ok"

    spec = http_call(offline_api, "GET", "/swagger?format=json")
    assert spec.status == 200
    document = spec.json()
    operation = document["paths"]["/critiques"]["post"]
    assert operation["operationId"] == "createCritique"
    assert {"200", "400", "401", "403", "413", "415", "429", "502", "503"} <= set(operation["responses"])
    assert operation["security"] == [{"apiKey": []}]
    assert document["components"]["securitySchemes"]["apiKey"] == {"type": "apiKey", "name": "x-api-key",
                                                                     "in": "header"}
    request_schema = document["components"]["schemas"]["CritiqueRequest"]
    assert request_schema["required"] == ["story"]
    assert request_schema["additionalProperties"] is False

    page = http_call(offline_api, "GET", "/swagger")
    assert page.status == 200
    assert page.headers["content-type"].startswith("text/html")
    assert b"SwaggerUIBundle" in page.body
    assert b"unpkg.com" not in page.body and b"cdn.jsdelivr" not in page.body  # assets are inlined


def test_unknown_route_is_404_and_wrong_method_is_405(offline_api):
    assert_error(http_call(offline_api, "GET", "/critique"), 404, "not_found")
    wrong = http_call(offline_api, "GET", "/critiques")
    assert_error(wrong, 405, "method_not_allowed")
    assert wrong.headers["allow"] == "POST"
    assert_error(http_call(offline_api, "DELETE", "/health"), 405, "method_not_allowed")


@pytest.mark.parametrize("content_type", [None, "text/plain", "application/x-www-form-urlencoded",
                                          "multipart/form-data; boundary=x", "application/xml"])
def test_a_body_that_is_not_json_is_415(offline_api, content_type):
    headers = {"Content-Type": content_type} if content_type else {}
    reply = http_call(offline_api, "POST", "/critiques", json.dumps({"story": STORY}), headers=headers)
    assert_error(reply, 415, "unsupported_media_type")


def test_json_in_another_charset_is_415(offline_api):
    reply = http_call(offline_api, "POST", "/critiques", json.dumps({"story": STORY}).encode("utf-16"),
                      headers={"Content-Type": "application/json; charset=utf-16"})
    assert_error(reply, 415, "unsupported_charset")


def test_json_with_a_utf8_charset_parameter_is_accepted(offline_api):
    reply = http_call(offline_api, "POST", "/critiques", json.dumps({"story": STORY}),
                      headers={"Content-Type": "Application/JSON; charset=UTF-8"})
    assert reply.status == 200, reply.text


def test_malformed_json_is_400_with_its_position(offline_api):
    reply = http_call(offline_api, "POST", "/critiques", '{"story": "unterminated',
                      headers={"Content-Type": "application/json"})
    error = assert_error(reply, 400, "malformed_json")
    assert "character" in error["message"]


def test_a_story_over_the_limit_is_413_naming_the_limit(offline_api):
    reply = post_story(offline_api, "word " * 20_001)  # 100,005 characters
    error = assert_error(reply, 413, "story_too_large")
    assert "100,000 characters" in error["message"]
    assert "100,005" in error["message"]


def test_the_limit_is_configurable(serve):
    url = serve(max_story_chars=500)
    error = assert_error(post_story(url, STORY * 2), 413, "story_too_large")
    assert "500 characters" in error["message"]
    assert post_story(url, STORY).status == 200


def test_a_long_story_within_the_limit_is_cut_at_a_paragraph_boundary(offline_api):
    paragraphs = [f"Day {i}. " + STORY.split("\n\n")[i % 3] for i in range(120)]
    story = "\n\n".join(paragraphs)
    assert len(story) < 100_000

    reply = post_story(offline_api, story)

    assert reply.status == 200, reply.text
    body = reply.json()
    assert body["truncated"] is True
    assert validate_feedback(body["critique"], story=story).accepted


def test_a_title_over_300_characters_is_400(offline_api):
    error = assert_error(post_story(offline_api, STORY, title="T" * 301), 400, "invalid_request")
    assert error["message"].startswith("title:")
    assert post_story(offline_api, STORY, title="T" * 300).status == 200


def test_the_api_key_is_enforced_when_configured(serve):
    url = serve(api_key="s3cret-key")

    assert_error(post_story(url, STORY), 401, "missing_api_key")
    assert_error(post_story(url, STORY, headers={"x-api-key": "wrong"}), 403, "invalid_api_key")
    # The key is checked before the body, so a client without one learns nothing about its JSON.
    assert_error(http_call(url, "POST", "/critiques", "not json", headers={"Content-Type": "text/plain"}),
                 401, "missing_api_key")
    assert post_story(url, STORY, headers={"X-Api-Key": "s3cret-key"}).status == 200
    # Health and the contract stay open.
    assert http_call(url, "GET", "/health").status == 200
    assert http_call(url, "GET", "/swagger?format=json").status == 200


def test_the_api_key_can_come_from_the_environment(serve):
    url = serve(env={"COACH_API_KEY": "from-env"})
    assert_error(post_story(url, STORY), 401, "missing_api_key")
    assert post_story(url, STORY, headers={"x-api-key": "from-env"}).status == 200


def test_the_published_document_lists_only_answers_the_api_gives(offline_api):
    document = http_call(offline_api, "GET", "/swagger?format=json").json()
    for path, item in document["paths"].items():
        for method, operation in item.items():
            assert "422" not in operation["responses"], f"{method.upper()} {path} advertises a 422"
            for status, response in operation["responses"].items():
                if status != "200":
                    ref = response["content"]["application/json"]["schema"]["$ref"]
                    assert ref.endswith("/ErrorResponse"), (path, status, ref)
    assert "HTTPValidationError" not in document["components"]["schemas"]
    assert "500" in document["paths"]["/health"]["get"]["responses"]
