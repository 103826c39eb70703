"""The Evaluate step and the promotion gate: fake fine-tuned critics served by the OpenAI-compatible test
server are scored on a build's held-out stories (emulated S3 and SSM); the gate refuses the bad ones with
the reason a person would give, and only the good one reaches the model parameter the API reads."""

from __future__ import annotations

import json
from types import SimpleNamespace

import boto3
import pytest
from moto import mock_aws

from coach import runtime
from coach.adapters.model_registry import ModelRegistry
from coach.adapters.storage import BuildStore, dataset_key, eval_set_key
from coach.domain.records import BuildManifest
from coach.errors import CoachError
from coach.local.lambda_runtime import invoke
from tests.fakes import critic_models
from tests.fakes.openai_server import CONTENT_POLICY, FakeOpenAIServer
from tests.support.held_out import seed_validation

BUCKET = "coach-eval-tests"
PARAMETER = "/coach/critique-model"
BUILD_ID = "eval-build"
HELD_OUT = 6


def build_request(**evaluation) -> dict:
    return {"build_id": BUILD_ID, "provider": "openai", "model": "gpt-4o-mini", "fine_tune": {"enabled": True},
            "evaluation": {"concurrency": 2, **evaluation}}


def succeeded(model: str) -> dict:
    return {"job_id": "ftjob-1", "status": "succeeded", "fine_tuned_model": model, "trained_tokens": 1000,
            "build_id": BUILD_ID, "finished_at": "2026-12-01T10:00:00Z"}


@pytest.fixture
def env(monkeypatch):
    for name, value in {
        "COACH_BUCKET": BUCKET, "COACH_MODEL_PARAMETER": PARAMETER, "COACH_TOKENIZER": "estimate",
        "OPENAI_API_KEY": "sk-test",
    }.items():
        monkeypatch.setenv(name, value)
    for name in ("COACH_OPENAI_SECRET", "COACH_PROVIDER", "COACH_MODEL", "AWS_ENDPOINT_URL"):
        monkeypatch.delenv(name, raising=False)
    with FakeOpenAIServer(api_key="sk-test", replies_by_model=critic_models.BEHAVIOURS) as fake, mock_aws():
        monkeypatch.setenv("OPENAI_BASE_URL", fake.base_url)
        runtime.reset()
        s3 = boto3.client("s3")
        s3.create_bucket(Bucket=BUCKET)
        store = BuildStore(BUCKET, s3)
        stories = seed_validation(store, BUILD_ID, HELD_OUT)
        yield SimpleNamespace(fake=fake, store=store, stories=stories,
                              registry=ModelRegistry(boto3.client("ssm"), PARAMETER))
    runtime.reset()


def evaluate_then_publish(model: str, **evaluation) -> tuple[dict, dict | None]:
    result = invoke("evaluate", {"request": build_request(**evaluation), "job": succeeded(model)})
    published = None
    if result["passed"]:
        published = invoke("finetune", {"action": "publish", "build_id": BUILD_ID, "job": succeeded(model)})
    return result, published


def manifest(store: BuildStore) -> BuildManifest:
    found = store.get_model(dataset_key(BUILD_ID, "manifest.json"), BuildManifest)
    assert found is not None
    return found


def test_the_good_model_passes_and_is_published_with_its_scores(env):
    result, published = evaluate_then_publish(critic_models.GOOD)

    assert result["passed"] is True, result["summary"]
    assert result["reasons"] == []
    scores = result["scores"]
    assert scores["pass_rate"] == 1.0 and scores["grounding"] == 1.0 and scores["loop_rate"] == 0.0
    assert scores["flaw_lift"] >= 0.2
    assert scores["critiques"] == HELD_OUT * 6  # each story as written plus one copy per planted flaw
    # Every item was asked of the model exactly once, as the critique API asks a fine-tune.
    chats = env.fake.chat_requests()
    assert len(chats) == HELD_OUT * 6
    assert {c.model for c in chats} == {critic_models.GOOD}
    assert all(c.params.get("stop") == ["<<END OF FEEDBACK>>"] for c in chats)

    assert published is not None and published["model"] == critic_models.GOOD
    served = env.registry.current()
    assert served is not None and served.model == critic_models.GOOD
    assert served.scores is not None and served.scores.passed and served.scores.pass_rate == 1.0
    assert served.scores.report_key == result["report_key"]
    assert manifest(env.store).evaluation.model == critic_models.GOOD
    report = json.loads(env.store.get_text(result["report_key"]))
    assert report["references"]["critiques"] == HELD_OUT  # the teacher's critiques, for length and grounding
    assert report["candidate"]["length_ratio"] is not None


@pytest.mark.parametrize(("model", "reasons", "words"), [
    (critic_models.LOOPING, ["loop_rate_above_ceiling"], "loop rate 100% is above the ceiling 10%"),
    # A retelling fails the house standard, so it names no flaw for the writer either.
    (critic_models.RETELLING, ["pass_rate_below_floor", "flaw_lift_below_floor"],
     "pass rate 0% is below the floor 80% (rejections: story_continuation"),
    (critic_models.BLIND, ["flaw_lift_below_floor"], "planted-flaw lift +0.00 is below the floor +0.20"),
])
def test_a_bad_model_is_refused_with_its_reason_and_nothing_is_published(env, model, reasons, words):
    result, _ = evaluate_then_publish(model)

    assert result["passed"] is False
    assert result["reasons"] == reasons
    assert words in result["summary"]
    assert env.registry.current() is None  # the critique API keeps serving the base model
    recorded = manifest(env.store).evaluation
    assert recorded is not None and recorded.model == model and not recorded.passed
    assert recorded.reasons == reasons
    # Even if someone invokes the publish action by hand, the gate's refusal holds.
    with pytest.raises(CoachError) as refused:
        invoke("finetune", {"action": "publish", "build_id": BUILD_ID, "job": succeeded(model)})
    assert refused.value.code == "evaluation_failed"
    assert env.registry.current() is None


def test_a_new_model_is_compared_with_the_published_one(env):
    evaluate_then_publish(critic_models.GOOD)

    result, _ = evaluate_then_publish(critic_models.BLIND, gate={"min_flaw_lift": -1.0})

    # Past the (lowered) floor, but far below what the published model names.
    assert result["reasons"] == ["flaw_lift_below_baseline"]
    report = json.loads(env.store.get_text(result["report_key"]))
    assert report["baseline"]["model"] == critic_models.GOOD
    assert env.registry.current().model == critic_models.GOOD


def test_the_evaluation_set_is_held_out_deterministic_and_stored_once(env):
    invoke("evaluate", {"request": build_request(), "job": succeeded(critic_models.GOOD)})
    first = env.store.get_text(eval_set_key(BUILD_ID))
    data = json.loads(first)
    assert {i["story_id"] for i in data["items"]} == {s.story_id for s in env.stories}
    planted = [i for i in data["items"] if i["flaw"]]
    assert len(planted) == HELD_OUT * 5
    for item in planted:
        assert all(span in item["text"] for span in item["planted"])
    originals = {i["story_id"]: i for i in data["items"] if not i["flaw"]}
    assert all(o["reference"] for o in originals.values())

    env.store.s3.delete_object(Bucket=BUCKET, Key=eval_set_key(BUILD_ID))
    invoke("evaluate", {"request": build_request(), "job": succeeded(critic_models.GOOD)})
    assert env.store.get_text(eval_set_key(BUILD_ID)) == first


def test_evaluation_disabled_lets_the_model_through_and_says_so(env):
    result = invoke("evaluate", {"request": build_request(enabled=False), "job": succeeded(critic_models.BLIND)})

    assert result["passed"] is True and result["skipped"] is True
    assert "disabled" in result["summary"]
    assert env.fake.chat_requests() == []


def test_a_retried_evaluate_step_pays_only_for_what_is_missing(env):
    env.fake.push_script(CONTENT_POLICY, CONTENT_POLICY, CONTENT_POLICY)  # refused, not retried by the provider
    first = invoke("evaluate", {"request": build_request(concurrency=1), "job": succeeded(critic_models.GOOD)})
    asked_first = len(env.fake.chat_requests())
    assert first["scores"]["critiques"] == HELD_OUT * 6

    again = invoke("evaluate", {"request": build_request(), "job": succeeded(critic_models.GOOD)})

    # Only the three items whose calls failed are asked again.
    assert len(env.fake.chat_requests()) - asked_first == 3
    assert again["passed"] is True and again["scores"]["pass_rate"] == 1.0


def test_the_deployments_gate_applies_unless_the_build_request_sets_its_own(env, monkeypatch):
    monkeypatch.setenv("COACH_EVAL_GATE", '{"min_flaw_lift": -1.0}')
    lenient = invoke("evaluate", {"request": build_request(), "job": succeeded(critic_models.BLIND)})
    assert lenient["passed"] is True

    strict = invoke("evaluate", {"request": build_request(gate={"min_flaw_lift": 0.2}),
                                 "job": succeeded(critic_models.BLIND)})
    assert strict["reasons"] == ["flaw_lift_below_floor"]

    monkeypatch.setenv("COACH_EVAL_GATE", '{"min_pass_rate": 2}')
    with pytest.raises(CoachError) as bad:
        invoke("evaluate", {"request": build_request(), "job": succeeded(critic_models.BLIND)})
    assert bad.value.code == "invalid_configuration"
