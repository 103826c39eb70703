"""Budget estimates (pure) and the spending ledger (DynamoDB, emulated by moto) under concurrent use."""

from __future__ import annotations

import boto3
import pytest
from botocore.exceptions import ClientError
from botocore.stub import ANY, Stubber
from moto import mock_aws

from coach.adapters.budget import BudgetLedger
from coach.domain.budget import (
    EXPECTED_FEEDBACK_TOKENS,
    check_fits,
    estimate_build,
    estimate_call,
    ledger_key,
    release_deltas,
    reserve_terms,
    settle_deltas,
    to_nanos,
    to_usd,
)
from coach.domain.pricing import ModelPrice, PriceTable
from coach.errors import BudgetExceededError, ConfigError

# $1 per 1M input tokens, $2 per 1M output tokens: easy figures to check by hand.
PRICES = PriceTable(models={"house-model": ModelPrice(input=1.0, output=2.0)}, free_models={"offline-critic"})


def test_money_is_counted_in_whole_nanodollars_rounded_up():
    assert to_nanos(0.1) == 100_000_000 and to_nanos(1e-9) == 1 and to_nanos(1.5e-9) == 2
    assert to_usd(to_nanos(0.0123)) == 0.0123


def test_a_call_reserves_its_prompt_and_the_whole_completion_allowance():
    call = estimate_call("house-model", 1_000, 800, PRICES)
    assert call.priced and call.usd == pytest.approx((1_000 * 1 + 800 * 2) / 1e6)
    # Prompt tokens counted by the chars/4 heuristic get a margin: the provider may count more.
    rough = estimate_call("house-model", 1_000, 800, PRICES, estimated_tokens=True)
    assert rough.prompt_tokens == 1_250 and rough.usd > call.usd
    assert not estimate_call("mystery-model", 1_000, 800, PRICES).priced
    assert estimate_call("offline-critic", 1_000, 800, PRICES).nanos == 0


def test_a_build_is_estimated_with_a_typical_critique_per_story():
    estimate = estimate_build("house-model", [1_000, 2_000, 3_000], PRICES, max_completion_tokens=800)
    assert estimate.stories == 3 and estimate.prompt_tokens == 6_000
    assert estimate.completion_tokens == 3 * EXPECTED_FEEDBACK_TOKENS
    assert estimate.usd == pytest.approx((6_000 + 2 * 3 * EXPECTED_FEEDBACK_TOKENS) / 1e6)
    # A smaller completion allowance caps the typical critique too.
    short = estimate_build("house-model", [1_000], PRICES, max_completion_tokens=100)
    assert short.completion_tokens == 100


def test_a_build_that_cannot_fit_is_refused_with_its_figures():
    estimate = estimate_build("house-model", [1_000] * 10, PRICES, max_completion_tokens=800)
    check_fits(estimate, budget_usd=estimate.usd)  # exactly enough is enough
    with pytest.raises(BudgetExceededError) as refused:
        check_fits(estimate, budget_usd=estimate.usd * 2, spent_usd=estimate.usd * 1.5)
    message = refused.value.message
    assert refused.value.code == "budget_exceeded"
    assert "10 stories" in message and "already spent" in message and "raise the budget (--budget" in message
    with pytest.raises(ConfigError) as unpriced:
        check_fits(estimate_build("mystery-model", [10], PRICES, max_completion_tokens=800), budget_usd=5)
    assert unpriced.value.code == "unpriced_model" and "COACH_PRICE_TABLE" in unpriced.value.message
    check_fits(estimate_build("offline-critic", [10_000] * 50, PRICES, max_completion_tokens=800),
               budget_usd=0.01)


def test_the_ledger_rules_are_the_same_for_every_store():
    assert ledger_key("b1", "run1") == "budget#b1#run1" and ledger_key("b1", "") == "budget#b1#-"
    terms = reserve_terms(0.25, 2.0)
    assert terms is not None and terms.nanos == 250_000_000 and terms.allowance == 2_000_000_000
    assert terms.cap == 1_750_000_000
    assert terms.admits(1_750_000_000) and not terms.admits(1_750_000_001)
    assert terms.deltas() == {"committed": 250_000_000, "reserved": 250_000_000}
    assert reserve_terms(2.0, 1.0) is None  # a call larger than the whole allowance never asks the ledger
    assert settle_deltas(250_000_000, 0.1) == {"committed": -150_000_000, "reserved": -250_000_000,
                                               "spent": 100_000_000, "calls": 1}
    assert release_deltas(250_000_000) == {"committed": -250_000_000, "reserved": -250_000_000}


@pytest.fixture
def ledger():
    with mock_aws():
        ddb = boto3.client("dynamodb", region_name="us-east-1")
        ddb.create_table(TableName="ledger", BillingMode="PAY_PER_REQUEST",
                         AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
                         KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}])
        yield BudgetLedger("ledger", ddb)


def test_a_reservation_is_one_conditional_write_with_the_allowance_in_its_condition():
    # Concurrent generators stay within the budget because DynamoDB evaluates the condition and the ADD
    # together: the ledger must send exactly one conditional update (no read first, no second write).
    client = boto3.client("dynamodb", region_name="us-east-1")
    stubber = Stubber(client)
    stubber.add_response("update_item", {}, {
        "TableName": "ledger", "Key": {"id": {"S": "budget#b1#run1"}},
        "UpdateExpression": "ADD committed :n, reserved :n SET allowance = :allowance, expiration = :exp",
        "ConditionExpression": "attribute_not_exists(committed) OR committed <= :cap",
        "ExpressionAttributeValues": {
            ":n": {"N": "250000000"}, ":cap": {"N": "1750000000"}, ":allowance": {"N": "2000000000"},
            ":exp": {"N": ANY},
        },
    })
    with stubber:
        got = BudgetLedger("ledger", client).reserve("b1", "run1", amount_usd=0.25, allowance_usd=2.0)
    stubber.assert_no_pending_responses()
    assert got is not None and got.nanos == 250_000_000


def test_a_failed_condition_is_a_refusal_and_other_errors_are_raised():
    client = boto3.client("dynamodb", region_name="us-east-1")
    stubber = Stubber(client)
    stubber.add_client_error("update_item", service_error_code="ConditionalCheckFailedException")
    stubber.add_client_error("update_item", service_error_code="ProvisionedThroughputExceededException")
    ledger = BudgetLedger("ledger", client)
    with stubber:
        assert ledger.reserve("b1", "run1", amount_usd=0.25, allowance_usd=2.0) is None
        with pytest.raises(ClientError):  # not a refusal: the caller must not treat it as "over budget"
            ledger.reserve("b1", "run1", amount_usd=0.25, allowance_usd=2.0)


def test_the_condition_fills_the_allowance_exactly_and_not_one_nano_more(ledger):
    granted = [ledger.reserve("b1", "run1", amount_usd=0.25, allowance_usd=2.0) for _ in range(10)]
    assert [g is not None for g in granted] == [True] * 8 + [False] * 2
    state = ledger.state("b1", "run1")
    assert state.committed_usd == 2.0 and state.reserved_usd == 2.0 and state.spent_usd == 0
    # One nano-dollar over what is left is refused, exactly what is left is granted.
    assert ledger.reserve("b1", "run2", amount_usd=1.0, allowance_usd=1.5) is not None
    assert ledger.reserve("b1", "run2", amount_usd=0.500000001, allowance_usd=1.5) is None
    assert ledger.reserve("b1", "run2", amount_usd=0.5, allowance_usd=1.5) is not None


def test_settling_below_the_reservation_frees_room_and_releasing_gives_it_all_back(ledger):
    first = ledger.reserve("b1", "run1", amount_usd=0.6, allowance_usd=1.0)
    assert first is not None
    assert ledger.reserve("b1", "run1", amount_usd=0.6, allowance_usd=1.0) is None  # 1.2 > 1.0
    ledger.settle(first, 0.35)
    second = ledger.reserve("b1", "run1", amount_usd=0.6, allowance_usd=1.0)
    assert second is not None
    ledger.release(second)
    state = ledger.state("b1", "run1")
    assert state.spent_usd == 0.35 and state.reserved_usd == 0 and state.committed_usd == 0.35
    assert state.calls == 1
    # A call that alone is larger than the allowance is refused without touching the ledger.
    assert ledger.reserve("b1", "run2", amount_usd=2.0, allowance_usd=1.0) is None
    assert ledger.state("b1", "run2").committed_usd == 0


def test_each_run_has_its_own_ledger_so_a_crashed_runs_reservations_do_not_linger(ledger):
    assert ledger.reserve("b1", "crashed-run", amount_usd=0.9, allowance_usd=1.0) is not None
    assert ledger.reserve("b1", "resumed-run", amount_usd=0.9, allowance_usd=1.0) is not None
