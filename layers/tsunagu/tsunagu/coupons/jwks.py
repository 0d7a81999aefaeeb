"""LINE's JWKS for LIFF ID tokens (ES256), cached in the function's container: fetched once,
kept for the ``max-age`` LINE answers with (bounded), and refetched once when a token names a
``kid`` the cache does not hold - LINE rotating its keys - but such refetches at most once per
``refetch_interval`` seconds, so tokens with made-up ``kid``s cannot make tsunagu hammer LINE.
A failed fetch keeps the keys already held (for ``refetch_interval``) rather than refuse every
member while LINE is unreachable."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from tsunagu.errors import UpstreamError
from tsunagu.observability import logger

DEFAULT_MAX_AGE = 3600  # when LINE's answer names none
MAX_AGE_CAP = 86400  # a day at most, whatever the header says
REFETCH_INTERVAL = 60  # an unknown kid refetches at most once a minute


def max_age(cache_control: str | None) -> int:
    """Seconds from a ``Cache-Control`` header (``max-age``; ``no-store``/``no-cache`` -> 0)."""
    if not cache_control:
        return DEFAULT_MAX_AGE
    seconds = DEFAULT_MAX_AGE
    for part in cache_control.lower().split(","):
        name, _, value = part.strip().partition("=")
        if name in ("no-store", "no-cache"):
            return 0
        if name == "max-age" and value.strip().isdigit():
            seconds = int(value)
    return min(seconds, MAX_AGE_CAP)


@dataclass
class LineJwks:
    """``fetch()`` returns (the JWKS document, its Cache-Control header)."""

    fetch: Callable[[], tuple[dict[str, Any], str | None]]
    refetch_interval: float = REFETCH_INTERVAL
    clock: Callable[[], float] = time.monotonic
    fetches: int = 0
    _keys: dict[str, dict[str, Any]] = field(default_factory=dict)
    _fresh_until: float = float("-inf")
    _last_refetch: float = float("-inf")
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def key(self, kid: str) -> dict[str, Any] | None:
        """The JWK named ``kid``, or None (unknown even after the one allowed refetch)."""
        with self._lock:
            now = self.clock()
            if now >= self._fresh_until:
                self._refresh(now)
            elif kid not in self._keys and now - self._last_refetch >= self.refetch_interval:
                self._last_refetch = now  # LINE may have rotated its keys: once, then not for a while
                self._refresh(now)
            return self._keys.get(kid)

    def _refresh(self, now: float) -> None:
        self.fetches += 1
        try:
            doc, cache_control = self.fetch()
        except UpstreamError:
            if self._keys:
                logger.warning("LINE JWKS fetch failed; keeping the cached keys")
                self._fresh_until = now + self.refetch_interval
                return
            raise
        keys = doc.get("keys") if isinstance(doc, dict) else None
        self._keys = {str(k["kid"]): k for k in keys or [] if isinstance(k, dict) and isinstance(k.get("kid"), str)}
        self._fresh_until = now + max_age(cache_control)
