"""The report page and the dataset card, rendered from typed inputs (pure functions, no browser)."""

from __future__ import annotations

import itertools
import re
from html.parser import HTMLParser

import yaml

from coach.domain.records import (
    BuildManifest,
    Counts,
    ErrorInfo,
    Evidence,
    FineTuneStatus,
    GenerationRecord,
    ShardFailures,
    SourceSpec,
    Story,
    Verdict,
)
from coach.domain.report import (
    EvalScores,
    ReportInput,
    Span,
    StepMetric,
    example_view,
    render_card,
    render_report,
)
from coach.domain.report.card import size_category
from coach.domain.report.page import highlight
from coach.domain.report.svg import histogram, nice_ticks
from coach.domain.validation import validate_feedback

STORY = Story(story_id="s-1", title="The Lighthouse", text="The keeper climbed the stairs. " * 40, source="samples")
BAD = ("1. The author rushes the opening scene here.\n2. The author tells us the keeper is tired.\n"
       "3. The author ends too fast.")


def _record(story_id: str, **changes) -> GenerationRecord:
    fields = {"build_id": "b", "story_id": story_id, "prompt_version": "editor-v1", "provider": "openai",
              "model": "gpt-4o-mini", "status": "generated", "feedback": "You open well.", "cost_usd": 0.0004}
    return GenerationRecord(**{**fields, **changes})


def _input(**changes) -> ReportInput:
    rejected = validate_feedback(BAD, story=STORY.text, story_id="s-1")
    good_text = "You open with real confidence, and your keeper's climb is vivid. " * 4
    examples = [
        example_view(STORY, _record("s-1", feedback=BAD), rejected, story_id="s-1"),
        example_view(STORY.model_copy(update={"story_id": "s-2", "title": "<script>alert(1)</script>"}),
                     _record("s-2", feedback=good_text), Verdict(story_id="s-2", accepted=True, feedback=good_text),
                     story_id="s-2", split="train", tokens=812),
        example_view(STORY.model_copy(update={"story_id": "s-3"}),
                     _record("s-3", status="failed", feedback=None, cost_usd=0.0,
                             error=ErrorInfo(code="rate_limited", message="HTTP 429 after 5 attempts"),
                             dead_lettered=True), None, story_id="s-3"),
        example_view(STORY.model_copy(update={"story_id": "s-4"}),
                     _record("s-4", status="skipped_budget", feedback=None, cost_usd=0.0,
                             error=ErrorInfo(code="budget_exhausted", message="the $1.00 budget is spent")),
                     None, story_id="s-4"),
    ]
    manifest = BuildManifest(
        build_id="b", provider="openai", model="gpt-4o-mini", prompt_version="editor-v1",
        source=SourceSpec(kind="reddit"),
        counts=Counts(stories=4, generated=2, failed=1, skipped_budget=1, accepted=1, rejected=1,
                      rejected_by_reason={r: 1 for r in rejected.reasons}, train_examples=1),
    )
    data = ReportInput(manifest=manifest, examples=examples, base_model="gpt-4o-mini-2024-07-18",
                       token_limit=65_536, budget_usd=1.0)
    return data.model_copy(update=changes)


class _Tags(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict]] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))


def _tags(html: str) -> list[tuple[str, dict]]:
    parser = _Tags()
    parser.feed(html)
    return parser.tags


def test_the_rejected_critique_has_its_spans_marked_with_their_reasons():
    html = render_report(_input())
    marks = re.findall(r'<mark class="flag" data-reason="([^"]+)"(?: data-label="[^"]+")? title="[^"]*">([^<]*)</mark>',
                       html)
    assert marks, "no highlighted span"
    reasons = {r for found, _ in marks for r in found.split()}
    assert reasons == {"list_format", "third_person"}
    assert any(text == "The author" for _, text in marks)
    # The span overlapping two rules carries both reasons.
    assert any(set(found.split()) == {"list_format", "third_person"} for found, _ in marks)


def test_overlapping_spans_cut_the_text_without_losing_or_repeating_any():
    text = "abcdefghij"
    html = highlight(text, [Span(start=2, end=6, reason="x"), Span(start=4, end=8, reason="y")])
    assert re.sub(r"<[^>]+>", "", html) == text
    assert '<mark class="flag" data-reason="x y"' in html and html.count("<mark") == 3
    # Each reason is labelled once, where its span ends.
    assert re.findall(r'data-label="([^"]+)"', html) == ["x", "y"]


def test_failed_and_skipped_stories_show_their_causes():
    html = render_report(_input())
    assert "rate_limited: HTTP 429 after 5 attempts (dead-lettered)" in html
    assert "budget_exhausted: the $1.00 budget is spent" in html
    assert 'data-status="failed"' in html and 'data-status="skipped_budget"' in html
    # The summary counts the causes.
    assert "cause: rate_limited" in html and "cause: budget_exhausted" in html


def test_the_page_loads_nothing_and_story_text_cannot_inject_markup():
    html = render_report(_input())
    tags = _tags(html)
    assert not [t for t, a in tags if t in ("link", "img", "iframe", "object", "embed")]
    assert not [a for t, a in tags if "src" in a]
    assert [t for t, _ in tags].count("script") == 1  # the page's own filter script, inline
    assert "url(" not in html and "@import" not in html
    csp = next(a["content"] for t, a in tags if t == "meta" and a.get("http-equiv") == "Content-Security-Policy")
    assert "default-src 'none'" in csp
    assert "<script>alert(1)</script>" not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html


def test_charts_are_drawn_when_their_data_exists_and_say_not_available_otherwise():
    bare = render_report(_input())
    assert 'data-chart="story-length"' in bare and 'data-chart="rejections"' in bare
    loss = re.search(r'data-chart="fine-tune-loss">.*?</figure>', bare).group(0)
    assert "not available" in loss and "<svg" not in loss
    evaluation = re.search(r'data-chart="evaluation">.*?</figure>', bare).group(0)
    assert "not available" in evaluation

    rich = render_report(_input(
        step_metrics=[StepMetric(step=s, train_loss=2.0 / s, valid_loss=2.2 / s) for s in range(1, 11)],
        evaluation=EvalScores(scores={"pass_rate": 0.92, "grounding": 0.8, "latency_ms": 850}, passed=True),
        manifest=_input().manifest.model_copy(update={"fine_tune": FineTuneStatus(status="succeeded")}),
    ))
    loss = re.search(r'data-chart="fine-tune-loss">.*?</figure>', rich).group(0)
    assert loss.count("<polyline") == 2 and "train loss" in loss and "validation loss" in loss
    evaluation = re.search(r'data-chart="evaluation">.*?</figure>', rich).group(0)
    assert evaluation.count('class="bar"') == 2 and "gate passed" in evaluation and "latency_ms 850" in evaluation


def test_cost_per_story_is_plotted_when_critiques_cost_money():
    html = render_report(_input())
    cost = re.search(r'data-chart="cost-per-story">.*?</figure>', html).group(0)
    assert "<svg" in cost and "total $0.0008 over 3 stories" in cost


def test_a_limit_far_beyond_the_data_is_named_not_drawn_as_one_squashed_bar():
    far = histogram("t", "Tokens", [800, 900, 1000], x_label="tokens", marker=65_536, marker_label="limit 65,536")
    assert "off the chart" in far and 'class="marker"' not in far
    near = histogram("t", "Tokens", [800, 900, 1000], x_label="tokens", marker=1100, marker_label="limit 1,100")
    assert 'class="marker"' in near


def test_nice_ticks_cover_the_range_with_round_steps():
    assert nice_ticks(0, 1000) == [0, 200, 400, 600, 800, 1000]
    ticks = nice_ticks(3.2, 7.9)
    assert ticks[0] <= 3.2 and ticks[-1] >= 7.9
    assert len({round(b - a, 9) for a, b in itertools.pairwise(ticks)}) == 1
    assert nice_ticks(0, 3, 4, integer=True) == [0, 1, 2, 3]  # counts have no halves


def test_stories_left_out_by_failed_shard_batches_are_counted_with_their_cause():
    failures = ShardFailures(batches=2, stories=800, causes={"States.Timeout": 2}, results_key="k")
    data = _input()
    data = data.model_copy(update={"manifest": data.manifest.model_copy(update={"shard_failures": failures})})
    html = render_report(data)
    assert "left out (shard batches failed)" in html and "800 stories in 2 batches (States.Timeout 2)" in html
    assert "Left out because their validation batches failed: 800 stories in 2 batches" in render_card(data)
    assert "left out" not in render_report(_input()) and "Left out" not in render_card(_input())


def test_an_unfinished_build_says_why_in_a_banner():
    html = render_report(_input(complete=False, problem="only 1 usable examples; a dataset needs at least 10"))
    assert '<p class="banner">only 1 usable examples' in html


def test_the_dataset_card_has_a_hub_header_and_keeps_reddit_licences_with_their_authors():
    card = render_card(_input())
    header = yaml.safe_load(card.split("---")[1])
    assert header["license"] == "other" and "Reddit authors" in header["license_details"]
    assert header["language"] == ["en"] and header["task_categories"] == ["text-generation"]
    assert header["size_categories"] == ["n<1K"]
    assert header["configs"][0]["data_files"] == [{"split": "train", "path": "train.jsonl"}]
    for section in ("## Sources and provenance", "## Prompt", "## Validation: what was removed", "## Known limitations",
                    "## Licence", "## How to cite"):
        assert section in card
    assert "| `list_format` | 1 |" in card and "editor-compact-v1" in card and "editor-v1" in card

    samples = render_card(_input(manifest=_input().manifest.model_copy(
        update={"source": SourceSpec(kind="samples"), "provider": "offline"})))
    assert yaml.safe_load(samples.split("---")[1])["license"] == "mit"
    assert "offline rule-based critic" in samples


def test_size_categories_follow_the_hub_buckets():
    assert [size_category(n) for n in (0, 999, 1_000, 50_000, 2_000_000)] == [
        "n<1K", "n<1K", "1K<n<10K", "10K<n<100K", "n>1M"]


def test_evidence_a_cleaner_removed_is_a_note_not_a_mark():
    verdict = Verdict(story_id="s", accepted=True, feedback="You write well.", cleaned=["strip_label"],
                      evidence=[Evidence(rule="strip_label", reason="strip_label", span="FEEDBACK:",
                                         start=0, end=9, detail="removed")])
    view = example_view(STORY, _record("s", feedback="FEEDBACK: You write well."), verdict, story_id="s")
    assert view.spans == [] and view.notes == ["cleaned (strip_label): removed \u201cFEEDBACK:\u201d"]


def test_a_very_large_build_lists_what_was_thrown_out_first_and_says_how_many_are_left_out():
    html = render_report(_input(), max_cards=2)
    assert html.count('<article class="ex"') == 2
    assert 'data-status="rejected"' in html and 'data-status="failed"' in html
    assert "2 more stories (1 skipped (budget), 1 accepted) are not listed here" in html
    # The charts still count every story.
    assert "4 stories" in re.search(r'data-chart="story-length">.*?</figure>', html).group(0)


def test_a_duplicate_is_shown_with_what_it_repeats_and_stays_out_of_the_splits():
    text = "You open with real confidence, and your keeper's climb is vivid. " * 4
    view = example_view(STORY, _record("s-1", feedback=text), Verdict(story_id="s-1", accepted=True, feedback=text),
                        story_id="s-1", split="train", tokens=900,
                        duplicate={"reasons": ["near_duplicate_critique"], "duplicate_of": "s-0", "similarity": 0.93})
    assert view.status == "duplicate" and view.split is None and view.tokens is None
    assert view.reasons == ["near_duplicate_critique"] and view.notes == ["duplicate of s-0 (similarity 0.93)"]
