"""Process-wide wiring for handlers: settings, AWS clients and providers, created lazily and reused.

Lazy because a client created at import time would bypass test emulators, and reused because a warm
Lambda should not rebuild connections per invocation.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import boto3
from botocore.config import Config

from coach.adapters.budget import BudgetLedger
from coach.adapters.queue import StoryQueue
from coach.adapters.secrets import openai_api_key
from coach.adapters.storage import BuildStore
from coach.domain.records import GenerationTask
from coach.once import built_once
from coach.settings import OPENAI_CONTROL_TIMEOUT_S, Settings

if TYPE_CHECKING:  # Powertools idempotency is imported where it is used: only the generator needs it
    from coach.adapters.idempotency import GenerationGuard


def settings() -> Settings:
    return Settings.from_env()


# Stages read and write S3 from thread pools (the scraper, a shard batch, the assembler): one connection each.
CLIENT_POOL = 32


@built_once
def client(service: str) -> Any:
    return boto3.client(service, config=Config(max_pool_connections=CLIENT_POOL))


def _required(name: str) -> str:
    """A setting the wiring cannot do without; missing, it fails with one line naming the variable."""
    cfg = settings()
    cfg.require(name)
    return str(getattr(cfg, name))


def store() -> BuildStore:
    return BuildStore(_required("bucket"), client("s3"))


def run_tally() -> Any:
    """The per-run count of final records (coach.adapters.run_tally), in the idempotency table."""
    from coach.adapters.run_tally import DynamoRunTally

    cfg = settings()
    cfg.require("idempotency_table")
    return DynamoRunTally(cfg.idempotency_table or "", client("dynamodb"))


def story_queue() -> StoryQueue:
    return StoryQueue(_required("story_queue_url"), client("sqs"))


def ledger() -> BudgetLedger:
    """The budget ledger in the idempotency table, on the process's shared DynamoDB client."""
    return BudgetLedger(_required("idempotency_table"), client("dynamodb"))


def guard() -> GenerationGuard:
    """The generation guard on the idempotency table, made again only when the DynamoDB client is replaced."""
    return _guard(_required("idempotency_table"), client("dynamodb"))


@built_once
def _guard(table: str, dynamodb: Any) -> GenerationGuard:
    from coach.adapters.idempotency import GenerationGuard

    return GenerationGuard(table, dynamodb)


@built_once
def _provider(name: str, model: str | None, pool: int | None) -> Any:
    from coach.adapters.completion import make_provider

    cfg = settings()
    key = openai_api_key(cfg.openai_secret, cfg.openai_api_key) if name == "openai" else None
    return make_provider(name, model, api_key=key, base_url=cfg.openai_base_url, timeout=cfg.completion_timeout,
                         pool=pool or cfg.http_pool)


def provider_for_task(task: GenerationTask) -> Any:
    return _provider(task.provider, task.model, None)


def provider(name: str, model: str | None, *, pool: int | None = None) -> Any:
    """A completion provider by name and model, built once per process (keys read through Parameters).

    `pool`: connections to keep (COACH_HTTP_POOL when not given), one for each call that may be in flight.
    """
    return _provider(name, model, pool)


def openai_client() -> Any:
    from openai import OpenAI

    cfg = settings()
    key = openai_api_key(cfg.openai_secret, cfg.openai_api_key)
    if not key:
        from coach.errors import ConfigError

        raise ConfigError("no OpenAI API key: set OPENAI_API_KEY or COACH_OPENAI_SECRET",
                          code="provider_key_missing")
    return OpenAI(api_key=key, base_url=cfg.openai_base_url, timeout=OPENAI_CONTROL_TIMEOUT_S, max_retries=3)


@built_once
def bedrock() -> Any:
    """The Bedrock control-plane client (customization jobs, deployments)."""
    from coach.adapters.bedrock import bedrock_client

    return bedrock_client("bedrock")


def batch_backend(request: Any, model: str) -> Any:
    """The provider batch API for a build request: OpenAI's Batch API or Bedrock batch inference."""
    from coach.adapters.batch_jobs import BedrockBatches, OpenAIBatches
    from coach.domain.batch import BEDROCK_LIMITS, OPENAI_LIMITS

    cfg = settings()
    if request.provider == "bedrock":
        limits = BEDROCK_LIMITS.model_copy(update={"min_requests": cfg.batch_min_records,
                                                   "max_requests": cfg.batch_max_records})
        return BedrockBatches(bedrock(), store(), model, role_arn=cfg.bedrock_batch_role_arn, limits=limits)
    # The same max-tokens field the synchronous calls send to this server.
    official = "api.openai.com" in (cfg.openai_base_url or "api.openai.com")
    # OpenAI's file limits are fixed; a deployment may still choose smaller batches.
    limits = OPENAI_LIMITS.model_copy(update={"max_requests": min(OPENAI_LIMITS.max_requests,
                                                                  cfg.batch_max_records)})
    return OpenAIBatches(openai_client(), model, limits=limits,
                         token_param="max_completion_tokens" if official else "max_tokens")


def reset() -> None:
    """Forget cached clients and providers (tests switch endpoints between cases)."""
    client.cache_clear()
    _guard.cache_clear()
    _provider.cache_clear()
    bedrock.cache_clear()
