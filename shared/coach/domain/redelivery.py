"""When a story's message should come back after a transient failure.

The queue's visibility timeout is sized for the slowest delivery (six times the generator's timeout), so
a message that failed fast would otherwise wait half an hour. Backing off per delivery, and never sooner
than the API's own Retry-After, brings it back in seconds to minutes.
"""

from __future__ import annotations

BASE_DELAY_S = 30
MAX_DELAY_S = 900


def redelivery_delay(receive_count: int, retry_after: float | None = None) -> int:
    """Seconds before the next delivery: 30 s doubling per delivery, at least Retry-After, at most 15 min."""
    backoff = BASE_DELAY_S * 2 ** max(0, receive_count - 1)
    wanted = max(backoff, retry_after or 0.0)
    return int(min(MAX_DELAY_S, wanted))
