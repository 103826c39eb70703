"""The build's steps for a direct local build: the pipeline functions, called in this process.

Each step takes the event its handler in functions/*/app.py takes, returns what it returns and fails with
the same step error, so the build flow (and `coach.local.batch_loop`) drives either runtime alike. The
adapters are local: a folder for the bucket, an in-process queue, file-backed idempotency and budget, and
the registry file for the published model.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from coach import runtime
from coach.adapters.model_registry import ModelRegistry
from coach.adapters.run_tally import MemoryRunTally
from coach.domain.records import BuildRequest
from coach.errors import CoachError, InputError, UpstreamError
from coach.local.dir_store import DirectoryStore
from coach.local.file_ledgers import FileBudgetLedger, FileGenerationGuard
from coach.local.memory_queue import LocalStoryQueue
from coach.local.parameter_file import MODEL_PARAMETER, ParameterFile
from coach.step_errors import (
    BatchFailed,
    BatchProviderBusy,
    DatasetInvalid,
    DatasetTooSmall,
    NoStories,
    SourceFailed,
)

LOCAL_FOLDER = "local"  # beside builds/ and index/ in the state folder: the guard's and the ledger's files


@dataclass
class DirectAdapters:
    store: DirectoryStore
    queue: LocalStoryQueue
    guard: FileGenerationGuard
    ledger: FileBudgetLedger
    parameters: ParameterFile
    # The run lives and dies with the command, so its tally needs no file: a re-run is a new run.
    tally: MemoryRunTally = field(default_factory=MemoryRunTally)

    @classmethod
    def in_folder(cls, state: Path, *, parameters: ParameterFile | None = None) -> DirectAdapters:
        cfg = runtime.settings()
        return cls(store=DirectoryStore(state),
                   queue=LocalStoryQueue(max_receive_count=cfg.max_receive_count, visibility_timeout_s=60.0),
                   guard=FileGenerationGuard(state / LOCAL_FOLDER / "idempotency"),
                   ledger=FileBudgetLedger(state / LOCAL_FOLDER / "budget"),
                   parameters=parameters or ParameterFile())


class DirectSteps:
    def __init__(self, adapters: DirectAdapters) -> None:
        self.a = adapters

    def __call__(self, name: str, event: dict[str, Any]) -> Any:
        step = getattr(self, f"_{name}", None)
        if step is None:
            raise InputError(f"no step {name!r}", code="unknown_step")
        return step(event)

    def _checkinput(self, event: dict[str, Any]) -> dict[str, Any]:
        from coach.adapters.bedrock import bedrock_region
        from coach.pipeline.checkinput import check_request

        return check_request(event, runtime.settings(), bedrock_region()).model_dump(mode="json")

    def _scraper(self, event: dict[str, Any]) -> dict[str, Any]:
        from coach.pipeline.scrape import NoStoriesError, scrape

        request = BuildRequest.model_validate(event.get("request", event))
        kwargs: dict[str, Any] = {}
        if request.source.kind == "reddit":
            from coach.adapters.reddit import make_reddit
            from coach.adapters.secrets import reddit_credentials

            kwargs["reddit"] = make_reddit(reddit_credentials(runtime.settings().reddit_secret))
        try:
            result = scrape(request, store=self.a.store, queue=self.a.queue, **kwargs)  # type: ignore[arg-type]
        except NoStoriesError as exc:
            raise NoStories(exc.message) from None
        except CoachError as exc:
            raise SourceFailed(f"{exc.code}: {exc.message}") from None
        return result.model_dump(mode="json", exclude={"enqueued_ids"})

    def _progress(self, event: dict[str, Any]) -> dict[str, Any]:
        from coach.pipeline.progress import check_progress

        # This process watched the queue drain: no second look is needed to confirm it.
        return check_progress(event["build_id"], store=self.a.store, tally=self.a.tally, run_id=event.get("run_id"),
                              enqueued=event.get("enqueued"), dlq_depth=len(self.a.queue.dead_letters()),
                              queue_depth=self.a.queue.depth(), drain_confirm_s=0).model_dump()

    def _shard(self, event: dict[str, Any]) -> dict[str, Any]:
        from coach.local.shard_map import in_process

        return in_process(self.a.store, max_story_tokens=runtime.settings().max_story_tokens)(event)

    def _assembler(self, event: dict[str, Any]) -> dict[str, Any]:
        from coach.pipeline.assemble import DatasetInvalidError, DatasetTooSmallError, MixedModelsError, assemble

        request = BuildRequest.model_validate(event["request"])
        try:
            result, _manifest = assemble(request, store=self.a.store, shards=event.get("shards"))
        except DatasetTooSmallError as exc:
            raise DatasetTooSmall(exc.message) from None
        except MixedModelsError as exc:
            raise DatasetInvalid(str(exc)) from None
        except DatasetInvalidError as exc:
            raise DatasetInvalid(exc.message) from None
        return result.model_dump()

    def _finetune(self, event: dict[str, Any]) -> dict[str, Any]:
        from coach.pipeline import finetune

        action = event.get("action")
        if action == "start":
            request = BuildRequest.model_validate(event["request"])
            if request.fine_tune.backend == "bedrock":
                from coach.pipeline import finetune_bedrock

                if finetune_bedrock.skip_reason(request) is None:  # the build flow routes these to the emulator
                    raise InputError("Bedrock fine-tuning reads its dataset from S3: run it with --emulate-aws",
                                     code="bedrock_fine_tune_needs_cloud")
                # Not enabled: recorded as skipped for the backend it names, as the handler does.
                return finetune_bedrock.start(request, store=self.a.store, bedrock=None, bucket="", role_arn=None,
                                              region="").model_dump()
            return finetune.start(request, store=self.a.store, client_factory=runtime.openai_client).model_dump()
        if action == "publish":
            job = finetune.JobStatus.model_validate(event["job"])
            return finetune.publish(event["build_id"], job, ssm_client=self.a.parameters,
                                    parameter=MODEL_PARAMETER, store=self.a.store)
        raise InputError(f"unknown action {action!r}: a direct local build uses start and publish",
                         code="unknown_action")

    def _evaluate(self, event: dict[str, Any]) -> dict[str, Any]:
        from coach.pipeline import evaluate

        def published() -> str | None:
            current = ModelRegistry(self.a.parameters, MODEL_PARAMETER).current()
            return current.model if current else None

        return evaluate.evaluate_step(event, store=self.a.store, settings=runtime.settings(),
                                      provider_for=lambda spec: runtime.provider(spec.provider, spec.model),
                                      published=published)

    def _batch(self, event: dict[str, Any]) -> dict[str, Any]:
        from coach.pipeline import batch

        action, build_id = str(event.get("action", "")), str(event.get("build_id", ""))
        steps = {"submit": batch.submit, "poll": batch.poll, "collect": batch.collect, "cancel": batch.cancel}
        if action not in steps or not build_id:
            raise BatchFailed(f"bad_batch_event: expected an action of {sorted(steps)} and a build_id")
        cfg = runtime.settings()
        try:
            ctx = batch.BatchContext(
                build_id, store=self.a.store, backend_for=runtime.batch_backend,
                queue=self.a.queue if action in ("collect", "submit") else None,  # type: ignore[arg-type]
                ledger=None, max_story_tokens=cfg.max_story_tokens, max_feedback_tokens=cfg.max_feedback_tokens,
                tally=self.a.tally)
            if ctx.request.budget_usd is not None and action in ("submit", "collect"):
                ctx.ledger = self.a.ledger
            return steps[action](ctx).model_dump()
        except UpstreamError as exc:
            if exc.retryable:
                raise BatchProviderBusy(f"{exc.code}: {exc.message}") from None
            raise BatchFailed(f"{exc.code}: {exc.message}") from None
        except CoachError as exc:
            raise BatchFailed(f"{exc.code}: {exc.message}") from None
