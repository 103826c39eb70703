"""The dataset card: a README.md beside the dataset files, in the Hugging Face dataset-card layout.

A YAML header (licence, language, task, size category, the data files of each split) and the sections a
reader of a shared dataset looks for: sources and provenance, the prompt, what the validator removed,
splits, limitations, licence, citation. Story licences follow their source.
"""

from __future__ import annotations

import json
from collections.abc import Callable

from coach.domain.prompt import COMPACT_PROMPT_VERSION, SYSTEM_COMPACT
from coach.domain.records import BuildManifest, Counts, SourceSpec
from coach.domain.report.inputs import ReportInput
from coach.domain.validation import DEFAULT_CONFIG
from coach.domain.validation.reasons import MEANINGS, REASONS

LICENCES = {
    # Reddit posts belong to their authors; the project cannot relicense them.
    "reddit": ("other", "Stories: copyright of their Reddit authors, posted under Reddit's User Agreement; "
                        "each story's provenance (post, comment, permalink) is kept in the build's story "
                        "records. Critiques: generated for this dataset."),
    "samples": ("mit", "Stories and critiques: original works of the Creative Writing Coach project, under "
                       "its MIT licence."),
}
OWN_SOURCE = ("other", "Stories: whoever supplied them holds their rights; state the licence here before "
                       "sharing. Critiques: generated for this dataset.")


def size_category(n: int) -> str:
    """The Hugging Face size bucket for n examples."""
    for bound, label in ((1_000, "n<1K"), (10_000, "1K<n<10K"), (100_000, "10K<n<100K"),
                         (1_000_000, "100K<n<1M")):
        if n < bound:
            return label
    return "n>1M"


def _yaml_str(value: str) -> str:
    return json.dumps(value, ensure_ascii=False)  # a JSON string is a valid YAML scalar


def _licence(m: BuildManifest) -> tuple[str, str]:
    """(Hub licence id, the licence text the card states); story licences follow their source."""
    return LICENCES.get(m.source.kind, OWN_SOURCE)


def _header(data: ReportInput) -> list[str]:
    """The YAML header the Hugging Face Hub reads: licence, language, task, size, each split's data file."""
    m = data.manifest
    c = m.counts
    licence, licence_text = _licence(m)
    return [
        "---",
        f"pretty_name: {_yaml_str(f'Creative Writing Coach critiques ({m.build_id})')}",
        f"license: {licence}",
        *([f"license_name: {_yaml_str('source-dependent')}",
           f"license_details: {_yaml_str(licence_text)}"] if licence == "other" else []),
        "language:", "- en",
        "task_categories:", "- text-generation",
        "tags:", "- creative-writing", "- critique", "- feedback", "- fine-tuning", "- chat",
        "size_categories:", f"- {size_category(c.train_examples + c.validation_examples)}",
        "configs:", "- config_name: default", "  data_files:",
        "  - split: train", "    path: train.jsonl",
        *(["  - split: validation", "    path: validation.jsonl"] if c.validation_examples else []),
        "---",
    ]


def _section(heading: str, *lines: str) -> list[str]:
    return [f"## {heading}", "", *lines, ""]


def _title(data: ReportInput) -> list[str]:
    return [
        f"# Creative Writing Coach critiques: `{data.manifest.build_id}`",
        "",
        "Editor-style critiques of short stories, written to the writer in the second person as one to three "
        "paragraphs (what works, what to improve and how, what works), for fine-tuning a chat model to give "
        "craft feedback on fiction.",
        "",
    ]


def _structure(data: ReportInput) -> list[str]:
    c = data.manifest.counts
    return _section(
        "Dataset structure",
        "Each line of `train.jsonl` and `validation.jsonl` is one chat example, "
        "`{\"messages\": [system, user, assistant]}`: the system and user messages are exactly what the "
        "Creative Writing Coach API sends a fine-tuned model (the story inside the user message), the "
        "assistant message is the critique. `rejected.jsonl` lists every generated critique left out, with "
        "its reasons and the offending spans. `manifest.json` holds the counts, token statistics and costs.",
        "",
        "| split | examples |", "|---|---|",
        f"| train | {c.train_examples} |", f"| validation | {c.validation_examples} |",
        "",
        "The split is deterministic by story id (the same story always lands in the same split), so no "
        "story appears in both.",
    )


def _source_description(source: SourceSpec) -> str:
    if source.kind == "reddit":
        return f"{source.kind} r/{source.subreddit} ({source.listing}, {source.time_filter})"
    return source.kind + (f" ({source.path})" if source.path else "")


def _sources(data: ReportInput) -> list[str]:
    m = data.manifest
    c = m.counts
    return _section(
        "Sources and provenance",
        f"- Source: {_source_description(m.source)}. {c.stories} stories were collected.",
        "- Every story keeps its provenance in the build's records (for Reddit: post id, comment id, "
        "permalink, score, time; never the username).",
        f"- Critiques: provider `{m.provider}`, model `{m.model}`, generation prompt `{m.prompt_version}`; "
        f"training prompt layout `{COMPACT_PROMPT_VERSION}`. Build `{m.build_id}`, created {m.created_at}.",
        f"- {c.generated} critiques were generated ({c.generated_now} in the last run, {c.reused} reused), "
        f"{c.failed} stories failed and {c.skipped_budget} were skipped by the budget.",
        *([f"- Left out because their validation batches failed: {m.shard_failures.describe()}."]
          if m.shard_failures else []),
    )


def _prompt(data: ReportInput) -> list[str]:
    return _section(
        "Prompt",
        f"Training examples use the compact layout `{COMPACT_PROMPT_VERSION}`; its system message is:",
        "",
        f"> {SYSTEM_COMPACT}",
        "",
        f"The critiques themselves were generated with the full editor prompt `{data.manifest.prompt_version}`.",
    )


def _removed_table(counts: Counts) -> list[str]:
    """What the validator rejected, most frequent reason first."""
    removed = sorted(counts.rejected_by_reason.items(), key=lambda kv: -kv[1])
    if not removed:
        return ["No critique was rejected.", ""]
    rows = [f"| `{reason}` | {n} | {MEANINGS.get(reason, '')} |" for reason, n in removed]
    return ["| reason | removed | meaning |", "|---|---|---|", *rows, ""]


def _validation(data: ReportInput) -> list[str]:
    c = data.manifest.counts
    return _section(
        "Validation: what was removed",
        f"Every generated critique was cleaned and judged by rules (length {DEFAULT_CONFIG.min_words} to "
        f"{DEFAULT_CONFIG.max_words} words; the rules below). {c.accepted} were accepted and {c.rejected} "
        f"rejected; {c.duplicates_removed} accepted examples were then removed as duplicates "
        f"({c.duplicate_stories} repeated stories, {c.near_duplicate_critiques} near-identical critiques).",
        "",
        *_removed_table(c),
        "The rules:",
        "",
        *(f"- `{reason}`: {MEANINGS.get(reason, '')}" for reason in REASONS),
    )


def _limitations(data: ReportInput) -> list[str]:
    m = data.manifest
    tokens = f"estimates ({m.tokens.method})" if m.tokens.estimated else m.tokens.method
    limits = [
        f"- The critiques were written by `{m.model}` ({m.provider}); a model learns its habits as well as its "
        "insight. They were filtered by rules, not read by a person.",
        "- Stories are English short fiction of one source; genres, lengths and skill levels follow that "
        "source, not the population of writers.",
        f"- Stories longer than the prompt's budget were truncated in the training prompt (with a notice); "
        f"examples over the base model's limit ({data.token_limit or 'unknown'} tokens) are cut in training.",
        f"- Token counts are {tokens}.",
    ]
    # The gravest warnings come first.
    if m.provider == "offline":
        limits.insert(0, "- **These critiques come from the offline rule-based critic**, which exists to try the "
                         "pipeline. Do not fine-tune a model on them expecting an editor's judgement.")
    if not data.complete:
        limits.insert(0, f"- **This build did not finish**: {data.problem}")
    return _section("Known limitations", *limits)


def _licence_section(data: ReportInput) -> list[str]:
    return _section("Licence", _licence(data.manifest)[1])


def _citation(data: ReportInput) -> list[str]:
    m = data.manifest
    return _section(
        "How to cite",
        "```bibtex",
        f"@misc{{creative_writing_coach_{m.build_id.replace('-', '_')},",
        f"  title  = {{Creative Writing Coach critiques ({m.build_id})}},",
        "  author = {Creative Writing Coach contributors},",
        f"  year   = {{{m.created_at[:4]}}},",
        f"  note   = {{Build {m.build_id}, prompt {m.prompt_version}, critiques by {m.model}}}",
        "}",
        "```",
    )


# The card's body, in the order a reader of a shared dataset looks for it.
_BODY: tuple[Callable[[ReportInput], list[str]], ...] = (
    _title, _structure, _sources, _prompt, _validation, _limitations, _licence_section, _citation,
)


def render_card(data: ReportInput) -> str:
    body = [line for part in _BODY for line in part(data)]
    return "\n".join([*_header(data), "", *body])
