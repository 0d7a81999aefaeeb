"""Integration fixtures: moto's mock_aws with the template's resources, and the real handlers."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

from tsunagu import wiring
from tsunagu_local import moto_queries, moto_transactions
from tsunagu_local.gateway import Route, build_v2_event, to_http
from tsunagu_local.resources import Stack, create_resources
from tsunagu_local.runtime import LocalFunction

OPERATOR_KEY = "operator-key-for-tests-0123456789"


@pytest.fixture
def stack(monkeypatch: pytest.MonkeyPatch) -> Iterator[Stack]:
    # The local stack's item-level transaction rollback and partition queries, so these tests run
    # what `make serve` runs.
    with mock_aws(), moto_transactions.item_level_rollback(), moto_queries.partition_queries():
        s = create_resources(params={"LineApiBaseUrl": "http://127.0.0.1:9"})
        env: dict[str, str] = {}
        for spec in s.functions.values():
            env.update(spec.environment)
        for k, v in env.items():
            monkeypatch.setenv(k, v)
        monkeypatch.setenv("TSUNAGU_OPERATOR_KEY", OPERATOR_KEY)
        wiring.reset()
        yield s
        wiring.reset()


class Api:
    """Calls a function's HTTP routes with API Gateway v2 events, as the HttpApi would."""

    def __init__(self, stack: Stack):
        self.functions = {lid: LocalFunction(spec) for lid, spec in stack.functions.items()}
        self.routes = [Route(m, p, fn) for fn in self.functions.values() for m, p in fn.spec.http_routes]
        self.routes.sort(key=lambda r: r.priority)

    def call(
        self, method: str, path: str, body: Any = None, headers: dict[str, str] | None = None, raw: bytes | None = None
    ) -> tuple[int, Any]:
        hdrs = {k.lower(): v for k, v in (headers or {}).items()}
        data = raw if raw is not None else (json.dumps(body).encode() if body is not None else b"")
        if data:
            hdrs.setdefault("content-type", "application/json")
        status, _, out = self.raw(method, path, hdrs, data)
        try:
            return status, json.loads(out) if out else None
        except ValueError:
            return status, out.decode()

    def raw(self, method: str, path: str, headers: dict[str, str], data: bytes) -> tuple[int, dict[str, str], bytes]:
        """One HTTP request as the HttpApi would route it: status, headers and body."""
        hdrs = {k.lower(): v for k, v in headers.items()}
        path_only, _, query = path.partition("?")
        for r in self.routes:
            m = r.regex.match(path_only)
            if r.method == method and m:
                event = build_v2_event(method, path_only, query, hdrs, data, r, m.groupdict(), "127.0.0.1")
                return to_http(r.fn.invoke(event))
        return 404, {"content-type": "application/json"}, b'{"message":"Not Found"}'  # as API Gateway answers


@pytest.fixture
def api(stack: Stack) -> Api:
    return Api(stack)


def scan_all(stack: Stack) -> list[dict[str, Any]]:
    ddb = boto3.client("dynamodb")
    items: list[dict[str, Any]] = []
    for table in stack.tables.values():
        items += ddb.scan(TableName=table)["Items"]
    return items
