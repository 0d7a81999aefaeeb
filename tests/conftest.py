"""Shared fixtures. Unit tests need nothing; integration tests get a moto ``mock_aws`` world
whose tables and queues are created from template.yaml; e2e tests get the local stack running
in a child process (see tests/e2e/conftest.py)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import time
from pathlib import Path
from typing import Any

import pytest

# No test may reach real AWS, whatever the developer's shell holds.
for _k in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL"):
    os.environ.pop(_k, None)
os.environ.update(
    {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "ap-northeast-1",
        "POWERTOOLS_METRICS_DISABLED": "true",
        # Handlers called without log_metrics keep metrics buffered; at 100 Powertools flushes
        # them itself and needs a namespace (the template sets it for every function).
        "POWERTOOLS_METRICS_NAMESPACE": "tsunagu-test",
        "POWERTOOLS_DEV": "false",
    }
)

USER_A = "U" + "a" * 32
USER_B = "U" + "b" * 32
DESTINATION = "U" + "d" * 32


def sign(secret: str, body: bytes) -> str:
    return base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha256).digest()).decode()


def line_event(
    kind: str, user: str = USER_A, ts: int | None = None, event_id: str | None = None, **extra: Any
) -> dict[str, Any]:
    ev: dict[str, Any] = {
        "type": kind,
        "mode": "active",
        "timestamp": ts if ts is not None else int(time.time() * 1000),
        "source": {"type": "user", "userId": user},
        "webhookEventId": event_id or f"01H{os.urandom(10).hex().upper()[:23]}",
        "deliveryContext": {"isRedelivery": False},
    }
    ev.update(extra)
    return ev


def webhook_body(*events: dict[str, Any]) -> bytes:
    return json.dumps({"destination": DESTINATION, "events": list(events)}).encode()


def pytest_collection_finish(session) -> None:  # type: ignore[no-untyped-def]
    """A full run must collect tests from every level: an empty level fails loudly."""
    if session.config.option.keyword or session.config.option.markexpr:
        return  # a deliberate selection
    if any(Path(str(a)).resolve() != Path(__file__).parent for a in session.config.args):
        return  # a run of part of the suite
    for level in ("unit", "integration", "e2e"):
        if not any(f"tests/{level}/" in item.nodeid for item in session.items):
            pytest.exit(f"no tests collected from tests/{level}: refusing to pass silently", returncode=5)
