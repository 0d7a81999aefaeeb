"""A token bucket: at most ``rate`` calls per second on average, bursts up to ``burst``.

LINE limits each channel (2,000 requests/s for push and notification messages,
line-platform.md 4.2). Several sender instances share a channel, so each takes its share:
``rate = channel limit / the event source's maximum concurrency`` (template.yaml)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable


class TokenBucket:
    def __init__(
        self,
        rate: float,
        burst: float | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ):
        if rate <= 0:
            raise ValueError("rate must be positive")
        self.rate = rate
        self.burst = max(1.0, burst if burst is not None else rate / 10)
        self.clock = clock
        self.sleep = sleep
        self.tokens = self.burst
        self.at = clock()
        self.lock = threading.Lock()

    def acquire(self) -> float:
        """Wait until a call is allowed; returns the seconds waited."""
        with self.lock:
            now = self.clock()
            self.tokens = min(self.burst, self.tokens + (now - self.at) * self.rate)
            self.at = now
            self.tokens -= 1
            wait = -self.tokens / self.rate if self.tokens < 0 else 0.0
        if wait > 0:
            self.sleep(wait)
        return wait
