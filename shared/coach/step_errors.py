"""Exceptions a handler raises to end a Step Functions execution with a readable cause.

Step Functions reports a Lambda failure by the exception's class name (the state machine's Catch and
the console show it) and its message (the cause), so the names are stable and the messages one line.
A failed fine-tune needs no class here: the state machine's own Fail states name it `FineTuneFailed`.
"""

from __future__ import annotations


class InvalidBuildRequest(Exception):
    pass


class NoStories(Exception):
    pass


class SourceFailed(Exception):
    pass


class DatasetTooSmall(Exception):
    pass


class DatasetInvalid(Exception):
    pass


class BatchFailed(Exception):
    pass


class BatchProviderBusy(Exception):
    """A transient provider error in a batch step: the state machine retries the step."""

