"""Evaluate stage: score a critic on the build's held-out stories, compare it with a baseline, apply the gate.

Steps: make (or reuse) the build's evaluation set under builds/{id}/eval/set.json; ask the candidate for a
critique of every item exactly as the critique API would (same prompt layout, stop marker, token limit and
output guard); do the same for the baseline, or read a stored golden record; optionally let a judge compare
the pairs; score, decide, and store the answers and the report under eval/. The Evaluate step of the state
machine publishes only when the decision passed; the manifest keeps the summary either way.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, ValidationError

from coach.adapters.storage import (
    BuildStore,
    dataset_key,
    eval_answers_key,
    eval_report_key,
    eval_set_key,
    golden_key,
)
from coach.api.guard import review
from coach.domain import pricing
from coach.domain.evaluation import (
    CriticScores,
    CritiqueResult,
    EvalItem,
    EvalSet,
    EvaluationReport,
    HeldOutStory,
    JudgeScores,
    PairJudgement,
    aggregate,
    decide,
    make_eval_set,
    reference_answers,
    score,
)
from coach.domain.evaluation.judge import combine, judge_messages, parse_preference
from coach.domain.prompt import (
    COMPACT_PROMPT_VERSION,
    END_MARKER,
    PROMPT_VERSION,
    build_messages,
    extract_story,
)
from coach.domain.records import (
    BuildManifest,
    BuildRequest,
    ErrorInfo,
    EvaluationOptions,
    EvaluationSummary,
    GateConfig,
    Story,
)
from coach.errors import CoachError, ConfigError, InputError, describe_validation_error
from coach.settings import Settings

Layout = Literal["full", "compact"]
OFFLINE_NAMES = ("offline", "coach-offline-critic-v1")


class EvaluationError(CoachError):
    code = "evaluation_error"


class CriticSpec(BaseModel):
    """Which critic answers, and with which prompt layout (a fine-tune is asked as it was trained)."""

    model_config = ConfigDict(frozen=True)

    provider: str
    model: str
    layout: Layout = "compact"

    @property
    def prompt_version(self) -> str:
        return COMPACT_PROMPT_VERSION if self.layout == "compact" else PROMPT_VERSION


ProviderFor = Callable[[CriticSpec], Any]


def parse_model_spec(spec: str, *, default_provider: str = "openai", layout: Layout = "compact") -> CriticSpec:
    """`offline`, `openai:MODEL`, `offline:...` or a bare model id on the default provider."""
    raw = (spec or "").strip()
    if not raw:
        raise InputError("a model id is empty", code="invalid_option")
    if raw.lower() in OFFLINE_NAMES:
        return CriticSpec(provider="offline", model="coach-offline-critic-v1", layout=layout)
    head, sep, rest = raw.partition(":")
    if sep and head.lower() in ("openai", "offline") and rest:
        if head.lower() == "offline":
            return CriticSpec(provider="offline", model="coach-offline-critic-v1", layout=layout)
        return CriticSpec(provider="openai", model=rest, layout=layout)
    return CriticSpec(provider=default_provider, model=raw, layout=layout)


def options_with_defaults(options: EvaluationOptions, settings: Settings) -> EvaluationOptions:
    """The build request's evaluation options; a gate it does not set comes from COACH_EVAL_GATE, if given."""
    if "gate" in options.model_fields_set or not settings.eval_gate:
        return options
    try:
        gate = GateConfig.model_validate_json(settings.eval_gate)
    except ValidationError as exc:
        raise ConfigError(f"COACH_EVAL_GATE is not a valid gate: {describe_validation_error(exc)}",
                          code="invalid_configuration") from None
    return options.model_copy(update={"gate": gate})


# -- the evaluation set ---------------------------------------------------------------------------------


def held_out_stories(store: BuildStore, build_id: str) -> tuple[list[HeldOutStory], str]:
    """The build's validation split as the model sees it, with the teacher's accepted critiques."""
    manifest = store.get_model(dataset_key(build_id, "manifest.json"), BuildManifest)
    key = dataset_key(build_id, "validation.jsonl")
    text = store.get_text(key)
    if manifest is None or text is None:
        raise EvaluationError(f"build {build_id} has no dataset (manifest.json, validation.jsonl): run the build "
                              "to the assemble step first", code="eval_set_missing")
    stories: list[HeldOutStory] = []
    rows = [json.loads(line) for line in text.splitlines() if line.strip()]
    ids = manifest.validation_ids if len(manifest.validation_ids) == len(rows) else []
    for n, row in enumerate(rows):
        messages = row.get("messages") or []
        prompt = [m for m in messages if m.get("role") != "assistant"]
        answer = next((m.get("content") for m in messages if m.get("role") == "assistant"), None)
        title, story = extract_story(prompt, keep_truncation_notice=True)
        stories.append(HeldOutStory(story_id=ids[n] if ids else f"validation-{n + 1:04d}", title=title,
                                    text=story, reference=answer))
    if not stories:
        raise EvaluationError(f"build {build_id} held no stories out of training (validation.jsonl is empty): "
                              "build with validation_fraction above 0 and at least 10 stories",
                              code="no_held_out_stories")
    return stories, key


def load_or_make_eval_set(store: BuildStore, build_id: str, *, max_stories: int) -> tuple[EvalSet, str]:
    """The build's stored evaluation set, made on first use; reused as stored, so scores stay comparable."""
    key = eval_set_key(build_id)
    stored = store.get_text(key)
    if stored is not None:
        return EvalSet.model_validate_json(stored), key
    stories, origin = held_out_stories(store, build_id)
    made = make_eval_set(build_id, stories, origin=origin, max_stories=max_stories)
    store.put_text(key, made.dumps())
    return made, key


def eval_set_from_stories(build_id: str, stories: Sequence[Story], *, max_stories: int | None,
                          origin: str) -> EvalSet:
    """An evaluation set from stories outside a build (no references): `coach eval --stories`."""
    held = []
    for story in stories:
        prompt = build_messages(story.text, story.title, layout="compact",
                                max_story_tokens=Settings.from_env().max_story_tokens)
        title, text = extract_story(prompt.messages, keep_truncation_notice=True)
        held.append(HeldOutStory(story_id=story.story_id, title=title, text=text))
    return make_eval_set(build_id, held, origin=origin, max_stories=max_stories)


# -- asking a critic ------------------------------------------------------------------------------------


def answer_item(provider: Any, spec: CriticSpec, item: EvalItem, *, max_tokens: int,
                max_story_tokens: int) -> CritiqueResult:
    """One critique, judged by the critique API's own output guard."""
    prompt = build_messages(item.text, item.title, layout=spec.layout, max_story_tokens=max_story_tokens)
    _, story_sent = extract_story(prompt.messages)
    base = {"item_id": item.item_id, "provider": spec.provider, "model": spec.model,
            "prompt_version": prompt.prompt_version}
    try:
        completion = provider.complete(prompt.messages, max_tokens=max_tokens, stop=[END_MARKER])
    except CoachError as exc:  # upstream failures (after the provider's own retries) and refusals
        return CritiqueResult(**base, error=ErrorInfo(code=exc.code, message=exc.message))
    outcome = review(completion.text, story=story_sent, finish_reason=completion.finish_reason)
    quote = pricing.quote(completion.model or spec.model, completion.usage)
    return CritiqueResult(
        **base, raw=completion.text, text=outcome.text, accepted=outcome.accepted,
        reasons=list(outcome.reasons), trimmed_loop=outcome.trimmed_loop, finish_reason=completion.finish_reason,
        latency_ms=completion.latency_ms, usage=completion.usage, cost_usd=quote.usd, priced=quote.priced,
    )


def run_critic(provider: Any, spec: CriticSpec, items: Sequence[EvalItem], *, concurrency: int = 4,
               settings: Settings | None = None, previous: Sequence[CritiqueResult] = ()) -> list[CritiqueResult]:
    """Answers in item order. An item already answered (without error, same model and prompt) in `previous`
    is not asked again, so a retried step pays only for what is missing. The offline critic runs in this
    thread (it is CPU-bound); models are asked in parallel."""
    cfg = settings or Settings.from_env()
    kept = {a.item_id: a for a in previous
            if a.error is None and a.model == spec.model and a.prompt_version == spec.prompt_version}

    def one(item: EvalItem) -> CritiqueResult:
        if item.item_id in kept:
            return kept[item.item_id]
        return answer_item(provider, spec, item, max_tokens=cfg.max_feedback_tokens,
                           max_story_tokens=cfg.max_story_tokens)

    if spec.provider == "offline" or concurrency <= 1:
        answers = [one(item) for item in items]
    else:
        with ThreadPoolExecutor(max_workers=concurrency) as pool:
            answers = list(pool.map(one, items))
    failed = [a for a in answers if a.error]
    if answers and len(failed) == len(answers):
        first = failed[0].error
        assert first is not None
        raise EvaluationError(f"every critique request to {spec.model} failed ({len(failed)}); the first: "
                              f"{first.code}: {first.message}", code="evaluation_calls_failed")
    return answers


def _jsonl(answers: Sequence[BaseModel]) -> str:
    return "".join(a.model_dump_json() + "\n" for a in answers)


def read_answers(store: BuildStore, key: str) -> list[CritiqueResult]:
    text = store.get_text(key) or ""
    return [CritiqueResult.model_validate_json(line) for line in text.splitlines() if line.strip()]


# -- the judge ------------------------------------------------------------------------------------------


def run_judge(judge: Any, judge_name: str, against: str, items: Sequence[EvalItem],
              candidate: Sequence[CritiqueResult], other: Sequence[CritiqueResult], *,
              concurrency: int = 4) -> JudgeScores:
    """Each pair of critiques of a story as written, judged in both orders."""
    theirs = {a.item_id: a for a in other if a.error is None}
    pairs = [(i, a, theirs[i.item_id]) for i in items for a in candidate
             if a.item_id == i.item_id and i.flaw is None and a.error is None and i.item_id in theirs]

    def ask(story: str, first: str, second: str) -> Any:
        try:
            reply = judge.complete(judge_messages(story, first, second), max_tokens=5, temperature=0.0)
        except CoachError:
            return None  # an unanswered order counts as no preference
        return parse_preference(reply.text)

    def judge_pair(pair: tuple[EvalItem, CritiqueResult, CritiqueResult]) -> PairJudgement:
        item, mine, their = pair
        first = ask(item.text, mine.text, their.text)
        second = ask(item.text, their.text, mine.text)
        return PairJudgement(item_id=item.item_id, candidate_first=first, candidate_second=second,
                             outcome=combine(first, second), candidate_accepted=mine.accepted,
                             other_accepted=their.accepted)

    with ThreadPoolExecutor(max_workers=max(1, concurrency)) as pool:
        judgements = list(pool.map(judge_pair, pairs))
    return aggregate(judge_name, against, judgements)


# -- the whole evaluation -------------------------------------------------------------------------------


class Baseline(BaseModel):
    label: str
    spec: CriticSpec | None = None  # a critic to ask
    recorded: str | None = None  # or a golden record's model


def resolve_baseline(option: str, *, candidate: CriticSpec, manifest: BuildManifest | None,
                     published: Callable[[], str | None]) -> Baseline | None:
    choice = option.strip()
    if choice in ("", "none"):
        return None
    if choice == "published":
        model = published()
        if not model or model == candidate.model:
            return None  # nothing served yet (or the candidate itself): the floors decide alone
        return Baseline(label="published", spec=parse_model_spec(model))
    if choice == "teacher":
        if manifest is None:
            raise ConfigError("--baseline teacher needs a build (its manifest names the teacher)",
                              code="invalid_option")
        return Baseline(label="teacher", spec=CriticSpec(provider=manifest.provider, model=manifest.model,
                                                         layout="full"))
    if choice.startswith("recorded:"):
        return Baseline(label=choice, recorded=parse_model_spec(choice.split(":", 1)[1]).model)
    return Baseline(label=choice, spec=parse_model_spec(choice))


def _scores(label: str, spec: CriticSpec, items: Sequence[EvalItem], answers: Sequence[CritiqueResult]
            ) -> CriticScores:
    return score(label, items, answers, provider=spec.provider, model=spec.model,
                 prompt_version=spec.prompt_version)


def _stored_eval_set(store: BuildStore, build_id: str, eval_set: EvalSet | None, *,
                     max_stories: int) -> tuple[EvalSet, str]:
    """The build's evaluation set (stored, or made on first use), or the given one stored in its place."""
    if eval_set is None:
        return load_or_make_eval_set(store, build_id, max_stories=max_stories)
    set_key = eval_set_key(build_id)
    store.put_text(set_key, eval_set.dumps())
    return eval_set, set_key


def _judge_spec(options: EvaluationOptions) -> CriticSpec | None:
    judge_spec = parse_model_spec(options.judge) if options.judge else None
    if judge_spec is not None and judge_spec.provider == "offline":
        raise ConfigError("the offline critic writes critiques and cannot judge them: give the judge a model id",
                          code="judge_unsupported")
    return judge_spec


@dataclass(frozen=True)
class _Critics:
    """How one evaluation asks critics (and the judge) about its items, and where it keeps their answers."""

    store: BuildStore
    build_id: str
    items: Sequence[EvalItem]
    provider_for: ProviderFor
    concurrency: int
    settings: Settings
    reuse: bool

    def answers(self, spec: CriticSpec) -> list[CritiqueResult]:
        """The critic's answers to every item, stored under eval/ (reusing stored ones when allowed)."""
        key = eval_answers_key(self.build_id, spec.model)
        answers = run_critic(self.provider_for(spec), spec, self.items, concurrency=self.concurrency,
                             settings=self.settings, previous=read_answers(self.store, key) if self.reuse else ())
        self.store.put_text(key, _jsonl(answers), "application/x-ndjson")
        return answers

    def recorded(self, model: str) -> list[CritiqueResult]:
        """A golden record of the model's answers; an error when none was recorded."""
        answers = read_answers(self.store, golden_key(self.build_id, model))
        if not answers:
            raise EvaluationError(f"no golden record of {model} in build {self.build_id}: record one with "
                                  f"`coach eval --model {model} --record` while the model exists",
                                  code="golden_record_missing")
        return answers


def _baseline_answers(critics: _Critics, baseline: Baseline | None
                      ) -> tuple[list[CritiqueResult], CriticScores | None]:
    """The baseline's answers and scores: read from its golden record, or asked of it; none without one."""
    if baseline is not None and baseline.recorded is not None:
        answers = critics.recorded(baseline.recorded)
        first = answers[0]
        return answers, score(baseline.label, critics.items, answers, provider=first.provider,
                              model=first.model, prompt_version=first.prompt_version)
    if baseline is not None and baseline.spec is not None:
        answers = critics.answers(baseline.spec)
        return answers, _scores(baseline.label, baseline.spec, critics.items, answers)
    return [], None


def _reference_scores(items: Sequence[EvalItem], references: Sequence[CritiqueResult],
                      manifest: BuildManifest | None) -> CriticScores | None:
    if not references:
        return None
    return score("teacher references", items, references, provider="teacher",
                 model=manifest.model if manifest else "reference", prompt_version="")


def _judge_scores(critics: _Critics, judge_spec: CriticSpec | None, answers: Sequence[CritiqueResult], *,
                  baseline_answers: Sequence[CritiqueResult], baseline_scores: CriticScores | None,
                  references: Sequence[CritiqueResult]) -> JudgeScores | None:
    """The judge compares the candidate with the baseline, or with the teacher's references without one."""
    if judge_spec is None:
        return None
    other, against = ((baseline_answers, baseline_scores.model) if baseline_scores is not None
                      else (references, "teacher references"))
    return run_judge(critics.provider_for(judge_spec), judge_spec.model, against, critics.items, answers, other,
                     concurrency=critics.concurrency)


def _record_in_manifest(store: BuildStore, build_id: str, manifest: BuildManifest, manifest_key: str,
                        summary: EvaluationSummary) -> None:
    manifest.evaluation = summary
    store.put_text(manifest_key, manifest.model_dump_json(indent=2))
    from coach.pipeline.report import publish_report  # here: the report module reads this one's records

    publish_report(store, build_id)  # the build's report now shows the scores and the gate's decision


def evaluate(
    build_id: str,
    candidate: CriticSpec,
    *,
    store: BuildStore,
    options: EvaluationOptions,
    provider_for: ProviderFor,
    published: Callable[[], str | None] = lambda: None,
    record: bool = False,
    eval_set: EvalSet | None = None,
    update_manifest: bool = False,
    reuse: bool = True,
    settings: Settings | None = None,
) -> tuple[EvaluationReport, str]:
    """Score the candidate (and the baseline), decide, store answers and report; (report, report key)."""
    cfg = settings or Settings.from_env()
    eval_set, set_key = _stored_eval_set(store, build_id, eval_set, max_stories=options.max_stories)
    items = eval_set.items
    manifest_key = dataset_key(build_id, "manifest.json")
    manifest = store.get_model(manifest_key, BuildManifest)
    judge_spec = _judge_spec(options)  # checked before any critic is paid for
    critics = _Critics(store=store, build_id=build_id, items=items, provider_for=provider_for,
                       concurrency=options.concurrency, settings=cfg, reuse=reuse)

    answers = critics.answers(candidate)
    if record:
        store.put_text(golden_key(build_id, candidate.model), _jsonl(answers), "application/x-ndjson")
    candidate_scores = _scores("candidate", candidate, items, answers)
    baseline = resolve_baseline(options.baseline, candidate=candidate, manifest=manifest, published=published)
    baseline_answers, baseline_scores = _baseline_answers(critics, baseline)
    references = reference_answers(items)
    reference_scores = _reference_scores(items, references, manifest)
    judge_scores = _judge_scores(critics, judge_spec, answers, baseline_answers=baseline_answers,
                                 baseline_scores=baseline_scores, references=references)

    decision = decide(candidate_scores, options.gate, baseline_scores)
    report = EvaluationReport(
        build_id=build_id, eval_set_key=set_key, stories=eval_set.stories, items=len(items),
        candidate=candidate_scores, baseline=baseline_scores, references=reference_scores, judge=judge_scores,
        gate_config=options.gate, gate=decision,
    )
    report_key = eval_report_key(build_id, candidate.model)
    store.put_text(report_key, report.model_dump_json(indent=2))
    if update_manifest and manifest is not None:
        _record_in_manifest(store, build_id, manifest, manifest_key, report.summary(report_key))
    return report, report_key


def evaluate_step(event: dict[str, Any], *, store: BuildStore, settings: Settings,
                  provider_for: Callable[[Any], Any], published: Callable[[], str | None]) -> dict[str, Any]:
    """The Evaluate step: {"request", "job" | "model" [, "provider"]} -> {"passed", "model", "summary", ...}.

    The same for the state machine's handler and the direct local build; they differ only in where the
    build is stored and where the published model is read.
    """
    request = BuildRequest.model_validate(event["request"])
    model = event.get("model") or (event.get("job") or {}).get("fine_tuned_model")
    if not request.evaluation.enabled:
        return {"passed": True, "skipped": True, "model": model, "reasons": [], "report_key": None,
                "summary": "evaluation is disabled for this build (evaluation.enabled is false)", "scores": None}
    if not model:
        raise InputError("nothing to evaluate: the event names no model and no fine-tuned job result",
                         code="nothing_to_evaluate")
    # A Bedrock fine-tune is served by its deployment ARN through Converse; an OpenAI one by its model id.
    backend = (event.get("job") or {}).get("backend")
    candidate = parse_model_spec(model, default_provider=event.get("provider") or backend or "openai")
    options = options_with_defaults(request.evaluation, settings)
    report, key = evaluate(request.build_id, candidate, store=store, options=options, provider_for=provider_for,
                           published=published, update_manifest=True)
    summary = report.summary(key)
    return {"passed": summary.passed, "skipped": False, "model": model, "reasons": summary.reasons,
            "report_key": key, "summary": report.gate.summary, "scores": summary.model_dump(mode="json")}
