"""Shared test setup: no test may reach real AWS, OpenAI or Reddit."""

from __future__ import annotations

import os
import tempfile

# Set before any handler or boto3 client is imported (Powertools reads these at import time).
os.environ.update({
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SECURITY_TOKEN": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
    "POWERTOOLS_TRACE_DISABLED": "1",
    "POWERTOOLS_METRICS_DISABLED": "true",
    "POWERTOOLS_SERVICE_NAME": "writing-coach-tests",
    "POWERTOOLS_METRICS_NAMESPACE": "WritingCoachTests",
    "POWERTOOLS_LOG_LEVEL": "ERROR",
    "COACH_TOKENIZER": os.environ.get("COACH_TOKENIZER", ""),
})
# Models a test build publishes go to a file of the test session, never to the checkout's .coach/registry.json.
os.environ["COACH_LOCAL_REGISTRY"] = os.path.join(tempfile.mkdtemp(prefix="coach-tests-"), "registry.json")
for leaked in ("AWS_PROFILE", "AWS_ENDPOINT_URL", "OPENAI_API_KEY", "OPENAI_BASE_URL", "COACH_API_KEY"):
    os.environ.pop(leaked, None)

import pytest  # noqa: E402


@pytest.fixture
def aws(monkeypatch):
    """moto's in-process AWS with the stack's resources provisioned and the handlers' env set."""
    from moto import mock_aws

    from coach import runtime
    from coach.local.emulator import provision

    with mock_aws():
        runtime.reset()
        stack = provision(None)
        for key, value in stack.env().items():
            monkeypatch.setenv(key, value)
        yield stack
    runtime.reset()
