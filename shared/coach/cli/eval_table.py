"""An evaluation report as a plain-text table for the terminal: one column per critic, one row per score."""

from __future__ import annotations

from coach.domain.evaluation import CriticScores, EvaluationReport


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value:.0%}"


def _signed(value: float | None) -> str:
    return "-" if value is None else f"{value:+.2f}"


def _rows(scores: list[CriticScores]) -> list[tuple[str, ...]]:
    kinds = list(dict.fromkeys(f.kind for s in scores for f in s.flaws))
    rows: list[tuple[str, ...]] = [("", *(s.critic for s in scores)), ("model", *(s.model for s in scores))]
    rows.append(("critiques (failed calls)", *(f"{s.critiques} ({s.errors})" for s in scores)))
    rows.append(("pass rate (house standard)", *(_pct(s.pass_rate) for s in scores)))
    rows.append(("grounding (quotes in story)", *(
        f"{_pct(s.grounding)} of {s.quotes}" if s.quotes else "-" for s in scores)))
    rows.append(("planted-flaw lift (mean)", *(_signed(s.flaw_lift) for s in scores)))
    by_kind = [{f.kind: f for f in s.flaws} for s in scores]
    for kind in kinds:
        rows.append((f"  {kind}: named / false alarm", *(
            f"{_pct(k[kind].detected)} / {_pct(k[kind].false_alarms)}" if kind in k else "-" for k in by_kind)))
    rows.append(("false alarms (mean)", *(_pct(s.false_alarms) for s in scores)))
    rows.append(("loop trimmed", *(_pct(s.loop_rate) for s in scores)))
    rows.append(("hit the token limit", *(_pct(s.truncated_rate) for s in scores)))
    rows.append(("words: median (p90)", *(f"{s.words.median:g} ({s.words.p90:g})" for s in scores)))
    rows.append(("length vs teacher", *("-" if s.length_ratio is None else f"{s.length_ratio:.2f}x" for s in scores)))
    rows.append(("latency ms: median (p90)", *(f"{s.latency_ms_median:g} ({s.latency_ms_p90:g})" for s in scores)))
    rows.append(("cost per critique USD", *(
        f"{s.cost_usd_per_critique:.6f}" + ("" if s.cost_priced else " (unpriced)") for s in scores)))
    return rows


def render(report: EvaluationReport, report_key: str, where: str = "") -> str:
    scores = [s for s in (report.candidate, report.baseline, report.references) if s is not None]
    rows = _rows(scores)
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = [f"evaluation of {report.candidate.model} on {report.build_id}: {report.stories} held-out stories, "
             f"{report.items} items with the planted-flaw copies", ""]
    lines += ["  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row)).rstrip() for row in rows]
    if report.judge is not None:
        j = report.judge
        agreement = "-" if j.validator_agreement is None else _pct(j.validator_agreement)
        lines += ["", f"judge {j.judge} vs {j.against}, {j.pairs} pairs, each judged in both orders:",
                  f"  win {_pct(j.win.share)} [{_pct(j.win.low)}-{_pct(j.win.high)}]  "
                  f"tie {_pct(j.tie.share)} [{_pct(j.tie.low)}-{_pct(j.tie.high)}]  "
                  f"loss {_pct(j.loss.share)} [{_pct(j.loss.low)}-{_pct(j.loss.high)}]  (95% intervals)",
                  f"  both orders agreed on {_pct(j.order_consistency)}; agrees with the house standard on "
                  f"{agreement} of the {j.validator_pairs} pairs where exactly one critique passed it"]
    gate = report.gate
    lines += ["", ("gate: PASSED" if gate.passed else "gate: REFUSED") + f"  ({gate.summary})",
              f"report: {where + '/' if where else ''}{report_key}"]
    return "\n".join(lines) + "\n"
