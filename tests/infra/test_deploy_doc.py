"""docs/deploy.md says what the stack really does: the gateway's answers, the build request and its failures."""

from __future__ import annotations

import json
import re

from coach.domain.records import BuildRequest
from tests.infra.cfn_template import ROOT, load_template

DEPLOY = (ROOT / "docs" / "deploy.md").read_text(encoding="utf-8")


def _fields(model: type, prefix: str = "") -> set[str]:
    names = set()
    for name, info in model.model_fields.items():
        nested = info.annotation if isinstance(info.annotation, type) and hasattr(info.annotation, "model_fields") \
            else None
        if nested is not None:
            names |= _fields(nested, f"{prefix}{name}.")
        else:
            names.add(f"{prefix}{name}")
    return names


def test_the_403_body_shown_is_the_one_the_gateway_sends():
    responses = next(r["Properties"]["GatewayResponses"] for r in load_template()["Resources"].values()
                     if r["Type"] == "AWS::Serverless::Api")
    sent = json.loads(responses["INVALID_API_KEY"]["ResponseTemplates"]["application/json"])
    shown = re.search(r"`403 (\{.*?\})`", DEPLOY, re.DOTALL)
    assert shown and json.loads(" ".join(shown.group(1).split())) == sent


def test_every_build_request_field_is_in_the_request_table():
    table = DEPLOY.split("The build request", 1)[1].split("\n\n", 2)[1]
    cells = " ".join(line.split("|")[1] for line in table.splitlines() if line.startswith("| `"))
    for field in sorted(_fields(BuildRequest)):
        leaf = field.rsplit(".", 1)[-1]
        assert f"`{field}`" in cells or f"`{leaf}`" in cells, f"{field} is missing from the request table"


def test_the_failure_table_names_the_money_and_dedupe_causes_and_the_dead_letter_rule():
    failures = DEPLOY.split("| Error | Meaning |", 1)[1].split("\n\n", 1)[0]
    source_failed = next(line for line in failures.splitlines() if line.startswith("| `SourceFailed`"))
    assert "`budget_exceeded`" in source_failed and "`unpriced_model`" in source_failed
    no_stories = next(line for line in failures.splitlines() if line.startswith("| `NoStories`"))
    assert "`seen_in_earlier_build`" in no_stories
    assert "only if the generator itself crashed" not in DEPLOY
    assert "moves to the dead-letter\nqueue" in DEPLOY or "moves to the dead-letter queue" in DEPLOY
