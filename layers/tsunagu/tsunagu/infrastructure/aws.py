"""boto3 clients: one shared session, each client created on first use and then reused for
the life of the warm function. A handler that never touches a service never pays for its
client, and the module import stays cheap (see docs/benchmarks.md for both figures)."""

from __future__ import annotations

from functools import cache
from typing import Any

import boto3
from botocore.config import Config

_CONFIG = Config(retries={"mode": "standard", "max_attempts": 3}, connect_timeout=2, read_timeout=5)


@cache
def session() -> boto3.session.Session:
    # A second client from the same session costs a fraction of the first: endpoint and
    # partition data are loaded once per session.
    return boto3.session.Session()


@cache
def client(service: str) -> Any:
    return session().client(service, config=_CONFIG)  # type: ignore[call-overload]
