"""`coach eval` and `coach models promote`: what a person at the terminal runs and sees."""

from __future__ import annotations

import json
import re
from pathlib import Path

import boto3
import pytest
from moto import mock_aws

from coach.adapters.model_registry import ModelRegistry
from coach.adapters.storage import dataset_key, eval_set_key, golden_key, promotions_key
from coach.cli import main
from coach.domain.records import BuildManifest, EvaluationSummary, FineTuneStatus
from coach.local.dir_store import DirectoryStore
from tests.fakes import critic_models
from tests.fakes.openai_server import FakeOpenAIServer, story_from_messages
from tests.support.held_out import seed_validation

BUILD_ID = "cli-build"
PARAMETER = "/coach/critique-model"


def seed_local_build(out: Path, stories: int = 4) -> DirectoryStore:
    """A local build's state folder as `coach build` leaves it: the manifest and validation.jsonl."""
    store = DirectoryStore(out / ".state")
    seed_validation(store, BUILD_ID, stories)
    return store


@pytest.fixture
def fake(monkeypatch):
    with FakeOpenAIServer(api_key="sk-test", replies_by_model=critic_models.BEHAVIOURS) as server:
        monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
        monkeypatch.setenv("OPENAI_BASE_URL", server.base_url)
        yield server


def test_eval_on_the_bundled_samples_with_the_offline_critic(tmp_path, capsys):
    code = main(["eval", "--stories", "samples", "--model", "offline", "--max-stories", "3", "--out", str(tmp_path)])

    printed = capsys.readouterr().out
    assert code == 0
    assert "3 held-out stories, 18 items" in printed
    assert re.search(r"pass rate \(house standard\)\s+100%", printed)
    assert re.search(r"adverb_tags: named / false alarm\s+\d+% / \d+%", printed)
    assert "gate: PASSED" in printed
    report_path = re.search(r"report: (\S+)", printed).group(1)
    report = json.loads(Path(report_path).read_text(encoding="utf-8"))
    assert report["candidate"]["model"] == "coach-offline-critic-v1"


def test_a_refused_model_exits_5_with_the_reason(tmp_path, fake, capsys):
    seed_local_build(tmp_path)

    code = main(["eval", BUILD_ID, "--model", critic_models.BLIND, "--out", str(tmp_path)])

    printed = capsys.readouterr().out
    assert code == 5
    assert "gate: REFUSED" in printed and "planted-flaw lift +0.00 is below the floor +0.20" in printed


def test_a_golden_record_lets_a_replacement_be_compared_after_the_original_is_gone(tmp_path, capsys, monkeypatch):
    store = seed_local_build(tmp_path)
    with FakeOpenAIServer(api_key="sk-test", replies_by_model=critic_models.BEHAVIOURS) as old_platform:
        monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
        monkeypatch.setenv("OPENAI_BASE_URL", old_platform.base_url)
        assert main(["eval", BUILD_ID, "--model", critic_models.GOOD, "--record", "--out", str(tmp_path)]) == 0
    capsys.readouterr()
    recorded = store.get_text(golden_key(BUILD_ID, critic_models.GOOD))
    assert recorded and len(recorded.splitlines()) == 4 * 6

    # The original platform is gone; its successor serves only the replacement.
    with FakeOpenAIServer(api_key="sk-test", strict_models=True, models=[critic_models.BLIND],
                          replies_by_model=critic_models.BEHAVIOURS) as new_platform:
        monkeypatch.setenv("OPENAI_BASE_URL", new_platform.base_url)
        code = main(["eval", BUILD_ID, "--model", critic_models.BLIND, "--baseline",
                     f"recorded:{critic_models.GOOD}", "--min-flaw-lift", "-1", "--out", str(tmp_path), "--json"])
        asked = {r.model for r in new_platform.chat_requests()}

    report = json.loads(capsys.readouterr().out)
    assert asked == {critic_models.BLIND}  # the recorded model was never called
    assert report["baseline"]["model"] == critic_models.GOOD
    assert report["gate"]["reasons"] == ["flaw_lift_below_baseline"]
    assert code == 5


def _judge_dislikes_empty_praise(messages):
    """A judge that prefers whichever critique is not the blind model's praise (it reads both as shown)."""
    user = messages[-1]["content"]
    first = user.split("FEEDBACK A:", 1)[1].split("FEEDBACK B:", 1)[0]
    second = user.split("FEEDBACK B:", 1)[1]
    blind_a, blind_b = ("You have a real feel for a scene" in text for text in (first, second))
    return "B" if blind_a and not blind_b else "A" if blind_b and not blind_a else "TIE"


def test_the_judge_sees_each_pair_in_both_orders_and_reports_intervals(tmp_path, fake, capsys):
    seed_local_build(tmp_path)
    fake.configure(replies_by_model={**critic_models.BEHAVIOURS, "judge-model": _judge_dislikes_empty_praise})

    code = main(["eval", BUILD_ID, "--model", critic_models.GOOD, "--baseline", critic_models.BLIND,
                 "--judge", "judge-model", "--out", str(tmp_path)])

    printed = capsys.readouterr().out
    assert code == 0
    judged = [r for r in fake.chat_requests() if r.model == "judge-model"]
    assert len(judged) == 2 * 4  # four stories as written, each pair in both orders
    assert all(story_from_messages([{"role": "user", "content": r.user_content}]) for r in judged)
    assert re.search(r"judge judge-model vs .*coach-blind.*, 4 pairs", printed)
    assert re.search(r"win 100% \[\d+%-100%\]", printed)
    assert "both orders agreed on 100%" in printed


def test_an_unknown_build_and_a_bad_option_are_one_line_errors(tmp_path, capsys):
    assert main(["eval", "missing-build", "--model", "offline", "--out", str(tmp_path)]) == 2
    assert capsys.readouterr().err.startswith("error: build_not_found:")
    assert main(["eval", "--stories", "samples", "--model", "offline", "--min-pass-rate", "2",
                 "--out", str(tmp_path)]) == 2
    assert capsys.readouterr().err.startswith("error: invalid_option:")
    assert main(["eval", "--model", "offline"]) == 2
    assert "name a build" in capsys.readouterr().err


@pytest.fixture
def ssm(monkeypatch):
    monkeypatch.setenv("COACH_MODEL_PARAMETER", PARAMETER)
    monkeypatch.setenv("COACH_OPERATOR", "ana")
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    with mock_aws():
        yield ModelRegistry(boto3.client("ssm", region_name="us-east-1"), PARAMETER)


def test_a_person_can_promote_a_refused_model_with_force_and_it_is_recorded(tmp_path, ssm, capsys):
    store = seed_local_build(tmp_path)
    model = critic_models.BLIND
    manifest = store.get_model(dataset_key(BUILD_ID, "manifest.json"), BuildManifest)
    manifest.fine_tune = FineTuneStatus(status="succeeded", fine_tuned_model=model)
    manifest.evaluation = EvaluationSummary(model=model, passed=False, reasons=["flaw_lift_below_floor"],
                                            pass_rate=1.0, grounding=1.0, flaw_lift=0.0)
    store.put_text(dataset_key(BUILD_ID, "manifest.json"), manifest.model_dump_json())

    assert main(["models", "promote", BUILD_ID, "--out", str(tmp_path)]) == 2
    assert "error: gate_refused:" in capsys.readouterr().err
    assert ssm.current() is None

    assert main(["models", "promote", BUILD_ID, "--force", "--reason", "editor read twenty; fine",
                 "--out", str(tmp_path)]) == 0
    assert "over the gate's refusal (flaw_lift_below_floor); recorded" in capsys.readouterr().out
    served = ssm.current()
    assert served.model == model and served.scores.forced and served.scores.reasons == ["flaw_lift_below_floor"]
    (entry,) = ssm.history()
    assert entry.action == "promote" and "forced over the gate" in entry.description and "ana" in entry.description
    recorded = json.loads(store.get_text(promotions_key(BUILD_ID)).splitlines()[0])
    assert recorded["by"] == "ana" and recorded["reason"] == "editor read twenty; fine"
    assert store.get_model(dataset_key(BUILD_ID, "manifest.json"), BuildManifest).evaluation.forced

    assert main(["models", "list"]) == 0
    listing = capsys.readouterr().out
    assert "forced over: flaw_lift_below_floor" in listing and "100%" in listing and "+0.00" in listing


def test_models_list_shows_the_scores_a_published_version_passed_with(tmp_path, ssm, capsys):
    from coach.adapters.model_registry import PublishedModel

    ssm.publish(PublishedModel(model="ft:a", prompt_version="editor-compact-v1", build_id="b1",
                               trained_at="2026-11-01T00:00:00Z"))
    ssm.publish(PublishedModel(model="ft:b", prompt_version="editor-compact-v1", build_id="b2",
                               trained_at="2026-12-01T00:00:00Z",
                               scores=EvaluationSummary(model="ft:b", passed=True, pass_rate=0.93, grounding=0.97,
                                                        flaw_lift=0.41)))

    assert main(["models", "list"]) == 0
    lines = capsys.readouterr().out.splitlines()
    row_b = next(line for line in lines if "ft:b" in line)
    row_a = next(line for line in lines if "ft:a" in line)
    assert "93%" in row_b and "97%" in row_b and "+0.41" in row_b and row_b.rstrip().endswith("passed")
    assert row_a.rstrip().endswith("not evaluated")
    assert main(["models", "list", "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)["published"]
    assert listed[0]["scores"]["pass_rate"] == 0.93 and listed[1]["scores"] is None


def test_the_evaluation_set_of_a_local_build_is_kept_in_its_state_folder(tmp_path, fake, capsys):
    store = seed_local_build(tmp_path, stories=2)
    assert main(["eval", BUILD_ID, "--model", critic_models.GOOD, "--out", str(tmp_path)]) == 0
    assert store.exists(eval_set_key(BUILD_ID))
    assert (tmp_path / ".state" / "builds" / BUILD_ID / "eval" / "set.json").is_file()
