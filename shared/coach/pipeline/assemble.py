"""Assemble stage: accepted critiques -> train/validation JSONL, rejected.jsonl and the manifest.

Order of work: accepted critiques become chat examples (compact layout, exactly what the API sends a
fine-tuned model); the same story told twice and near-identical critiques are dropped (listed in
rejected.jsonl with what they duplicate); the rest is split by story id; both files are checked as
OpenAI would check them, token distributions and the training cost go into the manifest. A failed check
stops the build here, naming the offending lines, before anything is uploaded or paid for.
"""

from __future__ import annotations

import json
import os
from collections import Counter
from typing import Any

from pydantic import BaseModel

from coach.adapters.bedrock import bedrock_region
from coach.adapters.storage import BuildStore, dataset_key, scrape_key
from coach.domain.bedrock_models import UnsupportedBaseModel
from coach.domain.dataset import chat_example, split_ids
from coach.domain.finetune_data import (
    DEFAULT_SIMILARITY,
    MIN_EXAMPLES,
    CheckResult,
    DedupeItem,
    check_chat_jsonl,
    describe_cost,
    encoding_for_model,
    estimate_training_cost,
    example_token_limit,
    find_duplicates,
    overlapping_examples,
)
from coach.domain.legacy_export import export_legacy
from coach.domain.prompt import PROMPT_VERSION
from coach.domain.records import (
    BuildManifest,
    BuildRequest,
    CostEstimate,
    Counts,
    DatasetChecks,
    GenerationRecord,
    StepFailure,
    TokenStats,
    Verdict,
)
from coach.domain.tokens import TokenCounter, get_counter
from coach.domain.validation import build_report
from coach.errors import CoachError, ConfigError
from coach.pipeline.bedrock_dataset import TRAIN_FILE, check_bedrock_files, spec_for, write_bedrock_files
from coach.pipeline.report import BuildRecords, publish_report, report_files
from coach.pipeline.scrape import default_model
from coach.settings import Settings

PRICE_ENV = "COACH_TRAINING_PRICE_PER_MILLION"
TOKEN_LIMIT_ENV = "COACH_EXAMPLE_TOKEN_LIMIT"
SIMILARITY_ENV = "COACH_DEDUPE_SIMILARITY"
DATASET_FILES = ("train.jsonl", "validation.jsonl", "rejected.jsonl", "manifest.json")
LEGACY_FILES = {"train.jsonl": "train_legacy.jsonl", "validation.jsonl": "validation_legacy.jsonl"}


class DatasetInvalidError(CoachError):
    """A fine-tuning file fails OpenAI's format checks; the message names the file and its lines."""

    code = "dataset_invalid"


class DatasetTooSmallError(DatasetInvalidError):
    code = "dataset_too_small"


class MixedModelsError(DatasetInvalidError):
    """Critiques of the build come from more than one generation key and the request did not allow it."""

    code = "mixed_models"


def check_one_writer(request: BuildRequest, generated: list[GenerationRecord]) -> Counter[str]:
    """Generated critiques per `provider/model`; refuses, unless allowed, critiques the build's own provider,
    model and prompt version did not write (a dataset must not silently mix teachers)."""
    model = default_model(request)
    by_model = Counter(r.writer for r in generated)
    foreign = Counter(f"{r.writer} (prompt {r.prompt_version})" for r in generated
                      if not r.written_for(request.provider, model, PROMPT_VERSION))
    if foreign and not request.allow_mixed_models:
        raise MixedModelsError(
            f"{sum(foreign.values())} of {len(generated)} critiques were not written by {request.provider}/{model} "
            f"(prompt {PROMPT_VERSION}): " + ", ".join(f"{k}: {n}" for k, n in sorted(foreign.items()))
            + "; re-run the build to critique them again, or allow a mixed dataset (--allow-mixed-models, "
            "request field allow_mixed_models)")
    return by_model


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

def _env_number(name: str, kind: type[int] | type[float]) -> Any:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return None
    try:
        value = kind(raw)
    except ValueError:
        raise ConfigError(f"{name} must be a number, not {raw!r}", code="bad_setting") from None
    if value <= 0:
        raise ConfigError(f"{name} must be positive", code="bad_setting")
    return value


def token_limit_for(base_model: str) -> int:
    """The per-example token limit: COACH_EXAMPLE_TOKEN_LIMIT, else the base model's known limit."""
    return example_token_limit(base_model, _env_number(TOKEN_LIMIT_ENV, int))


def training_price_for(base_model: str) -> float | None:
    """USD per 1M training tokens: COACH_TRAINING_PRICE_PER_MILLION, else the price table; None if unknown."""
    given = _env_number(PRICE_ENV, float)
    if given is not None:
        return float(given)
    try:
        from coach.domain.pricing import price_table
    except ImportError:  # pricing is optional here: without it the estimate says "price unknown"
        return None
    found = price_table().lookup(base_model)
    return None if found is None or found[1].training is None else float(found[1].training)


def counter_for(base_model: str) -> TokenCounter:
    return get_counter(encoding_for_model(base_model))


def _similarity() -> float:
    value = _env_number(SIMILARITY_ENV, float)
    if value is not None and value > 1:
        raise ConfigError(f"{SIMILARITY_ENV} must be in (0, 1]", code="bad_setting")
    return DEFAULT_SIMILARITY if value is None else float(value)


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


def assemble(request: BuildRequest, *, store: BuildStore, min_examples: int = MIN_EXAMPLES) -> tuple[
        AssembleResult, BuildManifest]:
    build_id = request.build_id
    options = request.fine_tune
    max_story_tokens = Settings.from_env().max_story_tokens
    scrape = store.get_json(scrape_key(build_id)) or {}
    stories = {s.story_id: s for s in store.stories(build_id)}
    records = {r.story_id: r for r in store.feedback(build_id)}
    generated = [r for r in records.values() if r.status == "generated"]
    by_model = check_one_writer(request, generated)
    verdicts: dict[str, Verdict] = {v.story_id: v for v in store.verdicts(build_id)
                                    if records.get(v.story_id) and records[v.story_id].status == "generated"}

    examples: dict[str, dict] = {}
    rejected_rows: list[dict[str, Any]] = []
    reasons: Counter[str] = Counter()
    for story_id, verdict in sorted(verdicts.items()):
        story = stories.get(story_id)
        if verdict.accepted and story is not None:
            examples[story_id] = chat_example(story, verdict.feedback, max_story_tokens=max_story_tokens)
        else:
            reasons.update(verdict.reasons)
            rejected_rows.append({
                "id": story_id, "verdict": "rejected", "reasons": verdict.reasons,
                "evidence": [e.model_dump() for e in verdict.evidence],
                "feedback": records[story_id].feedback,
            })

    accepted, rejected = len(examples), len(rejected_rows)
    dedupe = find_duplicates(
        [DedupeItem(story_id=sid, story=stories[sid].text, critique=verdicts[sid].feedback) for sid in examples],
        threshold=_similarity(),
    )
    for duplicate in dedupe.removed:
        rejected_rows.append({
            "id": duplicate.story_id, "verdict": "duplicate", "reasons": [duplicate.reason],
            "duplicate_of": duplicate.duplicate_of, "similarity": duplicate.similarity,
            "feedback": verdicts[duplicate.story_id].feedback,
        })
        del examples[duplicate.story_id]

    train_ids, validation_ids = split_ids(list(examples), request.validation_fraction, options.seed,
                                          min_train=min_examples)
    train_rows = [examples[s] for s in train_ids]
    validation_rows = [examples[s] for s in validation_ids]
    train_text, validation_text = _jsonl(train_rows), _jsonl(validation_rows)
    checks = check_files(train_text, validation_text, base_model=options.base_model, min_examples=min_examples)
    train_check = checks["train.jsonl"]
    counter = counter_for(options.base_model)
    all_tokens = sum(sum(c.example_tokens) for c in checks.values())
    bedrock = _bedrock_files(request, train_text, validation_text, counter)
    if bedrock:
        checks.update({name: result for name, (_, result) in bedrock.items()})
        train_check = bedrock[TRAIN_FILE][1]
    price = training_price_for(options.base_model)
    cost = estimate_training_cost(train_check.example_tokens, epochs=_epochs(request),
                                  token_limit=train_check.token_limit, price_per_million=price)
    if not options.epochs:
        cost = cost.model_copy(update={"epochs_rule": "default"})

    counts = Counts(
        stories=len(stories),
        decode_errors=int(scrape.get("decode_errors", 0)),
        skipped=dict(sorted(scrape.get("skipped", {}).items())),
        generated=len(generated),
        generated_now=sum(1 for r in generated if r.run_id == scrape.get("run_id")),
        reused=int(scrape.get("reused", 0)),
        failed=sum(1 for r in records.values() if r.status == "failed"),
        skipped_budget=sum(1 for r in records.values() if r.status == "skipped_budget"),
        accepted=accepted,
        rejected=rejected,
        rejected_by_reason=dict(sorted(reasons.items())),
        duplicates_removed=len(dedupe.removed),
        duplicate_stories=dedupe.count("duplicate_story"),
        near_duplicate_critiques=dedupe.count("near_duplicate_critique"),
        train_examples=len(train_ids),
        validation_examples=len(validation_ids),
        by_model=dict(sorted(by_model.items())),
    )
    manifest = BuildManifest(
        build_id=build_id, provider=request.provider, model=default_model(request),
        prompt_version=PROMPT_VERSION, source=request.source, counts=counts,
        tokens=TokenStats(
            prompt_tokens=sum(r.usage.prompt_tokens for r in generated),
            completion_tokens=sum(r.usage.completion_tokens for r in generated),
            dataset_tokens=all_tokens,
            estimated=counter.estimated or any(r.usage.estimated for r in generated),
            usage_estimated=any(r.usage.estimated for r in generated),
            method=counter.method,
        ),
        budget_usd=request.budget_usd,
        cost=CostEstimate(
            generation_usd=round(sum(r.cost_usd for r in records.values()), 6),
            unpriced_models=unpriced_models(generated),
            generation_batch_usd=round(sum(r.cost_usd for r in records.values() if r.generation == "batch"), 6),
            generation_sync_equivalent_usd=round(sum(
                r.cost_usd if r.sync_cost_usd is None else r.sync_cost_usd for r in records.values()), 6),
            fine_tune_usd=cost.usd or 0.0,
            fine_tune_epochs=cost.epochs or None,
            billable_training_tokens=cost.billable_tokens,
            epochs_rule=cost.epochs_rule,
            example_token_limit=cost.token_limit,
            training_price_per_million=price,
        ),
        validation_report=build_report(verdicts.values()),
        dataset_checks={name: result.summary() for name, result in checks.items()},
        validation_ids=validation_ids,
    )
    keys = {name: dataset_key(build_id, name) for name in DATASET_FILES}
    store.put_text(keys["rejected.jsonl"], _jsonl(rejected_rows), "application/x-ndjson")
    try:
        if len(examples) < min_examples:
            # Stories without a critique explain a small dataset better than the rejections do.
            causes = Counter(r.error.code for r in records.values() if r.status != "generated" and r.error)
            missing = (f"; {sum(causes.values())} stories have no critique ("
                       + ", ".join(f"{code}: {n}" for code, n in causes.most_common(3)) + ")") if causes else ""
            raise DatasetTooSmallError(
                f"only {len(examples)} usable examples ({counts.accepted} accepted, {counts.duplicates_removed} "
                f"duplicates removed{missing}); a fine-tuning dataset needs at least {min_examples}: "
                "add stories or inspect rejected.jsonl" + (" and the failed stories' causes" if causes else "")
            )
        if any(not result.passed for result in checks.values()):
            store.put_text(dataset_key(build_id, "checks.json"), json.dumps(
                {n: r.model_dump(exclude={"examples"}) for n, r in checks.items()}, indent=2))
            raise_if_invalid(checks)
    except DatasetInvalidError as exc:
        # The manifest still counts what was found, and says why there is no dataset; so does the report,
        # which shows what was rejected.
        manifest.failure = StepFailure(step="assemble", code=exc.code, message=exc.message)
        manifest.files = {"rejected.jsonl": keys["rejected.jsonl"],
                          "report.html": report_files(build_id)["report.html"]}
        publish_report(store, build_id, manifest=manifest, problem=exc.message,
                       loaded=BuildRecords(stories, records, verdicts))
        store.put_text(keys["manifest.json"], manifest.model_dump_json(indent=2))
        raise

    store.put_text(keys["train.jsonl"], train_text, "application/x-ndjson")
    store.put_text(keys["validation.jsonl"], validation_text, "application/x-ndjson")
    if bedrock:
        keys.update(write_bedrock_files(store, build_id, bedrock))
    if options.legacy_export:
        for name, rows in (("train.jsonl", train_rows), ("validation.jsonl", validation_rows)):
            legacy = export_legacy(rows)
            legacy_name = LEGACY_FILES[name]
            keys[legacy_name] = dataset_key(build_id, legacy_name)
            store.put_text(keys[legacy_name], legacy.jsonl(), "application/x-ndjson")
            manifest.dataset_checks[legacy_name] = DatasetChecks(
                examples=len(legacy.rows), passed=not legacy.skipped, token_method=counter.method,
                estimated=counter.estimated, errors=legacy.skipped)
    manifest.files = keys
    manifest.files.update(report_files(build_id))
    report = publish_report(store, build_id, manifest=manifest, loaded=BuildRecords(stories, records, verdicts))
    store.put_text(keys["manifest.json"], manifest.model_dump_json(indent=2))  # last: without `failure`, it means done
    result = AssembleResult(
        build_id=build_id, train_examples=len(train_ids), validation_examples=len(validation_ids),
        manifest_key=keys["manifest.json"], train_key=keys["train.jsonl"],
        validation_key=keys["validation.jsonl"], rejected_key=keys["rejected.jsonl"],
        duplicates_removed=len(dedupe.removed), billable_training_tokens=cost.billable_tokens,
        fine_tune_estimate_usd=cost.usd, cost_line=cost_line(manifest), report_key=report.report_key,
    )
    return result, manifest


def _bedrock_files(request: BuildRequest, train_text: str, validation_text: str,
                   counter: TokenCounter) -> dict[str, tuple[str, CheckResult]]:
    """The conversation-format copies and their checks, when the build fine-tunes on Bedrock."""
    options = request.fine_tune
    if options.backend != "bedrock":
        return {}
    try:
        spec = spec_for(options.base_model, bedrock_region())
    except UnsupportedBaseModel:
        if options.enabled:
            raise DatasetInvalidError(f"fine_tune.base_model {options.base_model!r} cannot be fine-tuned "
                                      "on Bedrock here") from None
        return {}  # fine-tuning is off: the chat files are the dataset
    return check_bedrock_files(train_text, validation_text, spec, counter)


def _epochs(request: BuildRequest) -> int | None:
    """The epochs the estimate assumes: as given, else Bedrock's default for the base model, else OpenAI's rule."""
    options = request.fine_tune
    if options.epochs or options.backend != "bedrock":
        return options.epochs
    try:
        return spec_for(options.base_model, bedrock_region()).default_epochs
    except UnsupportedBaseModel:
        return None
def unpriced_models(generated: list[GenerationRecord]) -> list[str]:
    """Models of paid critiques the price table cannot price (the offline critic costs nothing)."""
    from coach.domain.pricing import price_table

    prices = price_table()
    return sorted({r.model for r in generated if r.provider != "offline" and not prices.is_priced(r.model)})


def cost_line(manifest: BuildManifest) -> str:
    """The console line for `coach build`: billable tokens, epochs and the estimated training cost."""
    cost = manifest.cost
    return describe_cost(
        billable_tokens=cost.billable_training_tokens, epochs=cost.fine_tune_epochs, epochs_rule=cost.epochs_rule,
        usd=cost.fine_tune_usd if cost.training_price_per_million is not None else None,
        price_per_million=cost.training_price_per_million, estimated=manifest.tokens.estimated,
    )
