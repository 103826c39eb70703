"""An in-process AWS emulator (moto server on a free loopback port) and the stack's resources in it."""

from __future__ import annotations

import json
import os
import socket
from dataclasses import dataclass
from typing import Any

import boto3

from coach.settings import DEFAULT_MODEL_PARAMETER

REGION = "us-east-1"
BUCKET = "coach-local-builds"
QUEUE = "coach-stories"
DLQ = "coach-stories-dlq"
TABLE = "coach-idempotency"
MODEL_PARAMETER = DEFAULT_MODEL_PARAMETER
MAX_RECEIVE_COUNT = 3
VISIBILITY_TIMEOUT = 60


@dataclass
class LocalStack:
    endpoint_url: str
    bucket: str
    queue_url: str
    queue_arn: str
    dlq_url: str
    table: str
    model_parameter: str
    server: Any = None

    def env(self) -> dict[str, str]:
        """The environment the handlers read, as the SAM template would set it."""
        env = {"AWS_ENDPOINT_URL": self.endpoint_url} if self.endpoint_url else {}
        return env | {
            "COACH_BUCKET": self.bucket,
            "COACH_STORY_QUEUE_URL": self.queue_url,
            "COACH_STORY_DLQ_URL": self.dlq_url,
            "COACH_IDEMPOTENCY_TABLE": self.table,
            "COACH_MODEL_PARAMETER": self.model_parameter,
            "COACH_MAX_RECEIVE_COUNT": str(MAX_RECEIVE_COUNT),
            # The role a Bedrock customization job would assume; a Bedrock test server takes any.
            "COACH_BEDROCK_ROLE_ARN": os.environ.get("COACH_BEDROCK_ROLE_ARN") or LOCAL_BEDROCK_ROLE,
        }

    def stop(self) -> None:
        if self.server is not None:
            self.server.stop()
            self.server = None


LOCAL_BEDROCK_ROLE = "arn:aws:iam::000000000000:role/coach-bedrock-customization"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _set_fake_credentials() -> None:
    # The emulator accepts any credentials; never let a local run pick up a real profile.
    os.environ["AWS_ACCESS_KEY_ID"] = "local"
    os.environ["AWS_SECRET_ACCESS_KEY"] = "local"
    os.environ.pop("AWS_SESSION_TOKEN", None)
    os.environ.pop("AWS_PROFILE", None)
    os.environ.setdefault("AWS_DEFAULT_REGION", REGION)


def _speed_up_moto() -> None:
    """Two needless costs of moto's server on every request, removed with the same results:
    - it lists moto's package folder (hundreds of stat calls) to route by host: list it once;
    - each received message re-derives every queue attribute (walking all messages), which makes a receive
      O(queue length) per message while a build's queue holds every story: check retention directly."""
    try:
        from moto import backends
        from moto.core.utils import unix_time
        from moto.sqs.models import SQSBackend
    except ImportError:
        return
    if not (hasattr(backends, "list_of_moto_modules")
            and hasattr(SQSBackend, "is_message_valid_based_on_retention_period")):
        return  # a moto without these internals: run it as it is

    modules = tuple(backends.list_of_moto_modules())
    backends.list_of_moto_modules = lambda: modules  # type: ignore[assignment]

    def still_retained(self: Any, queue_name: str, message: Any) -> bool:
        queue = self.get_queue(queue_name)
        return int(queue.message_retention_period) + message.sent_timestamp / 1000 > unix_time()

    SQSBackend.is_message_valid_based_on_retention_period = still_retained


def start_server() -> tuple[Any, str]:
    import logging

    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # one line per request would drown the progress bar
    _speed_up_moto()
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    return server, f"http://127.0.0.1:{port}"


def provision(endpoint_url: str | None, server: Any = None) -> LocalStack:
    """Create (or find) the bucket, queue + DLQ with redrive and idempotency table.

    With endpoint_url None the default endpoint is used (e.g. inside moto's `mock_aws` in tests).
    """
    _set_fake_credentials()
    kwargs = {"endpoint_url": endpoint_url, "region_name": os.environ.get("AWS_DEFAULT_REGION", REGION)}
    s3 = boto3.client("s3", **kwargs)
    sqs = boto3.client("sqs", **kwargs)
    ddb = boto3.client("dynamodb", **kwargs)

    existing = {b["Name"] for b in s3.list_buckets().get("Buckets", [])}
    if BUCKET not in existing:
        s3.create_bucket(Bucket=BUCKET)
    dlq_url = sqs.create_queue(QueueName=DLQ, Attributes={"MessageRetentionPeriod": "1209600"})["QueueUrl"]
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    redrive = json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": str(MAX_RECEIVE_COUNT)})
    queue_url = sqs.create_queue(QueueName=QUEUE, Attributes={
        "VisibilityTimeout": str(VISIBILITY_TIMEOUT), "RedrivePolicy": redrive})["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    if TABLE not in ddb.list_tables().get("TableNames", []):
        ddb.create_table(
            TableName=TABLE, BillingMode="PAY_PER_REQUEST",
            AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
            KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
        )
    return LocalStack(endpoint_url=endpoint_url or "", bucket=BUCKET, queue_url=queue_url, queue_arn=queue_arn,
                      dlq_url=dlq_url, table=TABLE, model_parameter=MODEL_PARAMETER, server=server)


def start_local_stack(endpoint_url: str | None = None) -> LocalStack:
    """Start an emulator (unless one is given) and provision the stack; sets the handlers' environment."""
    server = None
    if endpoint_url is None:
        _set_fake_credentials()
        server, endpoint_url = start_server()
    stack = provision(endpoint_url, server)
    os.environ.update(stack.env())
    return stack
