"""A token bucket per key, on an injected clock: ``rate`` requests a minute on average, bursts up to ``rate``.

Pure and in memory (one process): the API keeps one bucket per API token, so one busy integration cannot starve
another nor the customers' scans. A refusal says how many whole seconds until the next request would pass.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime

from .models import Clock


@dataclass
class _Bucket:
    tokens: float
    at: datetime


class RateLimiter:
    def __init__(self, rate_per_minute: int, clock: Clock) -> None:
        if rate_per_minute < 1:
            raise ValueError("the rate must be at least 1 a minute")
        self.rate = rate_per_minute
        self._clock = clock
        self._buckets: dict[object, _Bucket] = {}

    def take(self, key: object) -> int:
        """Take one request for ``key``: 0 when it may go ahead, else the seconds to wait (Retry-After)."""
        now = self._clock()
        bucket = self._buckets.get(key)
        if bucket is None:
            bucket = self._buckets[key] = _Bucket(float(self.rate), now)
        # A clock stepped back refills nothing, and the bucket goes on from the new time: waiting for the clock to
        # catch up with the old one would stretch the wait by the size of the step.
        elapsed = max(0.0, (now - bucket.at).total_seconds())
        bucket.tokens = min(float(self.rate), bucket.tokens + elapsed * self.rate / 60)
        bucket.at = now
        if bucket.tokens >= 1:
            bucket.tokens -= 1
            return 0
        return max(1, math.ceil((1 - bucket.tokens) * 60 / self.rate))
