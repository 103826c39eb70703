"""Runtime configuration from environment variables (the same names in Lambda and locally)."""

from __future__ import annotations

import os

from pydantic import BaseModel

from coach.errors import ConfigError


class Settings(BaseModel):
    bucket: str | None = None
    story_queue_url: str | None = None
    story_dlq_url: str | None = None
    idempotency_table: str | None = None
    model_parameter: str | None = None
    openai_secret: str | None = None
    reddit_secret: str | None = None
    openai_base_url: str | None = None
    bedrock_role_arn: str | None = None  # the service role a Bedrock customization job assumes
    bedrock_batch_role_arn: str | None = None  # the service role a Bedrock batch inference job assumes
    # Bedrock's per-job record quotas (adjustable per account): a smaller batch goes synchronously.
    batch_min_records: int = 100
    batch_max_records: int = 50_000
    # A deployment's defaults for build requests that do not say (see coach.domain.build_defaults).
    teacher_provider: str | None = None
    teacher_model: str | None = None
    fine_tune_backend: str | None = None
    fine_tune_base_model: str | None = None
    provider: str = "offline"
    model: str | None = None
    max_receive_count: int = 3
    completion_timeout: float = 60.0
    max_story_tokens: int = 1_500
    max_feedback_tokens: int = 800
    # Connections a provider keeps open: at least the number of critiques in flight at once.
    http_pool: int = 10
    eval_gate: str | None = None  # JSON: this deployment's default promotion gate (a build request may set its own)
    # A fine-tuning file larger than this goes to OpenAI's Uploads API in parts of this size (OpenAI's maximum).
    upload_part_bytes: int = 64 * 1024 * 1024

    @classmethod
    def from_env(cls) -> Settings:
        env = os.environ.get
        return cls(
            bucket=env("COACH_BUCKET"),
            story_queue_url=env("COACH_STORY_QUEUE_URL"),
            story_dlq_url=env("COACH_STORY_DLQ_URL"),
            idempotency_table=env("COACH_IDEMPOTENCY_TABLE"),
            model_parameter=env("COACH_MODEL_PARAMETER"),
            openai_secret=env("COACH_OPENAI_SECRET"),
            reddit_secret=env("COACH_REDDIT_SECRET"),
            openai_base_url=env("OPENAI_BASE_URL"),
            bedrock_role_arn=env("COACH_BEDROCK_ROLE_ARN"),
            bedrock_batch_role_arn=env("COACH_BEDROCK_BATCH_ROLE_ARN"),
            batch_min_records=int(env("COACH_BATCH_MIN_RECORDS", "100")),
            batch_max_records=int(env("COACH_BATCH_MAX_RECORDS", "50000")),
            teacher_provider=env("COACH_TEACHER_PROVIDER"),
            teacher_model=env("COACH_TEACHER_MODEL"),
            fine_tune_backend=env("COACH_FINE_TUNE_BACKEND"),
            fine_tune_base_model=env("COACH_FINE_TUNE_BASE_MODEL"),
            provider=env("COACH_PROVIDER", "offline"),
            model=env("COACH_MODEL"),
            max_receive_count=int(env("COACH_MAX_RECEIVE_COUNT", "3")),
            completion_timeout=float(env("COACH_COMPLETION_TIMEOUT", "60")),
            max_story_tokens=int(env("COACH_MAX_STORY_TOKENS", "1500")),
            max_feedback_tokens=int(env("COACH_MAX_FEEDBACK_TOKENS", "800")),
            http_pool=int(env("COACH_HTTP_POOL", "10")),
            eval_gate=env("COACH_EVAL_GATE") or None,
            upload_part_bytes=int(env("COACH_UPLOAD_PART_BYTES", str(64 * 1024 * 1024))),
        )

    def require(self, *names: str) -> None:
        missing = [n for n in names if not getattr(self, n)]
        if missing:
            env_names = ", ".join("COACH_" + n.upper() for n in missing)
            raise ConfigError(f"missing configuration: set {env_names}", code="missing_configuration")
