"""Assemble stage: this run's shards -> train/validation JSONL, rejected.jsonl, the manifest and the report.

The shard map (coach.pipeline.shard) has already judged every critique and turned each batch of stories into a
shard: accepted critiques as chat examples (compact layout, exactly what the API sends a fine-tuned model)
with their dedupe keys, rejected ones with their reasons. Here the shards' summaries add up to the manifest's
counts and costs; the same story told twice and near-identical critiques are dropped (listed in rejected.jsonl
with what they duplicate); the rest is split by story id; the files are streamed out and checked line by line
as OpenAI (or Bedrock) would check them. A failed check stops the build here, naming the offending lines,
before anything is published, uploaded or paid for. Memory holds the dedupe keys (about 300 bytes per
accepted story) and per-line token counts, never a file.
"""

from __future__ import annotations

import json
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from pydantic import BaseModel

from coach.adapters.bedrock import bedrock_region
from coach.adapters.storage import BuildStore, dataset_key, scrape_key, shards_prefix
from coach.domain.bedrock_models import BaseModelSpec, UnsupportedBaseModel
from coach.domain.dataset import split_ids
from coach.domain.finetune_data import (
    MIN_EXAMPLES,
    CheckResult,
    check_chat_jsonl,
    describe_cost,
    encoding_for_model,
    estimate_training_cost,
    example_token_limit,
    example_tokens,
    overlapping_examples,
)
from coach.domain.pricing import price_table
from coach.domain.prompt import PROMPT_VERSION
from coach.domain.records import (
    BuildManifest,
    BuildRequest,
    CostEstimate,
    Counts,
    DatasetChecks,
    GenerationRecord,
    StepFailure,
    Story,
    TokenStats,
    Verdict,
)
from coach.domain.tokens import TokenCounter, get_counter
from coach.domain.validation.reasons import REASONS
from coach.errors import CoachError
from coach.pipeline.bedrock_dataset import TRAIN_FILE as BEDROCK_TRAIN
from coach.pipeline.bedrock_dataset import VALIDATION_FILE as BEDROCK_VALIDATION
from coach.pipeline.bedrock_dataset import spec_for
from coach.pipeline.dataset_stream import DatasetOptions, DedupePlan, WrittenDataset, plan_dedupe, write_dataset
from coach.pipeline.map_results import read_map_failures
from coach.pipeline.report import BuildRecords, publish_report, report_files, save_sample
from coach.pipeline.scrape import default_model
from coach.pipeline.shard import ShardSummary, merge_counters, records_key
from coach.settings import Settings

DATASET_FILES = ("train.jsonl", "validation.jsonl", "rejected.jsonl", "manifest.json")
REPORT_SAMPLE = 1_000  # stories the build report draws (every story of a smaller build)
SHARD_READERS = 16  # parallel reads of shard summaries and of the report's sample


class DatasetInvalidError(CoachError):
    """A fine-tuning file fails OpenAI's format checks; the message names the file and its lines."""

    code = "dataset_invalid"


class DatasetTooSmallError(DatasetInvalidError):
    code = "dataset_too_small"


class MixedModelsError(DatasetInvalidError):
    """Critiques of the build come from more than one generation key and the request did not allow it."""

    code = "mixed_models"


class AssembleResult(BaseModel):
    build_id: str
    train_examples: int
    validation_examples: int
    manifest_key: str
    train_key: str
    validation_key: str
    rejected_key: str
    duplicates_removed: int = 0
    billable_training_tokens: int = 0
    fine_tune_estimate_usd: float | None = None
    cost_line: str = ""
    report_key: str = ""


# -- configuration read at call time (tests and the CLI change the environment) ------------------------------

def token_limit_for(base_model: str) -> int:
    """The per-example token limit: COACH_EXAMPLE_TOKEN_LIMIT, else the base model's known limit."""
    return example_token_limit(base_model, Settings.from_env().example_token_limit)


def training_price_for(base_model: str) -> float | None:
    """USD per 1M training tokens: COACH_TRAINING_PRICE_PER_MILLION, else the price table; None if unknown."""
    given = Settings.from_env().training_price_per_million
    if given is not None:
        return float(given)
    found = price_table().lookup(base_model)
    return None if found is None or found[1].training is None else float(found[1].training)


def counter_for(base_model: str) -> TokenCounter:
    return get_counter(encoding_for_model(base_model))


def _jsonl(rows: list[dict[str, Any]]) -> str:
    return "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows)


def check_files(
    train_text: str, validation_text: str, *, base_model: str, min_examples: int = MIN_EXAMPLES,
) -> dict[str, CheckResult]:
    """Format checks of both files; the validation file also must not repeat a training example."""
    counter = counter_for(base_model)
    limit = token_limit_for(base_model)
    results = {"train.jsonl": check_chat_jsonl(train_text, counter, name="train.jsonl", token_limit=limit,
                                               min_examples=min_examples)}
    if validation_text.strip():
        checked = check_chat_jsonl(validation_text, counter, name="validation.jsonl", token_limit=limit,
                                   min_examples=None)
        overlap = overlapping_examples(train_text, validation_text)
        if overlap:
            checked.dataset_errors.append(
                f"validation_overlaps_training ({len(overlap)} validation examples repeat training examples, "
                f"lines {', '.join(map(str, overlap[:10]))})")
        results["validation.jsonl"] = checked
    return results


def raise_if_invalid(results: dict[str, CheckResult]) -> None:
    failed = [r for r in results.values() if not r.passed]
    if failed:
        raise DatasetInvalidError(" | ".join(r.one_line() for r in failed))


def _summaries(store: BuildStore, build_id: str, run_id: str) -> list[ShardSummary]:
    """This run's shard summaries in shard order (the story keys' order); one GET each, on a thread pool."""
    keys = [k for k in store.list_keys(shards_prefix(build_id, run_id)) if k.endswith(".summary.json")]
    with ThreadPoolExecutor(max_workers=SHARD_READERS) as pool:
        found = list(pool.map(lambda k: store.get_model(k, ShardSummary), keys))
    return [s for s in found if s is not None]


def refuse_mixed(request: BuildRequest, summaries: list[ShardSummary]) -> dict[str, int]:
    """Generated critiques per `provider/model`; refuses, unless allowed, critiques the build's own provider,
    model and prompt version did not write (a dataset must not silently mix teachers)."""
    by_model = merge_counters(s.counts.by_model for s in summaries)
    foreign = merge_counters(s.foreign for s in summaries)
    if foreign and not request.allow_mixed_models:
        generated = sum(s.counts.generated for s in summaries)
        raise MixedModelsError(
            f"{sum(foreign.values())} of {generated} critiques were not written by {request.provider}/"
            f"{default_model(request)} (prompt {PROMPT_VERSION}): "
            + ", ".join(f"{k}: {n}" for k, n in sorted(foreign.items()))
            + "; re-run the build to critique them again, or allow a mixed dataset (--allow-mixed-models, "
            "request field allow_mixed_models)")
    return by_model


def _validation_report(summaries: list[ShardSummary]) -> dict[str, Any]:
    """The shards' validation reports as one: counts add up, the first example of each reason is kept."""
    reports = [s.validation for s in summaries if s.validation]
    by_reason = merge_counters(r.get("by_reason", {}) for r in reports)
    order = {reason: i for i, reason in enumerate(REASONS)}
    ordered = sorted(by_reason, key=lambda r: (order.get(r, len(order)), r))
    examples: dict[str, Any] = {}
    for report in reports:
        for reason, example in report.get("examples", {}).items():
            examples.setdefault(reason, example)
    return {"accepted": sum(r.get("accepted", 0) for r in reports),
            "rejected": sum(r.get("rejected", 0) for r in reports),
            "by_reason": {r: by_reason[r] for r in ordered},
            "cleaned": merge_counters(r.get("cleaned", {}) for r in reports),
            "examples": {r: examples[r] for r in ordered if r in examples}}


def assemble(request: BuildRequest, *, store: BuildStore, shards: dict[str, Any] | None = None,
             min_examples: int = MIN_EXAMPLES) -> tuple[AssembleResult, BuildManifest]:
    """Joins this run's shards into the dataset; `shards` is the shard map's output (its ResultWriter files)."""
    build_id = request.build_id
    options = request.fine_tune
    scrape = store.get_json(scrape_key(build_id)) or {}
    summaries = _summaries(store, build_id, str(scrape.get("run_id", "")))
    by_model = refuse_mixed(request, summaries)
    shard_keys = [s.shard for s in summaries]
    failures = read_map_failures(store, shards)
    plan = plan_dedupe(store, shard_keys, threshold=Settings.from_env().dedupe_similarity)
    train_ids, validation_ids = split_ids(plan.kept, request.validation_fraction, options.seed, min_train=min_examples)
    counter = counter_for(options.base_model)
    keys = {name: dataset_key(build_id, name) for name in DATASET_FILES}
    written = write_dataset(store, build_id, shard_keys, plan, set(validation_ids), keys["rejected.jsonl"],
                            DatasetOptions(counter=counter, token_limit=token_limit_for(options.base_model),
                                           min_examples=min_examples, bedrock=_bedrock_spec(request),
                                           legacy=options.legacy_export),
                            sample_limit=REPORT_SAMPLE)
    checks = written.checks
    train_check = checks.get(BEDROCK_TRAIN, checks["train.jsonl"])
    price = training_price_for(options.base_model)
    cost = estimate_training_cost(train_check.example_tokens, epochs=_epochs(request),
                                  token_limit=train_check.token_limit, price_per_million=price)
    if not options.epochs:
        cost = cost.model_copy(update={"epochs_rule": "default"})
    manifest = _manifest(request, scrape, summaries, plan, written, by_model, counter, cost, price)
    manifest.shard_failures = failures if failures.batches else None
    loaded = _report_sample(store, build_id, shard_keys, written, counter, total=manifest.counts.stories)
    try:
        _refuse_unusable(summaries, plan, manifest, min_examples)
        if any(not result.passed for result in checks.values()):
            store.put_text(dataset_key(build_id, "checks.json"), json.dumps(
                {n: r.model_dump(exclude={"examples"}) for n, r in checks.items()}, indent=2))
            raise_if_invalid(checks)
    except DatasetInvalidError as exc:
        # The manifest still counts what was found, and says why there is no dataset; so does the report,
        # which shows what was rejected. The staged files are dropped: nothing unchecked is published.
        _drop(store, written.staged)
        manifest.failure = StepFailure(step="assemble", code=exc.code, message=exc.message)
        manifest.files = {"rejected.jsonl": keys["rejected.jsonl"],
                          "report.html": report_files(build_id)["report.html"]}
        publish_report(store, build_id, manifest=manifest, problem=exc.message, loaded=loaded)
        store.put_text(keys["manifest.json"], manifest.model_dump_json(indent=2))
        raise
    keys.update(_publish(store, build_id, written))
    manifest.files = keys
    manifest.files.update(report_files(build_id))
    report = publish_report(store, build_id, manifest=manifest, loaded=loaded)
    store.put_text(keys["manifest.json"], manifest.model_dump_json(indent=2))  # last: without `failure`, it means done
    result = AssembleResult(
        build_id=build_id, train_examples=len(train_ids), validation_examples=len(validation_ids),
        manifest_key=keys["manifest.json"], train_key=keys["train.jsonl"],
        validation_key=keys["validation.jsonl"], rejected_key=keys["rejected.jsonl"],
        duplicates_removed=len(plan.removed), billable_training_tokens=cost.billable_tokens,
        fine_tune_estimate_usd=cost.usd, cost_line=cost_line(manifest), report_key=report.report_key,
    )
    return result, manifest


def _manifest(request: BuildRequest, scrape: dict[str, Any], summaries: list[ShardSummary], plan: DedupePlan,
              written: WrittenDataset, by_model: dict[str, int], counter: TokenCounter, cost: Any,
              price: float | None) -> BuildManifest:
    def total(name: str) -> Any:
        return sum(getattr(s, name) for s in summaries)

    def counted(name: str) -> int:
        return sum(getattr(s.counts, name) for s in summaries)

    counts = Counts(
        stories=counted("stories"), decode_errors=int(scrape.get("decode_errors", 0)),
        skipped=dict(sorted(scrape.get("skipped", {}).items())), generated=counted("generated"),
        generated_now=counted("generated_now"), reused=int(scrape.get("reused", 0)), failed=counted("failed"),
        skipped_budget=counted("skipped_budget"), accepted=counted("accepted"), rejected=counted("rejected"),
        rejected_by_reason=merge_counters(s.validation.get("by_reason", {}) for s in summaries),
        duplicates_removed=len(plan.removed), duplicate_stories=plan.count("duplicate_story"),
        near_duplicate_critiques=plan.count("near_duplicate_critique"),
        train_examples=written.train_examples, validation_examples=written.validation_examples,
        by_model=dict(sorted(by_model.items())),
    )
    usage_estimated = any(s.usage_estimated for s in summaries)
    checks = written.checks
    dataset_checks = {name: result.summary() for name, result in checks.items()}
    for name, rows in written.legacy_rows.items():
        dataset_checks[name] = DatasetChecks(examples=rows, passed=not written.legacy_skipped[name],
                                             token_method=counter.method, estimated=counter.estimated,
                                             errors=written.legacy_skipped[name])
    return BuildManifest(
        build_id=request.build_id, provider=request.provider, model=default_model(request),
        prompt_version=PROMPT_VERSION, source=request.source, counts=counts,
        tokens=TokenStats(
            prompt_tokens=total("prompt_tokens"), completion_tokens=total("completion_tokens"),
            dataset_tokens=sum(sum(checks[n].example_tokens) for n in ("train.jsonl", "validation.jsonl")
                               if n in checks),
            estimated=counter.estimated or usage_estimated, usage_estimated=usage_estimated, method=counter.method,
        ),
        budget_usd=request.budget_usd,
        cost=CostEstimate(
            generation_usd=round(total("generation_usd"), 6),
            unpriced_models=sorted({m for s in summaries for m in s.unpriced_models}),
            generation_batch_usd=round(total("generation_batch_usd"), 6),
            generation_sync_equivalent_usd=round(total("generation_sync_equivalent_usd"), 6),
            fine_tune_usd=cost.usd or 0.0, fine_tune_epochs=cost.epochs or None,
            billable_training_tokens=cost.billable_tokens, epochs_rule=cost.epochs_rule,
            example_token_limit=cost.token_limit, training_price_per_million=price,
        ),
        validation_report=_validation_report(summaries),
        dataset_checks=dataset_checks,
        validation_ids=written.validation_order,
    )


def _refuse_unusable(summaries: list[ShardSummary], plan: DedupePlan, manifest: BuildManifest,
                     min_examples: int) -> None:
    usable = len(plan.kept)
    if usable >= min_examples:
        return
    # Stories without a critique explain a small dataset better than the rejections do.
    causes = Counter(merge_counters(s.missing_causes for s in summaries))
    missing = (f"; {sum(causes.values())} stories have no critique ("
               + ", ".join(f"{code}: {n}" for code, n in causes.most_common(3)) + ")") if causes else ""
    raise DatasetTooSmallError(
        f"only {usable} usable examples ({manifest.counts.accepted} accepted, {manifest.counts.duplicates_removed} "
        f"duplicates removed{missing}); a fine-tuning dataset needs at least {min_examples}: "
        "add stories or inspect rejected.jsonl" + (" and the failed stories' causes" if causes else "")
    )


def _publish(store: BuildStore, build_id: str, written: WrittenDataset) -> dict[str, str]:
    """Copies the checked files from staging to the dataset prefix; {file name: key}."""
    published = {}
    for name, staged in written.staged.items():
        if name == BEDROCK_VALIDATION and not written.validation_examples:
            continue  # Bedrock takes no empty validation file
        published[name] = dataset_key(build_id, name)
        store.copy(staged, published[name])
    _drop(store, written.staged)
    return published


def _drop(store: BuildStore, staged: dict[str, str]) -> None:
    for key in staged.values():
        store.delete(key)


def _report_sample(store: BuildStore, build_id: str, shard_keys: list[str], written: WrittenDataset,
                   counter: TokenCounter, *, total: int) -> BuildRecords:
    """The report's stories: the first REPORT_SAMPLE of the build, whole, from the first shards' record files."""
    went = {row["id"]: row for row in written.sample}
    waiting = set(went)  # the sample is the first stories in shard order: the first shards hold them all
    loaded = BuildRecords(stories={}, feedback={}, verdicts={}, splits={}, duplicates={}, total=total)
    for shard in shard_keys:
        if not waiting:
            break
        for line in store.iter_lines(records_key(shard)):
            row = json.loads(line) if line.strip() else {}
            story_id = row.get("id")
            if story_id not in waiting:
                continue
            waiting.discard(story_id)
            if row["story"]:
                loaded.stories[story_id] = Story.model_validate(row["story"])
            if row["record"]:
                loaded.feedback[story_id] = GenerationRecord.model_validate(row["record"])
            if row["verdict"]:
                loaded.verdicts[story_id] = Verdict.model_validate(row["verdict"])
            shard_row = went[story_id]
            if shard_row["went"] in ("train", "validation"):
                loaded.splits[story_id] = (shard_row["went"],  # type: ignore[index]
                                           example_tokens(shard_row["example"]["messages"], counter)[0])
            elif shard_row["went"] == "duplicate":
                loaded.duplicates[story_id] = {"id": story_id, "verdict": "duplicate"}  # type: ignore[index]
    save_sample(store, build_id, loaded)
    return loaded


def _bedrock_spec(request: BuildRequest) -> BaseModelSpec | None:
    """The base model's limits when the build fine-tunes on Bedrock (its files are then written too)."""
    options = request.fine_tune
    if options.backend != "bedrock":
        return None
    try:
        return spec_for(options.base_model, bedrock_region())
    except UnsupportedBaseModel:
        if options.enabled:
            raise DatasetInvalidError(f"fine_tune.base_model {options.base_model!r} cannot be fine-tuned "
                                      "on Bedrock here") from None
        return None  # fine-tuning is off: the chat files are the dataset


def _epochs(request: BuildRequest) -> int | None:
    """The epochs the estimate assumes: as given, else Bedrock's default for the base model, else OpenAI's rule."""
    options = request.fine_tune
    if options.epochs or options.backend != "bedrock":
        return options.epochs
    try:
        return spec_for(options.base_model, bedrock_region()).default_epochs
    except UnsupportedBaseModel:
        return None
def cost_line(manifest: BuildManifest) -> str:
    """The console line for `coach build`: billable tokens, epochs and the estimated training cost."""
    cost = manifest.cost
    return describe_cost(
        billable_tokens=cost.billable_training_tokens, epochs=cost.fine_tune_epochs, epochs_rule=cost.epochs_rule,
        usd=cost.fine_tune_usd if cost.training_price_per_million is not None else None,
        price_per_million=cost.training_price_per_million, estimated=manifest.tokens.estimated,
    )
