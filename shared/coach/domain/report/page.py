"""The build report: one self-contained HTML page (inline CSS, inline SVG, a few lines of inline script).

Stories are private, so the page loads nothing: a Content-Security-Policy forbids every fetch, and it
works the same from file:// and as an S3 object. Long lists stay fast because cards off screen are not
laid out (content-visibility) and the only script filters what is already there.
"""

from __future__ import annotations

import itertools
import re
from collections import Counter
from collections.abc import Iterable
from html import escape

from coach.domain.report import svg
from coach.domain.report.inputs import STATUS_ORDER, ExampleView, ReportInput, Span

CSP = "default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; img-src data:"
STATUS_LABELS = {"accepted": "accepted", "rejected": "rejected", "duplicate": "duplicate", "failed": "failed",
                 "skipped_budget": "skipped (budget)", "pending": "not generated"}
_WORD = re.compile(r"\S+")
# Stories of ~450 words make ~3.8 kB cards: 2,000 of them are a 7.6 MB page that opens in about half a second.
MAX_CARDS = 2_000

STYLE = """
:root{--fg:#1d2330;--muted:#5b6475;--bg:#fff;--card:#f6f7f9;--line:#d9dde5;--accent:#2f6db5;
--bad:#b3261e;--bad-bg:#fde3df;--ok:#1e7b45;--warn:#9a6700;--s1:#d9822b;--s2:#7a4fb0;--s3:#2a9d8f}
@media (prefers-color-scheme:dark){:root{--fg:#e6e8ee;--muted:#a3abbb;--bg:#15181e;--card:#1e232b;
--line:#343b47;--accent:#79a8e6;--bad:#ff8a80;--bad-bg:#4a1f1c;--ok:#6fd39b;--warn:#e3b341}}
*{box-sizing:border-box}body{margin:0;font:15px/1.45 system-ui,-apple-system,"Segoe UI",sans-serif;
color:var(--fg);background:var(--bg)}main{max-width:1280px;margin:0 auto;padding:16px 24px 48px}
h1{font-size:1.5em;margin:.2em 0}h2{font-size:1.2em;margin:1.6em 0 .6em;border-bottom:1px solid var(--line)}
h3{font-size:.95em;margin:0 0 4px}.muted,.na{color:var(--muted)}code{font-size:.9em}
.banner{padding:8px 12px;border-radius:6px;background:var(--bad-bg);color:var(--bad);margin:8px 0}
.grid{display:grid;grid-template-columns:repeat(auto-fill,minmax(300px,1fr));gap:12px}
table{border-collapse:collapse;width:100%}td,th{text-align:left;padding:3px 8px;border-bottom:1px solid
var(--line);vertical-align:top}td.n{text-align:right;font-variant-numeric:tabular-nums}
.box{background:var(--card);border-radius:8px;padding:10px 12px}
.charts{display:grid;grid-template-columns:repeat(auto-fill,minmax(480px,1fr));gap:12px}
figure.chart{margin:0;background:var(--card);border-radius:8px;padding:10px}figure svg{width:100%;max-width:600px;
height:auto;display:block}figcaption{font-size:.85em;color:var(--muted)}
svg text{fill:var(--muted);font-size:11px}svg .label{fill:var(--fg)}svg .grid{stroke:var(--line)}
svg .axis{stroke:var(--muted)}svg .bar{fill:var(--accent)}svg .marker{stroke:var(--bad);stroke-dasharray:4 3}
svg .marker-label{fill:var(--bad)}svg .line{fill:none;stroke-width:2;stroke:var(--accent)}
svg .dot{fill:var(--accent)}svg .legend{fill:var(--accent)}svg .s1{stroke:var(--s1);fill:var(--s1)}
svg .s2{stroke:var(--s2);fill:var(--s2)}svg .s3{stroke:var(--s3);fill:var(--s3)}svg .line.s1,svg .line.s2,
svg .line.s3{fill:none}
.controls{position:sticky;top:0;background:var(--bg);padding:8px 0;display:flex;gap:8px;flex-wrap:wrap;
align-items:center;z-index:1;border-bottom:1px solid var(--line)}.controls input{flex:1;min-width:200px}
.controls input,.controls select{font:inherit;padding:4px 6px;color:var(--fg);background:var(--card);
border:1px solid var(--line);border-radius:4px}
article.ex{content-visibility:auto;contain-intrinsic-size:auto 360px;border:1px solid var(--line);
border-radius:8px;margin:10px 0;padding:8px 12px}article.ex[hidden]{display:none}
article.ex>header{display:flex;gap:8px;flex-wrap:wrap;align-items:baseline}
.badge{font-size:.8em;padding:1px 8px;border-radius:10px;background:var(--card);border:1px solid var(--line)}
.b-accepted{color:var(--ok)}.b-rejected,.b-failed{color:var(--bad)}.b-duplicate,.b-skipped_budget,
.b-pending{color:var(--warn)}
.pair{display:grid;grid-template-columns:1fr 1fr;gap:14px}@media (max-width:800px){.pair{grid-template-columns:1fr}}
.text{white-space:pre-wrap;max-height:24em;overflow:auto;background:var(--card);padding:8px 10px;
border-radius:6px;font-size:.93em}
mark.flag{background:var(--bad-bg);color:inherit;border-bottom:2px solid var(--bad);padding:0 1px}
mark.flag[data-label]::after{content:attr(data-label);font-size:.7em;color:var(--bad);vertical-align:super;margin-left:2px}
.cause{color:var(--bad)}ul.notes{margin:4px 0 0;padding-left:18px;font-size:.88em;color:var(--muted)}
"""

SCRIPT = """
(function(){
var q=document.getElementById('q'),v=document.getElementById('verdict'),r=document.getElementById('reason'),
shown=document.getElementById('shown'),cards=Array.prototype.slice.call(document.querySelectorAll('article.ex')),
text=new Map();
function words(c){var t=text.get(c);if(t===undefined){t=c.textContent.toLowerCase();text.set(c,t);}return t;}
function apply(){var term=q.value.trim().toLowerCase(),want=v.value,reason=r.value,n=0;
cards.forEach(function(c){var ok=(!want||c.dataset.status===want)&&
(!reason||(' '+c.dataset.reasons+' ').indexOf(' '+reason+' ')>=0)&&(!term||words(c).indexOf(term)>=0);
c.hidden=!ok;if(ok)n++;});shown.textContent=n;}
q.addEventListener('input',apply);v.addEventListener('change',apply);r.addEventListener('change',apply);
document.querySelectorAll('[data-filter-reason]').forEach(function(a){a.addEventListener('click',function(e){
e.preventDefault();r.value=a.dataset.filterReason;v.value='';apply();
document.getElementById('examples').scrollIntoView();});});
})();
"""


def _money(value: float | None) -> str:
    return "unknown" if value is None else f"${value:,.4f}" if value < 1 else f"${value:,.2f}"


def _rows(pairs: Iterable[tuple[str, str]]) -> str:
    return "".join(f"<tr><th>{escape(k)}</th><td class=n>{v}</td></tr>" for k, v in pairs)


def words(text: str) -> int:
    return len(_WORD.findall(text))


def highlight(text: str, spans: list[Span]) -> str:
    """The critique as HTML with each offending span in a <mark> naming its reason(s); overlaps merge."""
    if not spans:
        return escape(text)
    cuts = sorted({0, len(text), *(s.start for s in spans), *(s.end for s in spans)})
    out = []
    for start, end in itertools.pairwise(cuts):
        piece = escape(text[start:end])
        active = [s for s in spans if s.start <= start and end <= s.end]
        if not active:
            out.append(piece)
            continue
        reasons = " ".join(dict.fromkeys(s.reason for s in active))
        details = "; ".join(dict.fromkeys(f"{s.reason}: {s.detail}" if s.detail else s.reason for s in active))
        # The reason is written once, where its span ends, however many pieces overlaps cut the span into.
        ending = " ".join(dict.fromkeys(s.reason for s in active if s.end == end))
        label = f' data-label="{escape(ending)}"' if ending else ""
        out.append(f'<mark class="flag" data-reason="{escape(reasons)}"{label} title="{escape(details)}">'
                   f"{piece}</mark>")
    return "".join(out)


def _example(view: ExampleView) -> str:
    status = view.status
    title = escape(view.title or view.story_id)
    link = (f' <a href="{escape(view.link)}" rel="noreferrer">source</a>'
            if view.link and view.link.startswith("https://") else "")
    chips = "".join(f'<span class="badge reason">{escape(r)}</span>' for r in view.reasons)
    facts = []
    if view.split:
        facts.append(view.split)
    if view.tokens is not None:
        facts.append(f"{view.tokens} tokens")
    if view.cost_usd:
        facts.append(_money(view.cost_usd))
    if view.story:
        facts.append(f"story {words(view.story)} words")
    if view.critique:
        facts.append(f"critique {words(view.critique)} words")
    if view.cause and view.critique:
        right = f'<p class="cause">{escape(view.cause)}</p><div class="text critique">{escape(view.critique)}</div>'
    elif view.critique:
        right = f'<div class="text critique">{highlight(view.critique, view.spans)}</div>'
    else:
        right = f'<p class="cause">{escape(STATUS_LABELS[status])}: {escape(view.cause)}</p>'
    notes = "".join(f"<li>{escape(n)}</li>" for n in view.notes)
    story = (f'<div class="text story">{escape(view.story)}</div>' if view.story
             else '<p class="muted">story record missing</p>')
    return (f'<article class="ex" id="ex-{escape(view.story_id)}" data-status="{status}" '
            f'data-reasons="{escape(" ".join(view.reasons))}"><header>'
            f'<span class="badge b-{status}">{escape(STATUS_LABELS[status])}</span><strong>{title}</strong>'
            f'<code>{escape(view.story_id)}</code>{chips}<span class="muted">{escape(" · ".join(facts))}</span>'
            f'{link}</header><div class="pair"><section><h4>Story</h4>{story}</section>'
            f'<section><h4>Critique</h4>{right}' + (f'<ul class="notes">{notes}</ul>' if notes else "")
            + "</section></div></article>")


def _summary(data: ReportInput) -> str:
    m = data.manifest
    c = m.counts
    causes = Counter(e.cause.split(":", 1)[0] for e in data.examples if e.status in ("failed", "skipped_budget"))
    build = [
        ("build", f"<code>{escape(m.build_id)}</code>"),
        ("provider / model", escape(f"{m.provider} / {m.model}")),
        ("prompt version", f"<code>{escape(m.prompt_version)}</code>"),
        ("source", escape(m.source.kind + (f" ({m.source.path})" if m.source.path else "")
                          + (f" (r/{m.source.subreddit})" if m.source.kind == "reddit" else ""))),
        ("created", escape(m.created_at)),
        ("report written", escape(data.generated_at)),
    ]
    counts = [
        ("stories", str(c.stories)),
        ("generated (now / reused)", f"{c.generated} ({c.generated_now} / {c.reused})"),
        ("failed", str(c.failed)),
        ("skipped (budget)", str(c.skipped_budget)),
        *[(f"  cause: {cause}", str(n)) for cause, n in sorted(causes.items())],
        *([("left out (shard batches failed)", escape(m.shard_failures.describe()))] if m.shard_failures else []),
        ("accepted", str(c.accepted)),
        ("rejected", str(c.rejected)),
        *[(f"  {reason}", f'<a href="#examples" data-filter-reason="{escape(reason)}">{n}</a>')
          for reason, n in sorted(c.rejected_by_reason.items(), key=lambda kv: -kv[1])],
        ("duplicates removed", str(c.duplicates_removed)),
        ("train / validation examples", f"{c.train_examples} / {c.validation_examples}"),
    ]
    ft = m.fine_tune
    estimated = " (estimated)" if m.tokens.usage_estimated else ""
    money = [
        ("tokens prompt / completion", f"{m.tokens.prompt_tokens:,} / {m.tokens.completion_tokens:,}{estimated}"),
        ("dataset tokens", f"{m.tokens.dataset_tokens:,} ({escape(m.tokens.method)})"),
        ("generation cost", _money(m.cost.generation_usd)),
        ("budget", _money(data.budget_usd) if data.budget_usd is not None else "none set"),
        ("fine-tune estimate", (_money(m.cost.fine_tune_usd) if m.cost.training_price_per_million is not None
                                else "price unknown")
         + f" ({m.cost.billable_training_tokens:,} billable tokens)"),
        ("fine-tune actual", _money(ft.cost_usd) if ft.cost_usd is not None else "not available"),
        ("fine-tune", escape(ft.status + (f": {ft.reason}" if ft.reason else "")
                             + (f" ({ft.fine_tuned_model})" if ft.fine_tuned_model else "")
                             + (f": {ft.error.code}: {ft.error.message}" if ft.error else ""))),
    ]
    return (f'<div class="grid"><div class="box"><table>{_rows(build)}</table></div>'
            f'<div class="box"><table>{_rows(counts)}</table></div>'
            f'<div class="box"><table>{_rows(money)}</table></div></div>')


def _charts(data: ReportInput) -> str:
    m = data.manifest
    stories = [e for e in data.examples if e.story]
    critiques = [e for e in data.examples if e.critique]
    kept = [e.tokens for e in data.examples if e.tokens is not None]
    charts = [
        svg.histogram("story-length", "Story length", [words(e.story) for e in stories], x_label="words",
                      caption=f"{len(stories)} stories"),
        svg.histogram("critique-length", "Critique length", [words(e.critique) for e in critiques],
                      x_label="words", caption=f"{len(critiques)} critiques (after cleaning)"),
    ]
    if kept:
        limit = data.token_limit
        over = sum(1 for t in kept if limit and t > limit)
        charts.append(svg.histogram(
            "example-tokens", "Tokens per example", kept, x_label=f"tokens ({m.tokens.method})", marker=limit,
            marker_label=f"limit {limit:,}" if limit else "",
            caption=f"{len(kept)} kept examples; base model {escape(data.base_model)}"
                    + (f"; {over} over its limit of {limit:,} (truncated in training)" if limit else "")))
    else:
        charts.append(svg.unavailable("example-tokens", "Tokens per example",
                                      "not available: no examples were kept"))
    reasons = sorted(m.counts.rejected_by_reason.items(), key=lambda kv: -kv[1])
    charts.append(svg.bar_chart("rejections", "Rejections by reason", reasons, x_label="critiques",
                                empty="no critique was rejected"))
    costs = [e.cost_usd for e in data.examples if e.generated or e.status == "failed"]
    if any(costs):
        charts.append(svg.histogram("cost-per-story", "Cost per story", costs, x_label="USD",
                                    caption=f"total {_money(sum(costs))} over {len(costs)} stories"))
    else:
        charts.append(svg.unavailable(
            "cost-per-story", "Cost per story",
            f"every critique cost $0 ({m.provider} provider)" if costs else "not available: nothing was generated"))
    charts.append(_loss_chart(data))
    charts.append(_eval_chart(data))
    return '<div class="charts">' + "".join(charts) + "</div>"


def _loss_chart(data: ReportInput) -> str:
    rows = data.step_metrics
    series = {
        "train loss": [(r.step, r.train_loss) for r in rows if r.train_loss is not None],
        "validation loss": [(r.step, r.valid_loss) for r in rows if r.valid_loss is not None],
        "full validation loss": [(r.step, r.full_valid_loss) for r in rows if r.full_valid_loss is not None],
    }
    if not any(series.values()):
        ft = data.manifest.fine_tune
        why = ("the fine-tune was skipped" if ft.status == "skipped" else f"the fine-tune is {ft.status}"
               if ft.status not in ("succeeded", "failed", "cancelled") else "the job kept no step metrics")
        return svg.unavailable("fine-tune-loss", "Fine-tune loss by step", f"not available: {why}")
    return svg.line_chart("fine-tune-loss", "Fine-tune loss by step", series, x_label="step", y_label="loss",
                          caption=f"{len(rows)} steps, from the job's {escape(data.step_metrics_from)}")


def _eval_chart(data: ReportInput) -> str:
    scores = data.evaluation.scores if data.evaluation else {}
    rates = [(name, value) for name, value in scores.items() if 0 <= value <= 1]
    if not rates:
        return svg.unavailable("evaluation", "Evaluation scores", "not available: the model was not evaluated"
                               if not scores else "not available: no score is a rate between 0 and 1")
    gate = data.evaluation.passed if data.evaluation else None
    others = ", ".join(f"{name} {value:.4g}" for name, value in scores.items() if not 0 <= value <= 1)
    caption = ("gate passed" if gate else "gate failed" if gate is False else "") + (
        f"; also {others}" if others else "")
    return svg.bar_chart("evaluation", "Evaluation scores", rates, x_label="rate", caption=escape(caption))


def _browser(data: ReportInput, max_cards: int) -> str:
    order = {status: i for i, status in enumerate(STATUS_ORDER)}
    every = sorted(data.examples, key=lambda e: (order[e.status], e.story_id))
    # A very large build lists what was thrown out first and as many kept examples as fit; the rest are in
    # the dataset files. The counts above always count every story.
    views, left_out = every[:max_cards], every[max_cards:]
    sampled = (f'<p class="muted">The stories below and the length and cost charts are drawn from the first '
               f"{len(data.examples)} of the build's {data.sample_of} stories; the counts above cover all of them."
               "</p>") if data.sample_of and data.sample_of > len(data.examples) else ""
    present = Counter(e.status for e in views)
    reasons = sorted({r for e in views for r in e.reasons})
    status_options = "".join(f'<option value="{s}">{escape(STATUS_LABELS[s])} ({present[s]})</option>'
                             for s in STATUS_ORDER if present[s])
    reason_options = "".join(f'<option value="{escape(r)}">{escape(r)}</option>' for r in reasons)
    return (f'<div class="controls"><input id="q" type="search" placeholder="search stories and critiques" '
            f'aria-label="search"><select id="verdict" aria-label="verdict"><option value="">every verdict'
            f'</option>{status_options}</select><select id="reason" aria-label="reason"><option value="">'
            f'every reason</option>{reason_options}</select><span class="muted"><span id="shown">{len(views)}'
            f'</span> of {len(views)} shown</span></div>' + sampled + "".join(_example(v) for v in views)
            + (f'<p class="muted">{len(left_out)} more stories ({_status_counts(left_out)}) are not listed '
               "here, to keep this page small; they are in the dataset files.</p>" if left_out else ""))


def _status_counts(views: list[ExampleView]) -> str:
    return ", ".join(f"{n} {STATUS_LABELS[s]}" for s, n in Counter(v.status for v in views).items())


def render_report(data: ReportInput, *, max_cards: int = MAX_CARDS) -> str:
    m = data.manifest
    banner = "" if data.complete else f'<p class="banner">{escape(data.problem or "the build did not finish")}</p>'
    files = "".join(f"<li><code>{escape(name)}</code>: <code>{escape(key)}</code></li>"
                    for name, key in sorted(m.files.items()))
    return (
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
        f'<meta http-equiv="Content-Security-Policy" content="{CSP}">'
        '<meta name="viewport" content="width=device-width,initial-scale=1">'
        f"<title>Build report: {escape(m.build_id)}</title><style>{STYLE}</style></head><body><main>"
        f"<h1>Build report: <code>{escape(m.build_id)}</code></h1>"
        f'<p class="muted">Critiques by {escape(m.provider)} / {escape(m.model)}, prompt '
        f"{escape(m.prompt_version)}. This page loads nothing from the network; the stories stay here.</p>"
        f"{banner}<h2 id=\"summary\">Summary</h2>{_summary(data)}"
        f"<h2 id=\"charts\">Charts</h2>{_charts(data)}"
        f'<h2 id="examples">Stories and critiques</h2>{_browser(data, max_cards)}'
        + (f'<h2 id="files">Files</h2><ul>{files}</ul>' if files else "")
        + f"</main><script>{SCRIPT}</script></body></html>\n"
    )
