"""When a model the product relies on is retired, and what to do about it.

OpenAI publishes a `shutdown_date` on its models; gpt-4o, gpt-4o-mini, gpt-4.1 and gpt-4.1-mini and every
fine-tune of them stop answering on 2027-01-14. A fine-tune must not start on a base model about to go,
and whoever serves or lists a model should see its date well before it arrives.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Literal

from pydantic import BaseModel

WARN_DAYS = 60  # say so in the manifest, `coach models list` and /health
REFUSE_DAYS = 14  # too late to start a fine-tune: the result would barely outlive its training


class RetirementNotice(BaseModel):
    model: str
    shutdown_date: date
    days_left: int
    level: Literal["warn", "refuse"]
    message: str


def today() -> date:
    return datetime.now(UTC).date()


def parse_shutdown(value: object) -> date | None:
    """A `shutdown_date` as the API gives it (YYYY-MM-DD, or a Unix time), else None."""
    if isinstance(value, int | float) and value > 0:
        return datetime.fromtimestamp(float(value), UTC).date()
    if isinstance(value, str) and value.strip():
        try:
            return date.fromisoformat(value.strip()[:10])
        except ValueError:
            return None
    return None


def retirement_notice(model: str, shutdown: date | None, on: date | None = None) -> RetirementNotice | None:
    """A warning within WARN_DAYS of the shutdown, a refusal within REFUSE_DAYS; None when far off or unknown."""
    if shutdown is None:
        return None
    left = (shutdown - (on or today())).days
    if left > WARN_DAYS:
        return None
    if left <= REFUSE_DAYS:
        gone = "was shut down" if left < 0 else "shuts down"
        return RetirementNotice(model=model, shutdown_date=shutdown, days_left=left, level="refuse", message=(
            f"{model} {gone} on {shutdown.isoformat()} ({left} days from today): too late to fine-tune or "
            "rely on it; use the Bedrock backend (docs/fine-tuning.md)"))
    return RetirementNotice(model=model, shutdown_date=shutdown, days_left=left, level="warn", message=(
        f"{model} shuts down on {shutdown.isoformat()} ({left} days from today); plan a replacement "
        "(a Bedrock fine-tune, docs/fine-tuning.md) and record its answers with `coach eval --record`"))
