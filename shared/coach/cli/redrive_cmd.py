"""`coach redrive BUILD_ID`: once the cause is fixed, send a build's dead-lettered stories through again.

A story's message goes to the dead-letter queue after its last allowed delivery; its feedback record (status
`failed`, `dead_lettered: true`) keeps the cause. This command lists those stories with their causes, then
resumes the build so they are generated and the dataset is assembled again:

- local build (default): the in-process emulator and its queues ended with the build, but the records are
  kept under OUT/.state, so resuming re-enqueues every story without feedback, the dead-lettered ones
  included (stories with feedback are reused, never paid for again);
- `--endpoint-url URL` (a long-running emulator): the build's messages are first moved from the DLQ back
  to the story queue, as the console's "Start DLQ redrive" does in the cloud, then the build resumes.

`--list` only lists. In the cloud, see docs/operations.md.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from coach.adapters.storage import feedback_key, request_key
from coach.cli.build_cmd import check_worker_options
from coach.domain.records import GenerationRecord
from coach.errors import InputError

MOVE_BATCH = 10


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("build_id", metavar="BUILD_ID", help="the build whose dead-lettered stories to retry")
    parser.add_argument("--out", type=Path, help="the build's output folder (default: out/<build id>)")
    parser.add_argument("--state-dir", type=Path,
                        help="where the build's records persist (default: OUT/.state)")
    parser.add_argument("--endpoint-url", help="an AWS emulator that still holds the build's queues")
    parser.add_argument("--list", action="store_true", dest="list_only",
                        help="only list the dead-lettered stories and their causes")
    parser.add_argument("--concurrency", type=int, default=4, help="generator invocations at once")
    parser.add_argument("--batch-size", type=int,
                        help="with --endpoint-url: SQS messages per generator invocation (default 5)")
    parser.add_argument("--verbose", action="store_true", help="show the handlers' logs")


def dead_lettered(records: list[GenerationRecord]) -> list[GenerationRecord]:
    return sorted((r for r in records if r.status == "failed" and r.dead_lettered), key=lambda r: r.story_id)


def move_dead_letters(sqs: Any, dlq_url: str, queue_url: str, build_id: str) -> list[str]:
    """Move the build's messages from the DLQ back to the story queue; other builds' messages stay.

    Each message is sent again before it is deleted, so a failure half-way duplicates at worst (the
    generator is idempotent) and never loses a story. Other builds' messages are held out of sight while
    the DLQ is read, then made visible again. Returns the story ids moved.
    """
    moved: list[str] = []
    held: dict[str, dict[str, Any]] = {}
    try:
        while True:
            got = sqs.receive_message(QueueUrl=dlq_url, MaxNumberOfMessages=MOVE_BATCH, VisibilityTimeout=60,
                                      MessageAttributeNames=["All"]).get("Messages", [])
            if not got or all(m["MessageId"] in held for m in got):
                held.update({m["MessageId"]: m for m in got})
                break
            for message in got:
                attributes = message.get("MessageAttributes", {})
                if attributes.get("build_id", {}).get("StringValue") != build_id:
                    held[message["MessageId"]] = message  # the latest receipt handle is the one to release
                    continue
                sqs.send_message(QueueUrl=queue_url, MessageBody=message["Body"],
                                 MessageAttributes=attributes)
                sqs.delete_message(QueueUrl=dlq_url, ReceiptHandle=message["ReceiptHandle"])
                moved.append(attributes.get("story_id", {}).get("StringValue", message["MessageId"]))
    finally:
        for message in held.values():
            _release(sqs, dlq_url, message)
    return moved


def _release(sqs: Any, dlq_url: str, message: dict[str, Any]) -> None:
    sqs.change_message_visibility(QueueUrl=dlq_url, ReceiptHandle=message["ReceiptHandle"],
                                  VisibilityTimeout=0)


def _local_records(state: Path, build_id: str) -> tuple[dict[str, Any], list[GenerationRecord]]:
    request_file = state / request_key(build_id)
    if not request_file.is_file():
        raise InputError(f"no local build '{build_id}' under {state}: give the build's --out (or "
                         "--state-dir), or run coach build first", code="build_not_found")
    request = json.loads(request_file.read_text(encoding="utf-8"))
    folder = (state / feedback_key(build_id, "x")).parent
    records = []
    for path in sorted(folder.glob("*.json")):
        try:
            records.append(GenerationRecord.model_validate_json(path.read_text(encoding="utf-8")))
        except ValidationError:
            continue  # not a record this version can read; the resumed build rewrites it if needed
    return request, records


def _remote_records(endpoint_url: str, build_id: str) -> tuple[dict[str, Any], list[GenerationRecord], Any]:
    import boto3

    from coach.adapters.storage import BuildStore
    from coach.local.emulator import start_local_stack

    stack = start_local_stack(endpoint_url)
    store = BuildStore(stack.bucket, boto3.client("s3", endpoint_url=endpoint_url))
    request = store.get_json(request_key(build_id))
    if request is None:
        raise InputError(f"no build '{build_id}' in the emulator at {endpoint_url}", code="build_not_found")
    return request, list(store.feedback(build_id)), stack


def _print_dead_letters(build_id: str, records: list[GenerationRecord]) -> None:
    print(f"build {build_id}: {len(records)} dead-lettered " + ("story" if len(records) == 1 else "stories"))
    for record in records:
        cause = f"{record.error.code}: {record.error.message}" if record.error else "no cause recorded"
        print(f"  {record.story_id}  {cause}")


def run(args: argparse.Namespace) -> int:
    from coach.domain.records import BuildRequest

    check_worker_options(args.concurrency, args.batch_size, emulated=bool(args.endpoint_url),
                         emulator_flag="--endpoint-url")
    out = args.out or Path("out") / args.build_id
    state = args.state_dir or out / ".state"
    stack = None
    if args.endpoint_url:
        raw_request, records, stack = _remote_records(args.endpoint_url, args.build_id)
    else:
        raw_request, records = _local_records(state, args.build_id)
    dead = dead_lettered(records)
    _print_dead_letters(args.build_id, dead)
    if args.list_only:
        return 0
    if stack is not None:
        import boto3

        sqs = boto3.client("sqs", endpoint_url=args.endpoint_url)
        moved = move_dead_letters(sqs, stack.dlq_url, stack.queue_url, args.build_id)
        print(f"moved {len(moved)} messages from the dead-letter queue back to the story queue")
    elif not dead:
        print("nothing to redrive")
        return 0
    sys.stdout.flush()

    from coach.local.build import SQS_BATCH_SIZE, LocalBuildOptions, run_local_build, summary_table

    request = BuildRequest.model_validate(raw_request)
    result = run_local_build(LocalBuildOptions(
        request=request, out=out, state_dir=args.state_dir, endpoint_url=args.endpoint_url,
        concurrency=args.concurrency, batch_size=args.batch_size or SQS_BATCH_SIZE, verbose=args.verbose,
    ))
    print(summary_table(result))
    retried = {record.story_id for record in dead}
    after = (_remote_records(args.endpoint_url, args.build_id)[1] if args.endpoint_url
             else _local_records(state, args.build_id)[1])
    still = [record for record in dead_lettered(after) if record.story_id in retried]
    if still:
        print(f"{len(still)} of {len(retried)} stories were dead-lettered again; fix the cause and "
              "redrive again")
    return 0 if result.generation_complete and not still else 3
