"""Benchmark the build report of a 400-story build: its size, how long it takes to write, and how long
headless Chromium takes to open it (the target is under 2 seconds).

The build is made by the real pipeline functions over a folder store: 400 stories stitched from the
bundled samples' paragraphs (so no two are the same), critiques by the offline critic, one in ten replaced
by a bad critique from the validator's fixtures (rejections with highlighted spans), a few failed and
budget-skipped stories, a fine-tune result file of 300 steps and evaluation scores, so every chart and
every kind of card is drawn. Then validate -> assemble, which writes report.html as a build does.

Opening is timed in headless Chromium (Debian's `chromium`), network off, over the DevTools pipe: from
the navigation command to the first frame drawn after the page's load event; in a freshly started browser
(median of 3, browser start-up not counted) and opened again in one browser (median of --runs). The first
contentful paint and a search over every card, as the page measures them, are printed beside it.

    .venv/bin/python bench/bench_report.py [--stories 400] [--runs 7] [--json]
"""

from __future__ import annotations

import argparse
import gzip
import itertools
import json
import os
import random
import statistics
import sys
import tempfile
import time
from importlib.resources import files
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from targets import finish  # noqa: E402

from coach.adapters.storage import dataset_key, eval_key, report_key  # noqa: E402
from coach.domain.critic import write_critique  # noqa: E402
from coach.domain.prompt import PROMPT_VERSION  # noqa: E402
from coach.domain.records import BuildRequest, ErrorInfo, GenerationRecord, SourceSpec, Story, Usage  # noqa: E402
from coach.local.dir_store import DirectoryStore  # noqa: E402
from coach.local.shard_map import in_process, run_shard_map  # noqa: E402
from coach.pipeline.assemble import assemble  # noqa: E402
from coach.pipeline.report import publish_report  # noqa: E402
from tests.support.chromium import Chromium, find_chromium  # noqa: E402

TARGET_SECONDS = 2.0
BUILD = "bench-report"
FIXTURES = ROOT / "tests" / "fixtures" / "validator" / "bad.jsonl"

SEARCH = """(() => { const q = document.getElementById('q'); const t0 = performance.now();
  q.value = 'the'; q.dispatchEvent(new Event('input'));
  const shown = +document.getElementById('shown').textContent; const ms = performance.now() - t0;
  q.value = ''; q.dispatchEvent(new Event('input')); return {ms, shown}; })()"""
PAINTED = "new Promise(done => requestAnimationFrame(() => requestAnimationFrame(() => done(true))))"
PAINT = """(() => { const p = performance.getEntriesByName('first-contentful-paint')[0];
  const n = performance.getEntriesByType('navigation')[0];
  return {fcp_ms: p ? p.startTime : null, load_ms: n ? n.loadEventEnd : null,
          cards: document.querySelectorAll('article.ex').length,
          charts: document.querySelectorAll('figure.chart svg').length}; })()"""


def sample_paragraphs() -> list[tuple[str, list[str]]]:
    found = []
    for path in sorted((files("coach") / "samples").iterdir()):
        if path.name.endswith(".md"):
            title, _, body = path.read_text(encoding="utf-8").partition("\n")
            found.append((title.lstrip("# ").strip(), [p for p in body.split("\n\n") if p.strip()]))
    return found


def make_build(root: Path, n: int) -> DirectoryStore:
    rng = random.Random(7)
    store = DirectoryStore(root)
    samples = sample_paragraphs()
    rows = [json.loads(line) for line in FIXTURES.read_text(encoding="utf-8").splitlines() if line.strip()]
    bad = [row["feedback"] for row in rows if row["feedback"].strip()]  # an empty one cannot be a record
    request = BuildRequest(build_id=BUILD, provider="openai", model="gpt-4o-mini", budget_usd=5.0,
                           source=SourceSpec(kind="directory", path="/stories"))
    store.put_text(f"builds/{BUILD}/request.json", request.model_dump_json())
    for i, bad_critique in zip(range(n), itertools.cycle(bad), strict=False):
        title, _ = samples[i % len(samples)]
        # Paragraphs of three samples, so no two stories (or their critiques) are the same.
        paragraphs = [p for _, ps in rng.sample(samples, 3) for p in rng.sample(ps, min(4, len(ps)))]
        story = Story(story_id=f"story-{i:04d}", title=f"{title} ({i})", text="\n\n".join(paragraphs),
                      source="directory")
        store.put_story(BUILD, story)
        common = {"build_id": BUILD, "story_id": story.story_id, "prompt_version": PROMPT_VERSION,
                  "provider": "openai", "model": "gpt-4o-mini"}
        if i % 50 == 7:
            record = GenerationRecord(**common, status="failed", error=ErrorInfo(
                code="rate_limited", message="HTTP 429: rate limit reached after 5 attempts"), dead_lettered=True)
        elif i % 50 == 9:
            record = GenerationRecord(**common, status="skipped_budget", error=ErrorInfo(
                code="budget_exhausted", message="the build's $5.00 budget is spent"))
        else:
            feedback = bad_critique if i % 10 == 3 else write_critique(story.text, title=story.title)
            tokens = len(story.text) // 4 + 400
            record = GenerationRecord(**common, status="generated", feedback=feedback,
                                      usage=Usage(prompt_tokens=tokens, completion_tokens=len(feedback) // 4,
                                                  total_tokens=tokens + len(feedback) // 4),
                                      cost_usd=round(tokens * 0.15e-6 + len(feedback) / 4 * 0.6e-6, 7))
        store.put_feedback(record)
    steps = "".join(f"{s},{2.4 / (1 + s / 40) + rng.uniform(0, 0.08):.4f},,"
                    + (f"{2.5 / (1 + s / 40):.4f}" if s % 10 == 0 else "") + "\n" for s in range(1, 301))
    store.put_text(dataset_key(BUILD, "fine-tune/step_metrics.csv"), "step,train_loss,train_accuracy,valid_loss\n"
                   + steps)
    store.put_json(eval_key(BUILD, "scores.json"), {"scores": {"validator_pass_rate": 0.94, "grounding": 0.81,
                                                               "flaw_detection_lift": 0.37, "latency_ms": 1840},
                                                    "passed": True})
    store.put_json(f"builds/{BUILD}/scrape.json", {"build_id": BUILD, "run_id": "bench", "stories": n})
    shards = run_shard_map(BUILD, "bench", store=store, call=in_process(store, max_story_tokens=1_500))
    assemble(request, store=store, shards=shards)
    return store


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stories", type=int, default=400)
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of text")
    parser.add_argument("--keep", type=Path, help="also copy the report here")
    args = parser.parse_args()
    browser = find_chromium()
    if browser is None:
        sys.exit("headless Chromium not found: apt-get install -y chromium (or set COACH_CHROMIUM)")
    os.environ.setdefault("COACH_TOKENIZER", "estimate")
    with tempfile.TemporaryDirectory(prefix="bench-report-") as tmp:
        store = make_build(Path(tmp) / "state", args.stories)
        renders = []
        for _ in range(3):
            started = time.perf_counter()
            publish_report(store, BUILD)
            renders.append(time.perf_counter() - started)
        html = store.get_text(report_key(BUILD)) or ""
        page = Path(tmp) / "report.html"
        page.write_text(html, encoding="utf-8")
        if args.keep:
            args.keep.write_text(html, encoding="utf-8")
        url = page.resolve().as_uri()
        cold = []
        for _ in range(3):  # a fresh browser each time: nothing of the page is cached yet
            with Chromium(browser, width=1280, height=900) as chromium:
                chromium.offline()
                started = time.perf_counter()
                chromium.open(url)
                chromium.evaluate(PAINTED)
                cold.append(time.perf_counter() - started)
        opens, facts, search = [], {}, {}
        with Chromium(browser, width=1280, height=900) as chromium:
            chromium.offline()
            for _ in range(args.runs):
                chromium.open("about:blank")
                started = time.perf_counter()
                chromium.open(url)
                chromium.evaluate(PAINTED)  # the load event can come before the first frame is on screen
                opens.append(time.perf_counter() - started)
                facts = chromium.evaluate(PAINT)
            search = chromium.evaluate(SEARCH)
            outside = [r["request"]["url"] for r in chromium.requests if not r["request"]["url"].startswith(
                ("file:", "about:"))]
    size = len(html.encode("utf-8"))
    median = statistics.median(opens)
    cold_median = statistics.median(cold)
    result = {
        "stories": args.stories, "cards": facts.get("cards"), "charts_drawn": facts.get("charts"),
        "report_bytes": size, "report_gzip_bytes": len(gzip.compress(html.encode("utf-8"))),
        "render_median_s": round(statistics.median(renders), 3), "runs": args.runs,
        "cold_open_median_s": round(cold_median, 3), "cold_open_max_s": round(max(cold), 3),
        "open_median_s": round(median, 3), "open_min_s": round(min(opens), 3), "open_max_s": round(max(opens), 3),
        "first_contentful_paint_ms": round(facts.get("fcp_ms") or 0), "search_ms": round(search.get("ms", 0), 1),
        "requests_outside_the_file": outside, "load_average": round(os.getloadavg()[0], 1),
        "target_s": TARGET_SECONDS,
        "within_target": max(cold_median, median) < TARGET_SECONDS and not outside,
    }
    sentence = (
        f"report of {args.stories} stories: {size / 1e6:.2f} MB ({result['report_gzip_bytes'] / 1e3:.0f} kB "
        f"gzipped), {result['cards']} cards, {result['charts_drawn']} charts; written in "
        f"{result['render_median_s']:.2f} s (median of 3); opened in headless Chromium in {cold_median:.3f} s "
        f"from a fresh browser (median of 3, max {max(cold):.3f}), {median:.3f} s when opened again "
        f"(median of {args.runs}, min {min(opens):.3f}, max {max(opens):.3f}; first contentful paint "
        f"{result['first_contentful_paint_ms']} ms; a search over every card {result['search_ms']} ms; "
        f"load average {result['load_average']}; target < {TARGET_SECONDS:.0f} s); "
        f"requests outside the file: {len(outside)}")
    return finish(result, sentence, as_json=args.json)


if __name__ == "__main__":
    sys.exit(main())
