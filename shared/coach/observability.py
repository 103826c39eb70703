"""Small helpers for Powertools Metrics shared by the handlers."""

from __future__ import annotations

from aws_lambda_powertools import Metrics
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.metrics.functions import is_metrics_disabled


def count(metrics: Metrics, name: str, value: float = 1) -> None:
    """Add a count metric unless metrics are disabled (local runs and tests).

    Disabled metrics are never flushed, so in a long local run they would pile up and be printed every
    hundredth value.
    """
    if not is_metrics_disabled():
        metrics.add_metric(name=name, unit=MetricUnit.Count, value=value)
