"""What a local build is asked to do and what it hands back, shared by both runtimes and the CLI."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel

from coach.domain.records import BuildManifest, BuildRequest

OUTPUT_FILES = ("train.jsonl", "validation.jsonl", "rejected.jsonl")
# Written only when the build produced them (legacy export, a followed fine-tune job).
OPTIONAL_FILES = ("train.bedrock.jsonl", "validation.bedrock.jsonl", "train_legacy.jsonl",
                  "validation_legacy.jsonl", "checks.json", "fine-tune/events.jsonl",
                  "fine-tune/metrics.json", "fine-tune/step_metrics.csv")

# Messages per generator invocation on the emulated path, as the template's SQS event source sends them.
SQS_BATCH_SIZE = 5


class LocalBuildOptions(BaseModel):
    request: BuildRequest
    out: Path
    state_dir: Path | None = None
    endpoint_url: str | None = None
    concurrency: int = 4
    batch_size: int = SQS_BATCH_SIZE
    generation_timeout_s: float = 3_600
    wait_for_fine_tune: bool = False
    fine_tune_poll_s: float = 30.0
    batch_poll_s: float = 30.0
    verbose: bool = False
    emulate_aws: bool = False

    @property
    def state(self) -> Path:
        return self.state_dir or self.out / ".state"

    @property
    def http_pool(self) -> int:
        """Connections the provider's client keeps: one for every call the workers may have in flight."""
        return max(10, self.concurrency)


class LocalBuildResult(BaseModel):
    manifest: BuildManifest
    out: Path
    elapsed_s: float
    generation_complete: bool
