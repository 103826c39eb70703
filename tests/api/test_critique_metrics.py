"""The critique handler reports what it served as CloudWatch metrics (EMF), and no story text."""

from __future__ import annotations

import json
from pathlib import Path

from coach.api import service
from coach.local.lambda_runtime import invoke

EVENT = Path(__file__).resolve().parents[2] / "infra" / "events" / "critique_post.json"


def test_a_served_critique_is_counted_in_metrics(monkeypatch, capsys):
    monkeypatch.setenv("POWERTOOLS_METRICS_DISABLED", "false")
    monkeypatch.setenv("POWERTOOLS_METRICS_NAMESPACE", "WritingCoachTests")
    monkeypatch.setenv("COACH_PROVIDER", "offline")
    monkeypatch.delenv("COACH_MODEL_PARAMETER", raising=False)
    service.reset()
    event = json.loads(EVENT.read_text())
    response = invoke("critique", event)
    assert response["statusCode"] == 200
    emitted = [json.loads(line) for line in capsys.readouterr().out.splitlines() if '"_aws"' in line]
    assert emitted, "no metrics were flushed"
    metrics = emitted[-1]
    assert metrics["CritiquesServed"] == [1.0]
    assert metrics["CritiqueTokens"][0] > 0
    assert "lighthouse keeper" not in json.dumps(emitted)  # the story stays out of the metrics
    service.reset()
