"""The report in the pipeline: written by the assembler (finished or refused), refreshed when a fine-tune
ends, linked from the manifest and the step's output, and written again by `coach report`."""

from __future__ import annotations

import json
import re

import pytest
import yaml

from coach.adapters.storage import BuildStore, card_key, dataset_key, report_key, request_key
from coach.cli import main
from coach.domain.prompt import PROMPT_VERSION
from coach.domain.records import BuildManifest, EvaluationSummary, GenerationRecord, Story, Verdict
from coach.domain.validation import validate_feedback
from coach.local.dir_store import DirectoryStore
from coach.local.lambda_runtime import invoke
from coach.pipeline.report import publish_report
from coach.step_errors import DatasetTooSmall
from tests.handlers.test_finetune_lifecycle import BUCKET, _poll, _request, lifecycle, seed_build
from tests.support.shards import sharded

__all__ = ["lifecycle"]  # the fixture, shared with the fine-tune lifecycle tests

LIST_ABOUT_THE_AUTHOR = ("1. The author rushes the opening scene and loses the reader.\n"
                         "2. The author tells us the keeper is tired instead of showing it.\n"
                         "3. The author ends too fast and should let the last image breathe longer.\n\n"
                         "Overall the author has a good ear for place and could build on it with patience.")


def _reject_one(store: BuildStore, build_id: str, story_id: str) -> None:
    story = store.get_story(build_id, story_id)
    store.put_feedback(GenerationRecord(build_id=build_id, story_id=story_id, prompt_version=PROMPT_VERSION,
                                        provider="openai", model="gpt-4o-mini", status="generated",
                                        feedback=LIST_ABOUT_THE_AUTHOR, cost_usd=0.0003))
    store.put_verdict(build_id, validate_feedback(LIST_ABOUT_THE_AUTHOR, story=story.text, story_id=story_id))


def _chart(html: str, name: str) -> str:
    return re.search(rf'data-chart="{name}">.*?</figure>', html, re.S).group(0)


def test_the_assembler_writes_the_report_and_the_card_and_links_both(lifecycle):
    store = lifecycle.store
    seed_build(store)
    _reject_one(store, "ft-build", "story-03")
    store.put_json(request_key("ft-build"), _request())
    assembled = invoke("assembler", sharded(_request()))

    assert assembled["report_key"] == report_key("ft-build") == "builds/ft-build/report/report.html"
    manifest = store.get_model(dataset_key("ft-build", "manifest.json"), BuildManifest)
    assert manifest.files["report.html"] == report_key("ft-build")
    assert manifest.files["README.md"] == card_key("ft-build") == "builds/ft-build/dataset/README.md"
    html = store.get_text(report_key("ft-build"))
    assert html.count('<article class="ex"') == 24
    assert re.search(r'id="ex-story-03" data-status="rejected" data-reasons="[^"]*list_format', html)
    assert '<mark class="flag" data-reason="list_format' in html
    assert _chart(html, "rejections").count('class="bar"') == len(manifest.counts.rejected_by_reason)
    assert "<svg" in _chart(html, "cost-per-story")  # the teacher's critiques cost money
    card = store.get_text(card_key("ft-build"))
    header = yaml.safe_load(card.split("---")[1])
    assert header["configs"][0]["data_files"][1] == {"split": "validation", "path": "validation.jsonl"}
    assert f"| train | {manifest.counts.train_examples} |" in card and "| `list_format` | 1 |" in card


def test_a_build_refused_for_too_few_examples_still_gets_a_report_that_says_why(lifecycle):
    store = lifecycle.store
    seed_build(store, n=3)
    for story_id in ("story-00", "story-01"):
        _reject_one(store, "ft-build", story_id)
    with pytest.raises(DatasetTooSmall):
        invoke("assembler", sharded(_request()))
    html = store.get_text(report_key("ft-build"))
    assert '<p class="banner">only 1 usable examples' in html
    assert html.count('data-status="rejected"') == 2
    assert store.get_text(card_key("ft-build")) is None  # no dataset, so no card describing one


def test_the_report_gains_the_loss_curve_and_the_real_cost_when_the_fine_tune_ends(lifecycle):
    store = lifecycle.store
    seed_build(store)
    invoke("assembler", sharded(_request()))
    assert "not available" in _chart(store.get_text(report_key("ft-build")), "fine-tune-loss")
    started = invoke("finetune", {"action": "start", "request": _request()})
    done = _poll(started["job_id"])[-1]
    html = store.get_text(report_key("ft-build"))
    loss = _chart(html, "fine-tune-loss")
    assert loss.count("<polyline") == 3 and "from the job's checkpoints" in loss
    assert f"${done['cost_usd']:,.4f}" in html


def test_evaluation_scores_in_the_build_are_plotted(lifecycle):
    store = lifecycle.store
    seed_build(store)
    invoke("assembler", sharded(_request()))
    assert "not available" in _chart(store.get_text(report_key("ft-build")), "evaluation")
    # What the Evaluate step leaves in the manifest, then the report written again from the records.
    key = dataset_key("ft-build", "manifest.json")
    manifest = store.get_model(key, BuildManifest)
    manifest.evaluation = EvaluationSummary(model="ft:x", passed=False, reasons=["grounding_below_floor"],
                                            pass_rate=0.9, grounding=0.75)
    store.put_text(key, manifest.model_dump_json())
    publish_report(store, "ft-build")
    evaluation = _chart(store.get_text(report_key("ft-build")), "evaluation")
    assert evaluation.count('class="bar"') >= 2 and "gate failed" in evaluation


def test_coach_report_rewrites_the_report_from_a_bucket(lifecycle, tmp_path, capsys):
    store = lifecycle.store
    seed_build(store)
    store.put_json(request_key("ft-build"), _request())
    invoke("assembler", sharded(_request()))
    store.s3.delete_object(Bucket=BUCKET, Key=report_key("ft-build"))

    assert main(["report", "ft-build", "--bucket", BUCKET, "--out", str(tmp_path)]) == 0
    assert store.get_text(report_key("ft-build")) == (tmp_path / "report.html").read_text()
    assert (tmp_path / "README.md").read_text() == store.get_text(card_key("ft-build"))
    assert f"wrote {tmp_path / 'report.html'}" in capsys.readouterr().out


def _local_build(state, build_id: str = "local-b") -> DirectoryStore:
    """A finished local build's records on disk, as `coach build` leaves them under OUT/.state."""
    store = DirectoryStore(state)
    store.put_json(request_key(build_id), {"build_id": build_id})
    for i in range(3):
        story = Story(story_id=f"s{i}", title=f"Tale {i}", text=f"The tide came in, slow and grey, {i}.",
                      source="samples")
        store.put_story(build_id, story)
        critique = f"You set the scene with real economy in tale {i}."
        store.put_feedback(GenerationRecord(build_id=build_id, story_id=story.story_id, prompt_version="editor-v1",
                                            provider="offline", model="coach-offline-critic-v1", status="generated",
                                            feedback=critique))
        store.put_verdict(build_id, Verdict(story_id=story.story_id, accepted=True, feedback=critique))
    return store


def test_coach_report_reads_a_local_build_and_opens_the_page_when_asked(tmp_path, monkeypatch, capsys):
    _local_build(tmp_path / "out" / ".state")
    opened = []
    monkeypatch.setattr("webbrowser.open", lambda url: opened.append(url) or True)
    assert main(["report", "local-b", "--out", str(tmp_path / "out"), "--open"]) == 0
    report = tmp_path / "out" / "report.html"
    html = report.read_text()
    assert opened == [report.resolve().as_uri()]
    # No manifest: the build never assembled. The report still shows its stories, and says so.
    assert html.count('<article class="ex"') == 3 and 'class="banner"' in html
    assert not (tmp_path / "out" / "README.md").exists()


def test_coach_report_of_an_unknown_build_is_a_one_line_error(tmp_path, capsys):
    assert main(["report", "nope", "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: build_not_found: no build 'nope'") and err.count("\n") == 1


def test_the_directory_store_lists_keys_by_prefix_like_s3(tmp_path):
    store = _local_build(tmp_path)
    assert list(store.list_keys("builds/local-b/stories/")) == [f"builds/local-b/stories/s{i}.json" for i in range(3)]
    assert list(store.list_keys("builds/local-b/stor")) == list(store.list_keys("builds/local-b/stories/"))
    assert list(store.list_keys("builds/other/")) == []
    assert json.loads(store.get_text(request_key("local-b"))) == {"build_id": "local-b"}
    with pytest.raises(ValueError, match="leaves the store"):
        store.get_text("../outside.json")
