"""What a build's critiques will cost, before any is paid for: pure estimates over token counts and prices.

Two figures serve two decisions:
- the *expected* cost of a whole build (each story's prompt plus a typical critique) decides, before
  anything is enqueued, whether the build can fit its budget at all;
- the *worst-case* cost of one call (its prompt plus the full completion allowance) is what a story
  reserves from the budget before its call, so concurrent calls can never spend past the budget together.

Money is counted in integer nano-dollars so concurrent additions in the ledger are exact. The ledger's rules
(its key, when a reservation fits, what settling and releasing change) are here too, so the DynamoDB ledger
and the file ledger of a direct local build differ only in how they store the totals.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

from pydantic import BaseModel, ConfigDict

from coach.domain.pricing import PriceTable
from coach.domain.records import Usage
from coach.errors import BudgetExceededError, ConfigError

NANOS_PER_USD = 1_000_000_000
# A critique is one to three paragraphs: about 150-400 words, so 200-550 tokens. The expected figure sits
# in the upper half so the pre-check errs towards refusing a build that would be cut short.
EXPECTED_FEEDBACK_TOKENS = 450
# Without tiktoken, prompt tokens are a chars/4 estimate; the provider's real count can be higher.
ESTIMATE_MARGIN = 1.25


def to_nanos(usd: float) -> int:
    """USD -> integer nano-dollars, rounded up so a reservation never undershoots."""
    return math.ceil(round(usd * NANOS_PER_USD, 3))


def to_usd(nanos: int) -> float:
    return round(nanos / NANOS_PER_USD, 9)


# The totals a run's ledger keeps, in nano-dollars (calls is a count); a total never written is 0.
LEDGER_TOTALS = ("committed", "reserved", "spent", "calls")


def ledger_key(build_id: str, run_id: str) -> str:
    """One ledger per run of a build, so a crashed run's reservations die with it."""
    return f"budget#{build_id}#{run_id or '-'}"


class ReserveTerms(BaseModel):
    """One reservation: `nanos` more committed, granted only while committed stays within `allowance`."""

    model_config = ConfigDict(frozen=True)

    nanos: int
    allowance: int

    @property
    def cap(self) -> int:
        """The most that may be committed already for this reservation still to fit."""
        return self.allowance - self.nanos

    def admits(self, committed: int) -> bool:
        return committed <= self.cap

    def deltas(self) -> dict[str, int]:
        return {"committed": self.nanos, "reserved": self.nanos}


def reserve_terms(amount_usd: float, allowance_usd: float) -> ReserveTerms | None:
    """The terms of reserving `amount_usd`; None when the call alone exceeds the allowance (refused unasked)."""
    terms = ReserveTerms(nanos=to_nanos(amount_usd), allowance=to_nanos(allowance_usd))
    return terms if terms.cap >= 0 else None


def settle_deltas(reserved_nanos: int, cost_usd: float) -> dict[str, int]:
    """A call paid for: its reservation is swapped for what it really cost, and it counts as a call."""
    spent = to_nanos(cost_usd)
    return {"committed": spent - reserved_nanos, "reserved": -reserved_nanos, "spent": spent, "calls": 1}


def release_deltas(reserved_nanos: int) -> dict[str, int]:
    """A call that failed and was not paid for: its reservation is given back whole."""
    return {"committed": -reserved_nanos, "reserved": -reserved_nanos}


class CallEstimate(BaseModel):
    """The worst case of one critique call: what a story reserves from the budget before calling."""

    model: str
    prompt_tokens: int
    max_completion_tokens: int
    usd: float
    priced: bool

    @property
    def nanos(self) -> int:
        return to_nanos(self.usd)


class BuildEstimate(BaseModel):
    """The expected cost of the stories still to generate."""

    model: str
    stories: int
    prompt_tokens: int
    completion_tokens: int
    usd: float
    priced: bool
    estimated_tokens: bool = False

    def describe(self) -> str:
        return (f"{self.stories} stories, about {self.prompt_tokens} prompt + {self.completion_tokens} "
                f"completion tokens in all on {self.model} ≈ ${self.usd:.4f}")


def _margin(tokens: int, estimated: bool) -> int:
    return math.ceil(tokens * ESTIMATE_MARGIN) if estimated else tokens


def estimate_call(model: str, prompt_tokens: int, max_completion_tokens: int, prices: PriceTable, *,
                  estimated_tokens: bool = False, batch: bool = False) -> CallEstimate:
    prompt = _margin(prompt_tokens, estimated_tokens)
    usage = Usage(prompt_tokens=prompt, completion_tokens=max_completion_tokens,
                  total_tokens=prompt + max_completion_tokens)
    quote = prices.quote(model, usage, batch=batch)
    return CallEstimate(model=model, prompt_tokens=prompt, max_completion_tokens=max_completion_tokens,
                        usd=quote.usd, priced=quote.priced)


def estimate_build(model: str, prompt_tokens: Iterable[int], prices: PriceTable, *,
                   max_completion_tokens: int, estimated_tokens: bool = False,
                   batch: bool = False) -> BuildEstimate:
    """Expected cost of generating one critique per story, from each story's prompt token count."""
    counts = [_margin(n, estimated_tokens) for n in prompt_tokens]
    per_story = min(EXPECTED_FEEDBACK_TOKENS, max_completion_tokens)
    prompt_total = sum(counts)
    completion_total = per_story * len(counts)
    quote = prices.quote(model, Usage(prompt_tokens=prompt_total, completion_tokens=completion_total,
                                      total_tokens=prompt_total + completion_total), batch=batch)
    return BuildEstimate(model=model, stories=len(counts), prompt_tokens=prompt_total,
                         completion_tokens=completion_total, usd=quote.usd, priced=quote.priced,
                         estimated_tokens=estimated_tokens)


def check_fits(estimate: BuildEstimate, *, budget_usd: float, spent_usd: float = 0.0) -> None:
    """Refuse a build whose remaining stories cannot fit what is left of its budget."""
    if not estimate.priced:
        raise ConfigError(
            f"the build has a budget (--budget, budget_usd) but the price table has no entry for model "
            f"'{estimate.model}': add it to COACH_PRICE_TABLE (USD per 1M input/output tokens) or drop the budget",
            code="unpriced_model")
    left = budget_usd - spent_usd
    if estimate.stories and estimate.usd > left:
        spent = f" (${spent_usd:.4f} already spent, ${max(left, 0):.4f} left)" if spent_usd else ""
        raise BudgetExceededError(
            f"the build cannot fit its budget of ${budget_usd:.4f}{spent}: {estimate.describe()}; "
            "raise the budget (--budget, budget_usd) or lower the story limit (--limit, limit)")
