"""The promotion gate: a model is published only when its scores clear the floors and are not worse than
the baseline's by more than the margin.

Checked: the house-standard pass rate, quote grounding, the loop rate (a ceiling: a model whose every
answer had to be cut is not fit to serve even when the cut text passes), and the planted-flaw lift (a
model that never names the story's problems is not an editor). A judge is reported, never gated on.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from coach.domain.evaluation.metrics import CriticScores
from coach.domain.records import GateConfig

__all__ = ["GateCheck", "GateConfig", "GateDecision", "decide", "summary_line"]

Metric = Literal["pass_rate", "grounding", "loop_rate", "flaw_lift"]


class GateCheck(BaseModel):
    model_config = ConfigDict(extra="forbid")

    metric: Metric
    value: float | None
    limit: float
    baseline: float | None = None
    passed: bool
    code: str = ""  # why it failed, e.g. pass_rate_below_floor
    message: str = ""


class GateDecision(BaseModel):
    model_config = ConfigDict(extra="forbid")

    passed: bool
    checks: list[GateCheck]
    reasons: list[str] = Field(default_factory=list)  # codes of the failed checks, in check order
    summary: str = ""  # one line with every score and what failed

    @property
    def failed(self) -> list[GateCheck]:
        return [c for c in self.checks if not c.passed]


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.0%}"


def _lift(value: float | None) -> str:
    return "n/a" if value is None else f"{value:+.2f}"


def _higher_is_better(metric: Metric, value: float | None, floor: float, baseline: float | None,
                      margin: float, label: str, detail: str = "") -> GateCheck:
    fmt = _lift if metric == "flaw_lift" else _pct
    if value is None:
        return GateCheck(metric=metric, value=None, limit=floor, baseline=baseline, passed=True,
                         message=f"{label}: not measurable (nothing to measure), not gated")
    if value < floor:
        return GateCheck(metric=metric, value=value, limit=floor, baseline=baseline, passed=False,
                         code=f"{metric}_below_floor",
                         message=f"{label} {fmt(value)} is below the floor {fmt(floor)}{detail}")
    if baseline is not None and value < baseline - margin:
        return GateCheck(metric=metric, value=value, limit=floor, baseline=baseline, passed=False,
                         code=f"{metric}_below_baseline",
                         message=f"{label} {fmt(value)} is more than {fmt(margin)} below the baseline's "
                                 f"{fmt(baseline)}{detail}")
    return GateCheck(metric=metric, value=value, limit=floor, baseline=baseline, passed=True)


def decide(candidate: CriticScores, config: GateConfig, baseline: CriticScores | None = None) -> GateDecision:
    top = sorted(candidate.rejected_by_reason.items(), key=lambda kv: (-kv[1], kv[0]))[:3]
    rejected = f" (rejections: {', '.join(f'{r} {n}' for r, n in top)})" if top else ""
    if candidate.errors:
        rejected += f" ({candidate.errors} calls failed)"
    checks = [
        _higher_is_better("pass_rate", candidate.pass_rate, config.min_pass_rate,
                          baseline.pass_rate if baseline else None, config.margin, "pass rate", rejected),
        _higher_is_better("grounding", candidate.grounding, config.min_grounding,
                          baseline.grounding if baseline else None, config.margin, "grounding"),
    ]
    loops = candidate.loop_rate
    base_loops = baseline.loop_rate if baseline else None
    if loops > config.max_loop_rate:
        checks.append(GateCheck(metric="loop_rate", value=loops, limit=config.max_loop_rate, baseline=base_loops,
                                passed=False, code="loop_rate_above_ceiling",
                                message=f"loop rate {_pct(loops)} is above the ceiling {_pct(config.max_loop_rate)}"))
    elif base_loops is not None and loops > base_loops + config.margin:
        checks.append(GateCheck(metric="loop_rate", value=loops, limit=config.max_loop_rate, baseline=base_loops,
                                passed=False, code="loop_rate_above_baseline",
                                message=f"loop rate {_pct(loops)} is more than {_pct(config.margin)} above the "
                                        f"baseline's {_pct(base_loops)}"))
    else:
        checks.append(GateCheck(metric="loop_rate", value=loops, limit=config.max_loop_rate, baseline=base_loops,
                                passed=True))
    checks.append(_higher_is_better("flaw_lift", candidate.flaw_lift, config.min_flaw_lift,
                                    baseline.flaw_lift if baseline else None, config.margin, "planted-flaw lift"))
    failed = [c for c in checks if not c.passed]
    return GateDecision(passed=not failed, checks=checks, reasons=[c.code for c in failed],
                        summary=summary_line(candidate, failed, baseline))


def summary_line(scores: CriticScores, failed: list[GateCheck], baseline: CriticScores | None) -> str:
    figures = (f"pass rate {_pct(scores.pass_rate)}, grounding {_pct(scores.grounding)}, "
               f"loop rate {_pct(scores.loop_rate)}, planted-flaw lift "
               f"{_lift(scores.flaw_lift)}, "
               f"false alarms {_pct(scores.false_alarms)} on {scores.critiques} critiques")
    against = f" (baseline {baseline.model}: pass rate {_pct(baseline.pass_rate)}, grounding " \
              f"{_pct(baseline.grounding)})" if baseline else ""
    verdict = "refused: " + "; ".join(c.message for c in failed) if failed else "passed the gate"
    return f"{scores.model}: {figures}{against}; {verdict}"
