"""The records that flow through a dataset build, as pydantic models.

They are the contract between stages: what the scraper writes to S3 and SQS, what the generator
writes as feedback, what the validator decides, and what the assembler reports. Stored as JSON.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

BUILD_ID_PATTERN = r"^[a-z0-9][a-z0-9-]{0,62}$"
STORY_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$"

ProviderName = Literal["offline", "openai", "bedrock"]
SourceKind = Literal["samples", "directory", "jsonl", "reddit", "s3"]
GenerationStatus = Literal["generated", "failed", "skipped_budget"]
# How critiques are requested: one synchronous call per story through the queue, or provider batches
# (OpenAI's Batch API, Bedrock batch inference) at the batch price.
GenerationMode = Literal["sync", "batch"]
FineTuneState = Literal[
    "skipped", "not_started", "validating_files", "queued", "running", "deploying", "succeeded", "failed",
    "cancelled",
]


def utc_now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def slugify(text: str, *, max_len: int = 48) -> str:
    """A story-id friendly slug: lowercase ascii letters, digits and dashes."""
    slug = re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")
    return slug[:max_len].strip("-") or "story"


class _Record(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Provenance(_Record):
    """Where a story came from. Usernames are never stored."""

    path: str | None = None
    post_id: str | None = None
    prompt: str | None = None  # the r/WritingPrompts post title
    comment_id: str | None = None
    permalink: str | None = None
    score: int | None = None
    created_utc: float | None = None


class Story(_Record):
    story_id: Annotated[str, Field(pattern=STORY_ID_PATTERN)]
    title: str = ""
    text: Annotated[str, Field(min_length=1)]
    source: SourceKind
    provenance: Provenance = Field(default_factory=Provenance)

    @field_validator("text")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("story text is empty")
        return value


class Usage(_Record):
    prompt_tokens: int = 0
    completion_tokens: int = 0
    total_tokens: int = 0
    # True when counted with a character heuristic instead of the provider's or tiktoken's count.
    estimated: bool = False

    def __add__(self, other: Usage) -> Usage:
        return Usage(
            prompt_tokens=self.prompt_tokens + other.prompt_tokens,
            completion_tokens=self.completion_tokens + other.completion_tokens,
            total_tokens=self.total_tokens + other.total_tokens,
            estimated=self.estimated or other.estimated,
        )


class ErrorInfo(_Record):
    code: str
    message: str


class GenerationTask(_Record):
    """The body of one SQS message: generate feedback for one story of one build."""

    build_id: Annotated[str, Field(pattern=BUILD_ID_PATTERN)]
    story_id: Annotated[str, Field(pattern=STORY_ID_PATTERN)]
    prompt_version: str
    provider: ProviderName
    model: str
    budget_usd: float | None = None
    # Which run of the build enqueued it: a re-run (resume) gets a new run id.
    run_id: str = ""
    # What earlier runs of the build had already spent when this run was enqueued: the run may spend
    # budget_usd minus this.
    budget_spent_usd: Annotated[float, Field(ge=0)] = 0.0


class GenerationRecord(_Record):
    """One generation attempt's outcome, stored at builds/{build_id}/feedback/{story_id}.json."""

    build_id: str
    story_id: str
    prompt_version: str
    provider: ProviderName
    model: str
    status: GenerationStatus
    feedback: str | None = None
    finish_reason: str | None = None
    truncated: bool = False
    usage: Usage = Field(default_factory=Usage)
    cost_usd: float = 0.0
    error: ErrorInfo | None = None
    run_id: str = ""
    attempts: int = 1
    latency_ms: int = 0
    created_at: str = Field(default_factory=utc_now)
    # The story's message used its last delivery on this failure and goes to the dead-letter queue.
    dead_lettered: bool = False
    # The model the build asked for (part of the generation key); `model` is the one that answered.
    requested_model: str | None = None

    def written_for(self, provider: str, model: str, prompt_version: str) -> bool:
        """True for a generated critique of exactly this generation key: another provider, model or prompt
        version is another critique, never a reusable one."""
        if self.status != "generated" or self.provider != provider or self.prompt_version != prompt_version:
            return False
        if self.requested_model is not None:
            return self.requested_model == model
        # Records written before `requested_model` name the model that answered: the one asked for, or its
        # dated snapshot ("gpt-4o-mini" answered by "gpt-4o-mini-2024-07-18").
        return self.model == model or re.fullmatch(re.escape(model) + r"-\d{4}-\d{2}-\d{2}", self.model) is not None

    @property
    def writer(self) -> str:
        """Who wrote the critique, as `provider/model`."""
        return f"{self.provider}/{self.model}"
    # Written from a provider batch (cost_usd is then at the batch price), and which batch it came from.
    generation: GenerationMode = "sync"
    batch_id: str | None = None
    # What the same usage costs through synchronous calls; None for a synchronous record (cost_usd).
    sync_cost_usd: float | None = None

    @model_validator(mode="after")
    def _consistent(self) -> GenerationRecord:
        # A failure must never look like data: only a generated record carries feedback text.
        if self.status == "generated" and not (self.feedback and self.feedback.strip()):
            raise ValueError("a generated record needs feedback text")
        if self.status != "generated" and self.feedback is not None:
            raise ValueError(f"a {self.status} record must not carry feedback text")
        if self.status != "generated" and self.error is None:
            raise ValueError(f"a {self.status} record needs an error with its reason")
        return self


class Evidence(_Record):
    """Why a rule fired: the rule, its reason code and the offending span of the feedback."""

    rule: str
    reason: str
    span: str = ""
    start: int | None = None
    end: int | None = None
    detail: str = ""


class Verdict(_Record):
    story_id: str
    accepted: bool
    reasons: list[str] = Field(default_factory=list)
    feedback: str = ""  # cleaned text
    cleaned: list[str] = Field(default_factory=list)  # codes of cleaners that changed the text
    evidence: list[Evidence] = Field(default_factory=list)
    basis: str = ""  # digest of what the verdict depends on (coach.pipeline.validate.verdict_basis)

    @property
    def verdict(self) -> Literal["accepted", "rejected"]:
        return "accepted" if self.accepted else "rejected"


class SourceSpec(_Record):
    """Where a build takes its stories from."""

    kind: SourceKind = "samples"
    path: str | None = None  # directory, JSONL file, or s3://bucket/prefix
    subreddit: str = "WritingPrompts"
    listing: Literal["top", "hot", "new"] = "top"
    time_filter: Literal["hour", "day", "week", "month", "year", "all"] = "month"
    post_limit: Annotated[int, Field(ge=1, le=1000)] = 25
    min_chars: Annotated[int, Field(ge=1)] = 300
    max_chars: Annotated[int, Field(ge=1)] = 20_000

    @model_validator(mode="after")
    def _path_when_needed(self) -> SourceSpec:
        if self.kind in ("directory", "jsonl", "s3") and not self.path:
            raise ValueError(f"source kind '{self.kind}' needs a path (--source PATH)")
        if self.min_chars > self.max_chars:
            raise ValueError("min_chars (--min-chars) is larger than max_chars (--max-chars)")
        return self


FineTuneBackend = Literal["bedrock", "openai"]
DEFAULT_BEDROCK_BASE_MODEL = "amazon.nova-lite-v1:0:300k"


class FineTuneOptions(_Record):
    enabled: bool = False
    # Amazon Bedrock by default: OpenAI's self-serve fine-tuning is closed to new organisations.
    backend: FineTuneBackend = "bedrock"
    # Empty: the backend's default (Bedrock: Nova Lite). OpenAI has no default: every model it can
    # fine-tune shuts down on 2027-01-14, so the base model must be named.
    base_model: str = ""
    suffix: Annotated[str, Field(max_length=64)] = "writing-coach"
    epochs: Annotated[int, Field(ge=1, le=50)] | None = None
    seed: int = 42
    # Also write {"prompt", "completion"} files for older completion-style trainers.
    legacy_export: bool = False

    @model_validator(mode="after")
    def _default_base_model(self) -> FineTuneOptions:
        if not self.base_model and self.backend == "bedrock":
            self.base_model = DEFAULT_BEDROCK_BASE_MODEL
        return self


class GateConfig(_Record):
    """The promotion gate: floors, a loop-rate ceiling and how much worse than the baseline a model may be."""

    min_pass_rate: Annotated[float, Field(ge=0, le=1)] = 0.8
    min_grounding: Annotated[float, Field(ge=0, le=1)] = 0.9
    max_loop_rate: Annotated[float, Field(ge=0, le=1)] = 0.1
    min_flaw_lift: Annotated[float, Field(ge=-1, le=1)] = 0.2
    margin: Annotated[float, Field(ge=0, le=1)] = 0.05


class EvaluationOptions(_Record):
    """How a fine-tuned model is evaluated before it is published (the Evaluate step)."""

    enabled: bool = True
    # published (the model the API serves now), teacher (the build's own critic, full prompt), none,
    # recorded:<model> (stored answers of a model), or a model id on the completion API.
    baseline: Annotated[str, Field(min_length=1, max_length=200)] = "published"
    judge: Annotated[str, Field(min_length=1, max_length=200)] | None = None  # a model id; None: no judge
    # Each story is asked six times (as written, five planted copies) of the model and of the baseline:
    # 40 stories at 8 at once fit the Evaluate function's 15 minutes with seconds-long completions.
    max_stories: Annotated[int, Field(ge=1, le=200)] = 40
    concurrency: Annotated[int, Field(ge=1, le=16)] = 8
    gate: GateConfig = Field(default_factory=GateConfig)


class EvaluationSummary(_Record):
    """The scores a person needs to decide about a model; kept in the manifest and beside a published model."""

    model: str
    passed: bool
    reasons: list[str] = Field(default_factory=list)
    pass_rate: float
    grounding: float | None = None
    loop_rate: float = 0.0
    flaw_lift: float | None = None
    false_alarms: float | None = None
    critiques: int = 0
    baseline: str | None = None
    report_key: str | None = None
    evaluated_at: str = Field(default_factory=utc_now)
    forced: bool = False  # published by a person over the gate's refusal (coach models promote --force)
class BatchOptions(_Record):
    """How batch generation handles requests that failed or expired inside a batch."""

    # New batches for a batch's failed or expired requests before giving up on batching them.
    max_resubmits: Annotated[int, Field(ge=0, le=5)] = 2
    # Then: "sync" sends them through the synchronous queue, "fail" records them as failed.
    fallback: Literal["sync", "fail"] = "sync"


class BuildRequest(_Record):
    """The input of one dataset build (a Step Functions execution, or `coach build`)."""

    build_id: Annotated[str, Field(pattern=BUILD_ID_PATTERN)]
    source: SourceSpec = Field(default_factory=SourceSpec)
    limit: Annotated[int, Field(ge=1, le=100_000)] | None = None
    provider: ProviderName = "offline"
    model: str | None = None
    budget_usd: Annotated[float, Field(gt=0)] | None = None
    generation: GenerationMode = "sync"
    batch: BatchOptions = Field(default_factory=BatchOptions)
    validation_fraction: Annotated[float, Field(ge=0.0, le=0.5)] = 0.1
    fine_tune: FineTuneOptions = Field(default_factory=FineTuneOptions)
    evaluation: EvaluationOptions = Field(default_factory=EvaluationOptions)
    # Assemble a dataset whose critiques come from more than one provider/model (refused otherwise).
    allow_mixed_models: bool = False
    # Leave out stories an earlier build already took (counted as skipped: seen_in_earlier_build).
    skip_seen: bool = False

    @model_validator(mode="after")
    def _batch_needs_a_provider(self) -> BuildRequest:
        if self.generation == "batch" and self.provider == "offline":
            raise ValueError("generation 'batch' needs the openai or bedrock provider (the offline critic "
                             "has no batch API)")
        return self


class Counts(_Record):
    stories: int = 0
    decode_errors: int = 0
    # Stories the source offered and the build left out, by reason (too_short, too_long, duplicate, ...).
    skipped: dict[str, int] = Field(default_factory=dict)
    generated: int = 0  # feedback records with text (new + reused)
    generated_now: int = 0
    reused: int = 0
    failed: int = 0
    skipped_budget: int = 0
    accepted: int = 0
    rejected: int = 0
    rejected_by_reason: dict[str, int] = Field(default_factory=dict)
    duplicates_removed: int = 0
    duplicate_stories: int = 0
    near_duplicate_critiques: int = 0
    train_examples: int = 0
    validation_examples: int = 0
    # Generated critiques per `provider/model` that wrote them; more than one key means a mixed build.
    by_model: dict[str, int] = Field(default_factory=dict)


class TokenStats(_Record):
    prompt_tokens: int = 0
    completion_tokens: int = 0
    dataset_tokens: int = 0
    estimated: bool = True  # any figure here is an estimate
    usage_estimated: bool = True  # prompt/completion tokens: estimated (offline critic) or the API's own count
    method: str = "chars/4"  # how dataset tokens were counted


class Distribution(_Record):
    min: float = 0
    median: float = 0
    p90: float = 0
    max: float = 0
    mean: float = 0


class DatasetChecks(_Record):
    """Format checks and token distributions of one fine-tuning file, as run before upload."""

    examples: int = 0
    passed: bool = True
    token_method: str = "chars/4"
    estimated: bool = True
    token_limit: int = 0
    over_token_limit: int = 0
    missing_system: int = 0
    missing_user: int = 0
    errors: list[str] = Field(default_factory=list)
    warnings: list[str] = Field(default_factory=list)
    messages: Distribution = Field(default_factory=Distribution)
    total_tokens: Distribution = Field(default_factory=Distribution)
    assistant_tokens: Distribution = Field(default_factory=Distribution)


class CostEstimate(_Record):
    generation_usd: float = 0.0
    # Models that wrote critiques but have no price: generation_usd leaves them out (cost unknown).
    unpriced_models: list[str] = Field(default_factory=list)
    generation_usd: float = 0.0  # what the build's feedback records cost, at the price each was paid
    generation_batch_usd: float = 0.0  # the part paid at batch prices
    generation_sync_equivalent_usd: float = 0.0  # the same usage through synchronous calls
    fine_tune_usd: float = 0.0
    fine_tune_epochs: int | None = None
    billable_training_tokens: int = 0
    epochs_rule: Literal["given", "default"] | None = None
    example_token_limit: int | None = None
    training_price_per_million: float | None = None  # None: the base model's price is unknown


class FineTuneStatus(_Record):
    status: FineTuneState = "not_started"
    reason: str = ""
    backend: str | None = None
    job_id: str | None = None
    model: str | None = None
    fine_tuned_model: str | None = None  # what the API serves: an OpenAI model id or a deployment ARN
    custom_model_arn: str | None = None  # Bedrock: the customization job's output model
    deployment_arn: str | None = None  # Bedrock: the on-demand deployment serving it
    deployment_status: str | None = None
    output_uri: str | None = None  # Bedrock: where the job wrote its metrics
    warnings: list[str] = Field(default_factory=list)
    trained_tokens: int | None = None
    cost_usd: float | None = None
    error: ErrorInfo | None = None
    training_file: str | None = None
    validation_file: str | None = None
    events_key: str | None = None
    metrics: dict[str, float] = Field(default_factory=dict)
    published_at: str | None = None


class StepFailure(_Record):
    """The step that stopped a build, with its error code and message."""

    step: str
    code: str
    message: str


class ShardFailures(_Record):
    """Batches of the shard map that failed after their retries (under its tolerance): their stories are missing
    from the dataset, and why."""

    batches: int = 0
    stories: int = 0
    causes: dict[str, int] = Field(default_factory=dict)  # error name -> failed batches
    results_key: str = ""  # the map run's result manifest, which lists each failed batch with its cause

    def describe(self) -> str:
        """'12 stories in 1 batch (States.Timeout 1)': what a summary says was left out, and why."""
        causes = ", ".join(f"{cause} {n}" for cause, n in sorted(self.causes.items()))
        batches = f"{self.batches} batch" + ("" if self.batches == 1 else "es")
        return f"{self.stories} stories in {batches}" + (f" ({causes})" if causes else "")


class BuildManifest(_Record):
    build_id: str
    provider: ProviderName
    model: str
    prompt_version: str
    created_at: str = Field(default_factory=utc_now)
    source: SourceSpec = Field(default_factory=SourceSpec)
    budget_usd: float | None = None  # the build's budget for critiques, when it had one
    counts: Counts = Field(default_factory=Counts)
    tokens: TokenStats = Field(default_factory=TokenStats)
    cost: CostEstimate = Field(default_factory=CostEstimate)
    fine_tune: FineTuneStatus = Field(default_factory=FineTuneStatus)
    validation_report: dict[str, Any] = Field(default_factory=dict)
    dataset_checks: dict[str, DatasetChecks] = Field(default_factory=dict)  # per file name
    files: dict[str, str] = Field(default_factory=dict)
    validation_ids: list[str] = Field(default_factory=list)  # in validation.jsonl's order: the held-out stories
    evaluation: EvaluationSummary | None = None
    # Set when a step failed: the manifest then describes an unfinished build, not a dataset to train on.
    failure: StepFailure | None = None
    shard_failures: ShardFailures | None = None  # None when every batch of the shard map succeeded
