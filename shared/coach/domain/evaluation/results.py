"""What an evaluation produces: the full report, stored under the build's eval/ prefix. Its short summary
(`coach.domain.records.EvaluationSummary`) is kept in the manifest and beside a published model."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from coach.domain.evaluation.gate import GateConfig, GateDecision
from coach.domain.evaluation.judge import JudgeScores
from coach.domain.evaluation.metrics import CriticScores
from coach.domain.records import EvaluationSummary, utc_now

__all__ = ["EvaluationReport", "EvaluationSummary"]


class EvaluationReport(BaseModel):
    model_config = ConfigDict(extra="forbid")

    build_id: str
    eval_set_key: str
    stories: int
    items: int
    candidate: CriticScores
    baseline: CriticScores | None = None
    references: CriticScores | None = None  # the teacher's accepted critiques (length and grounding)
    judge: JudgeScores | None = None
    gate_config: GateConfig
    gate: GateDecision
    created_at: str = Field(default_factory=utc_now)

    def summary(self, report_key: str | None = None) -> EvaluationSummary:
        c = self.candidate
        return EvaluationSummary(
            model=c.model, passed=self.gate.passed, reasons=self.gate.reasons, pass_rate=c.pass_rate,
            grounding=c.grounding, loop_rate=c.loop_rate, flaw_lift=c.flaw_lift, false_alarms=c.false_alarms,
            critiques=c.critiques, baseline=self.baseline.model if self.baseline else None, report_key=report_key,
            evaluated_at=self.created_at,
        )
