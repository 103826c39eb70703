"""Scores of one critic on an evaluation set, from its answers. Pure: the answers come in, numbers go out.

- pass rate: the house standard, judged by the same guard the critique API applies (loop trimmed, then the
  validator's rules, the same code as the dataset build);
- grounding: the share of quoted spans found verbatim in the story (quotes and whitespace normalised);
- planted flaws: how often the critique names the planted flaw on the copy, how often it names that kind
  of flaw on the story as written (false alarms), and the difference (lift); only critiques that pass the
  house standard count, since a refused critique never reaches the writer;
- loop and truncation rates, length against the teacher's references, latency and cost per critique.
"""

from __future__ import annotations

import math
import statistics
from collections import Counter
from collections.abc import Iterable, Sequence

from pydantic import BaseModel, ConfigDict, Field

from coach.domain.evaluation.evalset import EvalItem
from coach.domain.evaluation.flaws import FlawKind, names_flaw
from coach.domain.finetune_data import distribution
from coach.domain.records import Distribution, ErrorInfo, Usage
from coach.domain.validation.context import quote_in_story
from coach.domain.validation.text import count_words, quotations


class CritiqueResult(BaseModel):
    """One critic's answer to one evaluation item, judged. A failed call has `error` and no text."""

    model_config = ConfigDict(extra="forbid")

    item_id: str
    provider: str
    model: str
    prompt_version: str
    raw: str = ""  # what the model wrote
    text: str = ""  # what the writer would get: loop trimmed and cleaned
    accepted: bool = False
    reasons: list[str] = Field(default_factory=list)
    trimmed_loop: bool = False
    finish_reason: str | None = None
    latency_ms: int = 0
    usage: Usage = Field(default_factory=Usage)
    cost_usd: float = 0.0
    priced: bool = True
    error: ErrorInfo | None = None


class FlawScore(BaseModel):
    model_config = ConfigDict(extra="forbid")

    kind: FlawKind
    stories: int  # stories with both the planted copy and the story as written answered
    detected: float  # share of planted copies whose critique names the flaw
    false_alarms: float  # share of stories as written whose critique names that kind of flaw anyway
    lift: float


class CriticScores(BaseModel):
    model_config = ConfigDict(extra="forbid")

    critic: str  # a label: "candidate", "baseline", "teacher references"
    provider: str
    model: str
    prompt_version: str
    critiques: int
    errors: int = 0
    errors_by_code: dict[str, int] = Field(default_factory=dict)
    pass_rate: float
    rejected_by_reason: dict[str, int] = Field(default_factory=dict)
    quotes: int = 0
    grounded_quotes: int = 0
    grounding: float | None = None  # None: no critique quoted anything
    flaws: list[FlawScore] = Field(default_factory=list)
    flaw_lift: float | None = None  # mean lift over the planted kinds
    false_alarms: float | None = None  # mean false-alarm rate over the planted kinds
    loop_rate: float = 0.0
    truncated_rate: float = 0.0
    words: Distribution = Field(default_factory=Distribution)
    teacher_words_median: float | None = None
    length_ratio: float | None = None  # median words / the teacher's median words, on the same stories
    latency_ms_median: float = 0.0
    latency_ms_p90: float = 0.0
    cost_usd_total: float = 0.0
    cost_usd_per_critique: float = 0.0
    cost_priced: bool = True  # False: some answer came from a model the price table does not know


def grounding_counts(critique: str, story: str) -> tuple[int, int]:
    """(quoted spans, spans found verbatim in the story)."""
    spans = [q.text for q in quotations(critique)]
    return len(spans), sum(1 for q in spans if quote_in_story(q, story))


def _rate(hits: int, total: int) -> float:
    return round(hits / total, 4) if total else 0.0


def _p90(values: Sequence[float]) -> float:
    ordered = sorted(values)
    return float(ordered[min(len(ordered) - 1, math.ceil(0.9 * len(ordered)) - 1)]) if ordered else 0.0


def flaw_scores(items: Sequence[EvalItem], answers: dict[str, CritiqueResult]) -> list[FlawScore]:
    originals = {i.story_id: i for i in items if i.flaw is None}
    by_kind: dict[FlawKind, list[tuple[bool, bool]]] = {}
    for item in items:
        if item.flaw is None:
            continue
        original = originals.get(item.story_id)
        planted_answer = answers.get(item.item_id)
        original_answer = answers.get(original.item_id) if original else None
        if planted_answer is None or original_answer is None or planted_answer.error or original_answer.error:
            continue
        # A critique the guard refused never reaches the writer, so it names nothing for them.
        by_kind.setdefault(item.flaw, []).append((
            planted_answer.accepted and names_flaw(planted_answer.text, item.flaw, word=item.word),
            original_answer.accepted and names_flaw(original_answer.text, item.flaw, word=item.word),
        ))
    scores = []
    for kind, pairs in by_kind.items():
        detected = _rate(sum(p for p, _ in pairs), len(pairs))
        alarms = _rate(sum(o for _, o in pairs), len(pairs))
        scores.append(FlawScore(kind=kind, stories=len(pairs), detected=detected, false_alarms=alarms,
                                lift=round(detected - alarms, 4)))
    return scores


def score(critic: str, items: Sequence[EvalItem], answers: Iterable[CritiqueResult], *,
          provider: str, model: str, prompt_version: str) -> CriticScores:
    """Scores over the items that have an answer; failed calls count as critiques that did not pass."""
    by_id = {a.item_id: a for a in answers}
    present = [i for i in items if i.item_id in by_id]
    results = [by_id[i.item_id] for i in present]
    ok = [(i, by_id[i.item_id]) for i in present if by_id[i.item_id].error is None]
    reasons: Counter[str] = Counter(r for _, a in ok for r in a.reasons)
    quotes = grounded = 0
    for item, answer in ok:
        q, g = grounding_counts(answer.text, item.text)
        quotes, grounded = quotes + q, grounded + g
    flaws = flaw_scores(present, by_id)
    words = [count_words(a.text) for _, a in ok]
    teacher = [count_words(i.reference) for i in present if i.reference]
    teacher_median = float(statistics.median(teacher)) if teacher else None
    # Length against the teacher on the same stories: the ones with a reference.
    same_stories = [count_words(a.text) for i, a in ok if i.reference]
    own_median = float(statistics.median(same_stories)) if same_stories else None
    latencies = [a.latency_ms for _, a in ok]
    total_cost = sum(a.cost_usd for a in results)
    word_stats = distribution(words)
    return CriticScores(
        critic=critic, provider=provider, model=model, prompt_version=prompt_version,
        critiques=len(results), errors=len(results) - len(ok),
        errors_by_code=dict(Counter(a.error.code for a in results if a.error)),
        pass_rate=_rate(sum(1 for _, a in ok if a.accepted), len(results)),
        rejected_by_reason=dict(sorted(reasons.items())),
        quotes=quotes, grounded_quotes=grounded, grounding=_rate(grounded, quotes) if quotes else None,
        flaws=flaws,
        flaw_lift=round(statistics.fmean(f.lift for f in flaws), 4) if flaws else None,
        false_alarms=round(statistics.fmean(f.false_alarms for f in flaws), 4) if flaws else None,
        loop_rate=_rate(sum(1 for _, a in ok if a.trimmed_loop), len(ok)),
        truncated_rate=_rate(sum(1 for _, a in ok if a.finish_reason == "length"), len(ok)),
        words=word_stats, teacher_words_median=teacher_median,
        length_ratio=round(own_median / teacher_median, 3) if teacher_median and own_median else None,
        latency_ms_median=float(statistics.median(latencies)) if latencies else 0.0,
        latency_ms_p90=_p90(latencies),
        cost_usd_total=round(total_cost, 6),
        cost_usd_per_critique=round(total_cost / len(results), 8) if results else 0.0,
        cost_priced=all(a.priced for a in results),
    )


def reference_answers(items: Sequence[EvalItem]) -> list[CritiqueResult]:
    """The teacher's accepted critiques as answers (stories as written only), for length and grounding."""
    return [CritiqueResult(item_id=i.item_id, provider="teacher", model="reference", prompt_version="",
                           raw=i.reference, text=i.reference, accepted=True)
            for i in items if i.flaw is None and i.reference]
