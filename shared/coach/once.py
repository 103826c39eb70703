"""`built_once`: a process-wide cache that builds each value once, even when many threads ask at once.

A direct local build starts all its generator threads together and each asks, on its first story, for the
provider, the AWS clients and the token counter. Under `functools.cache` each of them built its own (an SDK
client and connection pool each, a tokenizer load each), and boto3's default session is not safe to build
clients from in several threads at once.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")


def built_once(make: Callable[..., T]) -> Callable[..., T]:
    cached = functools.cache(make)
    lock = threading.RLock()  # re-entrant: building one value may ask for another of the same kind

    @functools.wraps(make)
    def get(*args: Any, **kwargs: Any) -> T:
        with lock:
            return cached(*args, **kwargs)

    get.cache_clear = cached.cache_clear  # type: ignore[attr-defined]
    return get
