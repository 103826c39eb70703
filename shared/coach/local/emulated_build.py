"""`coach build --emulate-aws`: the build's flow through the real Lambda handlers against an AWS emulator.

The handlers in functions/ run in this process (coach.local.lambda_runtime) against a moto server on a free
loopback port (or the emulator given by --endpoint-url); an SQS poller sends them batch events with partial
batch failures and the redrive policy. The emulator forgets everything when the command ends, so the state
folder keeps a mirror of the build's objects: restored into the fresh emulator at the start, saved after
every generator batch (before its messages are deleted), every couple of seconds and after every stage.
It is chosen by itself when the build needs S3 for a provider to read (Bedrock fine-tuning or batch
inference) or an s3:// source.
"""

from __future__ import annotations

import os
import sys
import time
from typing import Any, TextIO

import boto3

from coach import runtime
from coach.adapters.bedrock import bedrock_region
from coach.adapters.bedrock import use_session as use_bedrock_session
from coach.adapters.storage import BuildStore, feedback_key
from coach.domain.records import BuildRequest
from coach.errors import ConfigError
from coach.local import mirror
from coach.local.build_flow import build_environment, run_flow, run_step
from coach.local.build_options import LocalBuildOptions, LocalBuildResult
from coach.local.dir_store import DirectoryStore
from coach.local.emulator import start_local_stack
from coach.local.lambda_runtime import invoke
from coach.local.poller import SqsPoller

# A crash loses at most this much of the mirror's copy (the generator's own records are saved per batch).
SAVE_EVERY_S = 2.0


class EmulatedRuntime:
    def __init__(self, options: LocalBuildOptions) -> None:
        self.options = options
        self.build_id = options.request.build_id
        self.mirror = DirectoryStore(options.state)
        self._known: dict[str, str] = {}  # key -> ETag of what the mirror holds
        self._saved_at = time.monotonic()
        _keep_bedrock_credentials(options.request)
        try:
            self.stack = start_local_stack(options.endpoint_url)
        except BaseException:
            use_bedrock_session(None)
            raise
        try:
            _lambda_environment(options)
            runtime.reset()
            self.store = BuildStore(self.stack.bucket, boto3.client("s3", endpoint_url=self.stack.endpoint_url))
            self.restored = (mirror.restore(self.store, self.mirror, self.build_id)
                             if options.endpoint_url is None else 0)
        except BaseException:
            self.close()
            raise

    def step(self, name: str, event: dict[str, Any]) -> Any:
        return run_step(name, event, call=invoke)

    def resumed_note(self) -> str:
        return f" (resumed, {self.restored} records restored)"

    def generator(self) -> SqsPoller:
        stack = self.stack
        return SqsPoller(boto3.client("sqs", endpoint_url=stack.endpoint_url), stack.queue_url, stack.queue_arn,
                         batch_size=self.options.batch_size, concurrency=self.options.concurrency,
                         after_batch=self._keep_batch)

    def _keep_batch(self, messages: list[dict[str, Any]]) -> None:
        """A batch's records reach the disk before its messages are deleted: a crash (kill -9) then loses at
        most the critiques in flight, not everything since the last periodic save."""
        for message in messages:
            attributes = message.get("MessageAttributes", {})
            build_id = attributes.get("build_id", {}).get("StringValue")
            story_id = attributes.get("story_id", {}).get("StringValue")
            if not (build_id and story_id):
                continue
            key = feedback_key(build_id, story_id)
            data = self.store.get_bytes(key)
            if data is not None:
                self.mirror.put_bytes(key, data)

    def while_generating(self) -> None:
        if time.monotonic() - self._saved_at > SAVE_EVERY_S:
            self.checkpoint()

    def checkpoint(self) -> None:
        mirror.save(self.store, self.mirror, self.build_id, known=self._known)
        self._saved_at = time.monotonic()

    def report_store(self) -> BuildStore:
        return self.mirror  # the same objects after a checkpoint, read from disk instead of the emulator

    def close(self) -> None:
        self.stack.stop()
        use_bedrock_session(None)


def _lambda_environment(options: LocalBuildOptions) -> None:
    """What the template gives the functions and the local run differs in."""
    # Every worker may have a call in flight: the provider's connection pool holds them all.
    os.environ["COACH_HTTP_POOL"] = str(options.http_pool)
    # The poller has watched the queue drain before the progress step runs: no second look is needed.
    os.environ["COACH_QUEUE_DRAIN_CONFIRM_SECONDS"] = "0"


def _keep_bedrock_credentials(request: BuildRequest) -> None:
    """Bedrock calls go to AWS with the user's credentials, while everything else uses the emulator's."""
    if request.provider != "bedrock" or os.environ.get("AWS_ENDPOINT_URL_BEDROCK_RUNTIME"):
        return
    session = boto3.session.Session()
    credentials = session.get_credentials()
    if credentials is None:
        raise ConfigError("the bedrock provider needs AWS credentials (a profile, environment variables or "
                          "an SSO login) with bedrock:InvokeModel on the model", code="bedrock_auth")
    frozen = credentials.get_frozen_credentials()
    use_bedrock_session(boto3.session.Session(
        aws_access_key_id=frozen.access_key, aws_secret_access_key=frozen.secret_key,
        aws_session_token=frozen.token, region_name=bedrock_region()))


def run_emulated_build(options: LocalBuildOptions, *, stream: TextIO | None = None) -> LocalBuildResult:
    stream = stream or sys.stderr  # read at call time: tests swap sys.stderr
    with build_environment(options.verbose):  # the emulator's endpoints must not leak into what runs next
        rt = EmulatedRuntime(options)
        try:
            return run_flow(options, rt, stream)
        finally:
            rt.close()
