"""The curl examples in the README and the docs work: their request bodies get a critique, not an error."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from tests.api.api_support import http_call

REPO = Path(__file__).resolve().parents[2]
DOCS = ("README.md", "docs/api.md", "docs/deploy.md")
# A curl command's JSON body in single quotes, as the shell passes it.
_BODY = re.compile(r"curl[^\n]*(?:\\\n[^\n]*)*?-d '(\{.*?\})'", re.DOTALL)


def curl_bodies() -> list[tuple[str, str]]:
    found = []
    for name in DOCS:
        for body in _BODY.findall((REPO / name).read_text(encoding="utf-8")):
            found.append((name, body))
    return found


def test_every_document_with_a_curl_example_is_covered():
    assert {name for name, _ in curl_bodies()} == set(DOCS)


@pytest.mark.parametrize(("name", "body"), curl_bodies(), ids=lambda value: value if value in DOCS else "")
def test_a_curl_example_gets_a_critique(offline_api, name, body):
    reply = http_call(offline_api, "POST", "/critiques", json.loads(body),
                      headers={"Content-Type": "application/json"})
    assert reply.status == 200, f"{name}: {reply.text}"
    assert reply.json()["critique"]
