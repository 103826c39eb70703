"""A build run's spending, tracked atomically in DynamoDB so concurrent generators share one budget.

One item per run of a build, `budget#{build_id}#{run_id}`, in the idempotency table (a prefix Powertools
never uses). Amounts are integer nano-dollars:

- `committed` = settled spending + outstanding reservations. A story *reserves* its call's worst case
  before calling, with a conditional ADD that succeeds only while `committed` stays within the run's
  allowance, so concurrent calls can never commit more than the budget between them;
- after the call it *settles*: the reservation is swapped for the real cost; a failed call *releases* it.

A run's allowance is the build's budget minus what earlier runs spent (their feedback records' cost, which
the scraper sums into every task), so a resumed build keeps counting from where it stopped. Reservations
left behind by a crashed run die with that run's item (which expires after 30 days).
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError

from coach.domain.budget import LEDGER_TOTALS, ledger_key, release_deltas, reserve_terms, settle_deltas, to_usd

ITEM_TTL_S = 30 * 24 * 3600


@dataclass(frozen=True)
class Reservation:
    key: str
    nanos: int


@dataclass(frozen=True)
class LedgerState:
    committed_usd: float
    spent_usd: float
    reserved_usd: float
    calls: int

    @classmethod
    def from_totals(cls, totals: Mapping[str, int]) -> LedgerState:
        """From the ledger's totals in nano-dollars (a missing one is 0)."""
        return cls(committed_usd=to_usd(totals.get("committed", 0)), spent_usd=to_usd(totals.get("spent", 0)),
                   reserved_usd=to_usd(totals.get("reserved", 0)), calls=totals.get("calls", 0))


class SpendingLedger(ABC):
    """A run's ledger, whatever stores it: the rules come from coach.domain.budget, the store adds to totals."""

    @staticmethod
    def key(build_id: str, run_id: str) -> str:
        return ledger_key(build_id, run_id)

    @abstractmethod
    def reserve(self, build_id: str, run_id: str, *, amount_usd: float,
                allowance_usd: float) -> Reservation | None:
        """Reserve `amount_usd` if committed + amount stays within `allowance_usd`; None when it does not."""

    def settle(self, reservation: Reservation, cost_usd: float) -> None:
        """Replace the reservation with what the call really cost (no condition: the money is spent)."""
        self._add(reservation.key, settle_deltas(reservation.nanos, cost_usd))

    def release(self, reservation: Reservation) -> None:
        """Give a reservation back: the call failed and was not paid for."""
        self._add(reservation.key, release_deltas(reservation.nanos))

    @abstractmethod
    def state(self, build_id: str, run_id: str) -> LedgerState: ...

    @abstractmethod
    def _add(self, key: str, deltas: Mapping[str, int]) -> object:
        """Add `deltas` to the run's totals in one atomic step."""


class BudgetLedger(SpendingLedger):
    def __init__(self, table: str, dynamodb_client: Any) -> None:
        self.table = table
        self.ddb = dynamodb_client

    def reserve(self, build_id: str, run_id: str, *, amount_usd: float,
                allowance_usd: float) -> Reservation | None:
        terms = reserve_terms(amount_usd, allowance_usd)
        key = self.key(build_id, run_id)
        if terms is None:
            return None
        try:
            # The condition and the ADD are `terms.admits` and `terms.deltas()`, evaluated by DynamoDB in one step.
            self.ddb.update_item(
                TableName=self.table, Key={"id": {"S": key}},
                UpdateExpression=("ADD committed :n, reserved :n "
                                  "SET allowance = :allowance, expiration = :exp"),
                ConditionExpression="attribute_not_exists(committed) OR committed <= :cap",
                ExpressionAttributeValues={
                    ":n": {"N": str(terms.nanos)}, ":cap": {"N": str(terms.cap)},
                    ":allowance": {"N": str(terms.allowance)},
                    ":exp": {"N": str(int(time.time()) + ITEM_TTL_S)},
                },
            )
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException":
                return None
            raise
        return Reservation(key=key, nanos=terms.nanos)

    def state(self, build_id: str, run_id: str) -> LedgerState:
        item = self.ddb.get_item(TableName=self.table, Key={"id": {"S": self.key(build_id, run_id)}},
                                 ConsistentRead=True).get("Item", {})
        return LedgerState.from_totals({name: int(item.get(name, {}).get("N", "0")) for name in LEDGER_TOTALS})

    def _add(self, key: str, deltas: Mapping[str, int]) -> None:
        names = [name for name, delta in deltas.items() if delta]
        if not names:
            return
        self.ddb.update_item(
            TableName=self.table, Key={"id": {"S": key}},
            UpdateExpression="ADD " + ", ".join(f"{name} :{name}" for name in names),
            ExpressionAttributeValues={f":{name}": {"N": str(deltas[name])} for name in names},
        )

