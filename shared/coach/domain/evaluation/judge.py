"""Pairwise judging: which of two critiques of the same story would help the writer more.

Each pair is judged twice with the positions swapped; a critique wins only when both orders prefer it,
anything else is a tie, so a judge's preference for the first (or second) position cannot decide. The
result has win/tie/loss shares with 95 % Wilson intervals, how often the two orders agreed, and how often
the judge agrees with the house standard where exactly one critique of the pair passed it: LLM judges
agree with expert readers only moderately, so the judge is reported, never gated on.
"""

from __future__ import annotations

import math
import re
from typing import Literal

from pydantic import BaseModel, ConfigDict

Preference = Literal["A", "B", "tie"]
Outcome = Literal["win", "tie", "loss"]

JUDGE_PROMPT_VERSION = "pairwise-judge-v1"
JUDGE_SYSTEM = (
    "You are an experienced fiction editor judging feedback that two editors wrote on the same short story. "
    "Good feedback speaks to the writer as \"you\", praises specific things worth keeping, names the story's "
    "real problems of craft (pacing, dialogue, showing and telling, word choice) with short quotations and a "
    "direction for the rewrite, and never retells or continues the story."
)
_ANSWER_RE = re.compile(r"\b(A|B|TIE)\b")


def judge_messages(story: str, first: str, second: str) -> list[dict[str, str]]:
    user = (
        f"STORY:\n{story}\n\nFEEDBACK A:\n{first}\n\nFEEDBACK B:\n{second}\n\n"
        "Which feedback would help this writer more? Answer with one word: A, B or TIE."
    )
    return [{"role": "system", "content": JUDGE_SYSTEM}, {"role": "user", "content": user}]


def parse_preference(answer: str) -> Preference | None:
    """The judge's choice from its reply (the first A, B or TIE word), or None if it gave none."""
    found = _ANSWER_RE.search((answer or "").upper())
    if not found:
        return None
    return "tie" if found.group(1) == "TIE" else found.group(1)  # type: ignore[return-value]


def combine(candidate_first: Preference | None, candidate_second: Preference | None) -> Outcome:
    """The candidate's outcome from the two orders: judged as A in the first, as B in the second."""
    first = {"A": "win", "B": "loss"}.get(candidate_first or "", "tie")
    second = {"B": "win", "A": "loss"}.get(candidate_second or "", "tie")
    return first if first == second else "tie"  # type: ignore[return-value]


def wilson(hits: int, total: int, z: float = 1.96) -> tuple[float, float]:
    """95 % Wilson score interval for a proportion."""
    if total == 0:
        return 0.0, 1.0
    p = hits / total
    denominator = 1 + z * z / total
    centre = (p + z * z / (2 * total)) / denominator
    half = z * math.sqrt(p * (1 - p) / total + z * z / (4 * total * total)) / denominator
    return round(max(0.0, centre - half), 4), round(min(1.0, centre + half), 4)


class PairJudgement(BaseModel):
    model_config = ConfigDict(extra="forbid")

    item_id: str
    candidate_first: Preference | None  # the judge's answer with the candidate shown as A
    candidate_second: Preference | None  # ... shown as B
    outcome: Outcome
    candidate_accepted: bool
    other_accepted: bool


class Share(BaseModel):
    model_config = ConfigDict(extra="forbid")

    count: int
    share: float
    low: float
    high: float


class JudgeScores(BaseModel):
    model_config = ConfigDict(extra="forbid")

    judge: str
    against: str  # what the candidate was compared with
    pairs: int
    win: Share
    tie: Share
    loss: Share
    order_consistency: float  # share of pairs where both orders gave the same verdict
    validator_pairs: int  # pairs where exactly one critique passed the house standard
    validator_agreement: float | None  # share of those where the judge preferred the one that passed


def aggregate(judge: str, against: str, judgements: list[PairJudgement]) -> JudgeScores:
    n = len(judgements)

    def share(outcome: Outcome) -> Share:
        count = sum(1 for j in judgements if j.outcome == outcome)
        low, high = wilson(count, n)
        return Share(count=count, share=round(count / n, 4) if n else 0.0, low=low, high=high)

    consistent = sum(1 for j in judgements if combine(j.candidate_first, j.candidate_second) != "tie"
                     or (j.candidate_first == "tie" and j.candidate_second == "tie"))
    split = [j for j in judgements if j.candidate_accepted != j.other_accepted]
    agree = sum(1 for j in split if (j.outcome == "win") == j.candidate_accepted and j.outcome != "tie")
    return JudgeScores(
        judge=judge, against=against, pairs=n, win=share("win"), tie=share("tie"), loss=share("loss"),
        order_consistency=round(consistent / n, 4) if n else 0.0,
        validator_pairs=len(split), validator_agreement=round(agree / len(split), 4) if split else None,
    )
