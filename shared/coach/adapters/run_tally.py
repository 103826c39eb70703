"""A build run's count of stories whose final record is written, so progress is one read at any size.

Whoever writes a story's final record (generated, failed, skipped_budget) also counts it here. Items live in
the idempotency table (hash key `id`), beside the generation keys and budget ledgers:

    tally#{build}#{run}            the run: one counter per outcome
    tally#{build}#{run}#{story}    the story's marker: the outcome it was counted as

The marker and the counter change in one DynamoDB transaction, conditional on the marker being new, so a
redelivered message, a retried batch or a crash between the two writes never counts a story twice. A story
counted as failed that later succeeds (a redrive) moves from one counter to the other, again in one
transaction. Items expire with the idempotency records' `expiration` attribute.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable
from typing import Any, Literal, Protocol

from botocore.exceptions import ClientError
from pydantic import BaseModel

Outcome = Literal["generated", "failed", "skipped_budget"]
OUTCOMES: tuple[Outcome, ...] = ("generated", "failed", "skipped_budget")
EXPIRES_AFTER_S = 30 * 24 * 3600
BATCH_GET_LIMIT = 100  # DynamoDB's BatchGetItem maximum


class TallyCounts(BaseModel):
    generated: int = 0
    failed: int = 0
    skipped_budget: int = 0

    @property
    def accounted(self) -> int:
        return self.generated + self.failed + self.skipped_budget


class RunTally(Protocol):
    def count(self, build_id: str, run_id: str, story_id: str, outcome: str) -> bool: ...

    def read(self, build_id: str, run_id: str) -> TallyCounts: ...

    def counted(self, build_id: str, run_id: str, story_ids: Iterable[str]) -> dict[str, str]: ...


def run_item_id(build_id: str, run_id: str) -> str:
    return f"tally#{build_id}#{run_id}"


def marker_id(build_id: str, run_id: str, story_id: str) -> str:
    return f"tally#{build_id}#{run_id}#{story_id}"


def _check_outcome(outcome: str) -> Outcome:
    if outcome not in OUTCOMES:
        raise ValueError(f"a final record is one of {OUTCOMES}, not {outcome!r}")
    return outcome  # type: ignore[return-value]


class DynamoRunTally:
    """The tally in DynamoDB. Calls: `count` 1 TransactWriteItems (3 when an outcome moves), `read` 1
    GetItem, `counted` one BatchGetItem per 100 stories."""

    def __init__(self, table: str, dynamodb_client: Any, *, clock: Any = time.time) -> None:
        self.table = table
        self.client = dynamodb_client
        self.clock = clock

    def _expiration(self) -> dict[str, str]:
        return {"N": str(int(self.clock()) + EXPIRES_AFTER_S)}

    def count(self, build_id: str, run_id: str, story_id: str, outcome: str) -> bool:
        """True when this call counted the story (or moved it to another outcome); False when it already was."""
        outcome = _check_outcome(outcome)
        marker = {"id": {"S": marker_id(build_id, run_id, story_id)}, "outcome": {"S": outcome},
                  "expiration": self._expiration()}
        if self._transact(marker, "attribute_not_exists(id)", {}, add={outcome: 1}, run=(build_id, run_id)):
            return True
        found = self.client.get_item(TableName=self.table, Key={"id": marker["id"]}, ConsistentRead=True)
        previous = found.get("Item", {}).get("outcome", {}).get("S")
        if previous is None or previous in (outcome, "generated"):
            return False  # a critique, once counted, stays counted
        # A story counted as failed (or skipped) has another final record now: move it, once.
        return self._transact(marker, "outcome = :previous", {":previous": {"S": previous}},
                              add={outcome: 1, previous: -1}, run=(build_id, run_id))

    def _transact(self, marker: dict[str, Any], condition: str, values: dict[str, Any], *, add: dict[str, int],
                  run: tuple[str, str]) -> bool:
        names = {f"#o{i}": name for i, name in enumerate(add)}
        update_values = {f":v{i}": {"N": str(delta)} for i, delta in enumerate(add.values())}
        try:
            self.client.transact_write_items(TransactItems=[
                {"Put": {"TableName": self.table, "Item": marker, "ConditionExpression": condition,
                         **({"ExpressionAttributeValues": values} if values else {})}},
                {"Update": {"TableName": self.table, "Key": {"id": {"S": run_item_id(*run)}},
                            "UpdateExpression": "ADD " + ", ".join(f"#o{i} :v{i}" for i in range(len(add)))
                                                + " SET expiration = if_not_exists(expiration, :exp)",
                            "ExpressionAttributeNames": names,
                            "ExpressionAttributeValues": {**update_values, ":exp": self._expiration()}}},
            ])
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") == "TransactionCanceledException":
                return False  # the marker's condition failed: counted already (or moved by another delivery)
            raise
        return True

    def read(self, build_id: str, run_id: str) -> TallyCounts:
        item = self.client.get_item(TableName=self.table, Key={"id": {"S": run_item_id(build_id, run_id)}},
                                    ConsistentRead=True).get("Item")
        if not item:
            return TallyCounts()
        numbers = {name: int(item[name]["N"]) for name in OUTCOMES if name in item}
        return TallyCounts(**numbers)

    def counted(self, build_id: str, run_id: str, story_ids: Iterable[str]) -> dict[str, str]:
        """{story id: outcome} of the given stories that have been counted in this run."""
        wanted = {marker_id(build_id, run_id, s): s for s in story_ids}
        ids = list(wanted)
        found: dict[str, str] = {}
        for start in range(0, len(ids), BATCH_GET_LIMIT):
            keys: list[dict[str, Any]] = [{"id": {"S": i}} for i in ids[start:start + BATCH_GET_LIMIT]]
            while keys:
                answer = self.client.batch_get_item(RequestItems={self.table: {
                    "Keys": keys, "ConsistentRead": True, "ProjectionExpression": "id, outcome"}})
                for item in answer.get("Responses", {}).get(self.table, []):
                    found[wanted[item["id"]["S"]]] = item["outcome"]["S"]
                keys = answer.get("UnprocessedKeys", {}).get(self.table, {}).get("Keys", [])
        return found


class MemoryRunTally:
    """The same tally in one process (the direct local build, whose run lives and dies with the command)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._runs: dict[tuple[str, str], TallyCounts] = {}
        self._markers: dict[tuple[str, str, str], str] = {}

    def _run(self, build_id: str, run_id: str) -> TallyCounts:
        return self._runs.setdefault((build_id, run_id), TallyCounts())

    def count(self, build_id: str, run_id: str, story_id: str, outcome: str) -> bool:
        outcome = _check_outcome(outcome)
        with self._lock:
            key = (build_id, run_id, story_id)
            previous = self._markers.get(key)
            if previous in (outcome, "generated"):
                return False
            run = self._run(build_id, run_id)
            if previous is not None:
                setattr(run, previous, getattr(run, previous) - 1)
            setattr(run, outcome, getattr(run, outcome) + 1)
            self._markers[key] = outcome
            return True

    def read(self, build_id: str, run_id: str) -> TallyCounts:
        with self._lock:
            return self._run(build_id, run_id).model_copy()

    def counted(self, build_id: str, run_id: str, story_ids: Iterable[str]) -> dict[str, str]:
        with self._lock:
            return {s: self._markers[(build_id, run_id, s)] for s in story_ids
                    if (build_id, run_id, s) in self._markers}
