"""The samples build's report.html, opened from disk in headless Chromium with the network switched off.

One stored critique of the samples build is replaced by one an editor would throw out (a numbered list
about "the author"), and the build is resumed: the validator rejects it, the assembler counts it, and the
report shows it highlighted. The page is then checked as a reader sees it: charts drawn with bars, the
rejected span visible and marked with its reason, the filter working, nothing requested from anywhere.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from coach.adapters.storage import feedback_key
from tests.support.chromium import Chromium, chromium_or_skip

pytestmark = [pytest.mark.slow, pytest.mark.browser]
REPO = Path(__file__).resolve().parents[2]
BUILD = "report-samples"
SPOILED = "sample-coffee-for-two"
BAD_CRITIQUE = (
    "The author has written a story about a coffee shop and a barista. The author describes Emma's "
    "feelings in detail.\n\n"
    "1. The author tells us that Emma is nervous instead of showing it, which weakens the scene.\n"
    "2. The dialogue is stiff; the author could let the barista speak more naturally.\n"
    "3. The ending comes too quickly, and the author should give the final moment more room to breathe.\n\n"
    "Overall the author shows promise and with revision this story could be much stronger for readers."
)

# Everything a reader would see, measured in the page: which charts have drawn bars and are on screen,
# and where the highlighted rejection is once scrolled to.
PAGE_FACTS = """(() => {
  const visible = el => { const r = el.getBoundingClientRect(), s = getComputedStyle(el);
    return r.width > 0 && r.height > 0 && s.visibility !== 'hidden' && s.display !== 'none'; };
  const charts = {};
  document.querySelectorAll('figure.chart').forEach(f => {
    const svg = f.querySelector('svg');
    charts[f.dataset.chart] = svg ? {visible: visible(svg), bars: svg.querySelectorAll('rect.bar').length,
                                     lines: svg.querySelectorAll('polyline').length}
                                  : {visible: false, text: f.textContent};
  });
  const mark = document.querySelector('article[data-status="rejected"] mark.flag');
  mark.scrollIntoView({block: 'center'});
  const box = mark.getBoundingClientRect();
  const style = getComputedStyle(mark);
  return {charts, title: document.title,
          mark: {text: mark.textContent, reason: mark.dataset.reason, visible: visible(mark),
                 inViewport: box.top >= 0 && box.bottom <= innerHeight,
                 background: style.backgroundColor, underline: style.borderBottomStyle,
                 story: mark.closest('article').id},
          marks: document.querySelectorAll('mark.flag').length,
          articles: document.querySelectorAll('article.ex').length};
})()"""

FILTER_REJECTED = """(() => {
  const select = document.getElementById('verdict');
  select.value = 'rejected'; select.dispatchEvent(new Event('change'));
  const shown = [...document.querySelectorAll('article.ex')].filter(a => !a.hidden).map(a => a.id);
  select.value = ''; select.dispatchEvent(new Event('change'));
  const q = document.getElementById('q');
  q.value = 'oat milk'; q.dispatchEvent(new Event('input'));
  const found = [...document.querySelectorAll('article.ex')].filter(a => !a.hidden).map(a => a.id);
  return {shown, found, counter: document.getElementById('shown').textContent};
})()"""


def coach(*args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "COACH_", "AWS_ENDPOINT"))}
    return subprocess.run([sys.executable, "-m", "coach", *args], capture_output=True, text=True, env=env,
                          cwd=REPO, timeout=300)


@pytest.fixture(scope="module")
def samples_build(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("report") / "out"
    first = coach("build", "--source", "samples", "--build-id", BUILD, "--out", str(out))
    assert first.returncode == 0, first.stderr
    record_file = out / ".state" / feedback_key(BUILD, SPOILED)
    record = json.loads(record_file.read_text())
    record["feedback"] = BAD_CRITIQUE
    record_file.write_text(json.dumps(record))
    again = coach("build", "--source", "samples", "--build-id", BUILD, "--out", str(out))
    assert again.returncode == 0, again.stderr
    return out


def test_the_samples_report_shows_charts_and_the_highlighted_rejection_offline(samples_build, tmp_path):
    browser = chromium_or_skip()
    manifest = json.loads((samples_build / "manifest.json").read_text())
    assert manifest["counts"]["rejected"] == 1
    assert manifest["files"]["report.html"] == f"builds/{BUILD}/report/report.html"
    report = samples_build / "report.html"
    url = report.resolve().as_uri()

    with Chromium(browser, width=1280, height=900) as page:
        page.offline()
        page.open(url)
        facts = page.evaluate(PAGE_FACTS)
        shot = page.screenshot()
        (tmp_path / "report.png").write_bytes(shot)
        filtered = page.evaluate(FILTER_REJECTED)
        requests = [r["request"]["url"] for r in page.requests]
        errors = page.console_errors

    assert shot.startswith(b"\x89PNG") and len(shot) > 20_000  # a rendered page, not a blank one
    assert facts["title"] == f"Build report: {BUILD}"
    charts = facts["charts"]
    for name in ("story-length", "critique-length", "example-tokens", "rejections"):
        assert charts[name]["visible"] and charts[name]["bars"] > 0, (name, charts[name])
    assert charts["rejections"]["bars"] == 2  # list_format and third_person
    assert "not available" in charts["fine-tune-loss"]["text"]  # the offline samples build is not fine-tuned
    mark = facts["mark"]
    assert mark["story"] == f"ex-{SPOILED}"
    assert mark["visible"] and mark["inViewport"], mark
    assert "third_person" in mark["reason"] or "list_format" in mark["reason"]
    assert mark["text"] in BAD_CRITIQUE and mark["background"] not in ("rgba(0, 0, 0, 0)", "transparent")
    assert mark["underline"] == "solid"
    assert facts["articles"] == manifest["counts"]["stories"]
    assert filtered["shown"] == [f"ex-{SPOILED}"]
    assert filtered["found"] == [f"ex-{SPOILED}"] and filtered["counter"] == "1"  # "oat milk" is in that story
    assert requests == [url], requests  # the page itself, and nothing else
    assert errors == []
