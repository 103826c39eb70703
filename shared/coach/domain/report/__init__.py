"""The build report and the dataset card, rendered from typed inputs (no I/O here)."""

from coach.domain.report.card import render_card
from coach.domain.report.inputs import EvalScores, ExampleView, ReportInput, Span, StepMetric, example_view
from coach.domain.report.page import render_report

__all__ = ["EvalScores", "ExampleView", "ReportInput", "Span", "StepMetric", "example_view", "render_card",
           "render_report"]
