"""The API against its own document (issue 15, item 3): schemathesis generates requests for every
operation in /openapi.json (valid ones and, for negative data rejection, invalid ones) and checks
each answer: no 5xx, only documented statuses and content types, bodies that match their schema,
and invalid data refused with a 4xx.

The requests go through the same routing and API Gateway v2 events as the local stack (the
integration ``Api``), on moto, with a real account and its key, so most of them get past
authentication to the routes. Bounded and reproducible: ``SCHEMATHESIS_EXAMPLES`` examples per
operation and ``SCHEMATHESIS_SEED`` as hypothesis's seed (both set in the Makefile)."""

from __future__ import annotations

import json
import os
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, seed, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_schema_conformance,
    status_code_conformance,
)

from tests.integration.conftest import OPERATOR_KEY, Api
from tsunagu_local.resources import ROOT

EXAMPLES = int(os.environ.get("SCHEMATHESIS_EXAMPLES", "10"))
SEED = int(os.environ.get("SCHEMATHESIS_SEED", "20261203"))
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    negative_data_rejection,
]
GATEWAY_NOT_FOUND = b'{"message":"Not Found"}'
SECRET = "0123456789abcdef0123456789abcdef"
TOKEN = "tok-" + "Z" * 60


class Wsgi:
    """The integration ``Api`` of the running test as a WSGI app, for schemathesis's WSGI transport."""

    api: Api

    def __call__(self, environ: dict[str, Any], start_response: Any) -> list[bytes]:
        length = int(environ.get("CONTENT_LENGTH") or 0)
        body = environ["wsgi.input"].read(length) if length else b""
        headers = {k[5:].replace("_", "-").lower(): v for k, v in environ.items() if k.startswith("HTTP_")}
        if environ.get("CONTENT_TYPE"):
            headers["content-type"] = environ["CONTENT_TYPE"]
        path = environ.get("PATH_INFO", "/")
        if environ.get("QUERY_STRING"):
            path += "?" + environ["QUERY_STRING"]
        status, out_headers, out = self.api.raw(environ["REQUEST_METHOD"], path, headers, body)
        start_response(f"{status} -", list(out_headers.items()))
        return [out]


APP = Wsgi()
# The committed document (``make openapi-check`` keeps it equal to the one the routes generate).
schema = schemathesis.openapi.from_dict(json.loads((ROOT / "docs" / "openapi.json").read_text(encoding="utf-8")))
schema.app = APP
ACCOUNT: dict[str, str] = {}


@pytest.fixture
def contract(stack: Any) -> None:
    """A fresh moto world per operation, with a real account, its channel and its key."""
    api = Api(stack)
    status, created = api.call("POST", "/accounts", {"name": "契約テスト"}, {"Authorization": f"Bearer {OPERATOR_KEY}"})
    assert status == 201, created
    aid, key = created["account_id"], created["api_key"]
    auth = {"Authorization": f"Bearer {key}"}
    api.call("PUT", f"/accounts/{aid}/channel", {"channel_secret": SECRET, "access_token": TOKEN}, auth)
    APP.api = api
    ACCOUNT.update(id=aid, key=key)


@schema.parametrize()
@seed(SEED)
@settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=False,
    suppress_health_check=list(HealthCheck),
    database=None,
)
@pytest.mark.usefixtures("contract")
def test_every_operation_keeps_its_contract(case: Any) -> None:
    aid, key = ACCOUNT["id"], ACCOUNT["key"]
    if "account_id" in (case.path_parameters or {}) and not case.meta.generation.mode.is_negative:
        case.path_parameters["account_id"] = aid  # most requests should reach the route, not a 404
    operator = case.path == "/accounts" and case.method.upper() == "POST"
    headers = {"Authorization": f"Bearer {OPERATOR_KEY if operator else key}"}
    response = case.call(headers=headers)
    if response.status_code == 404 and response.content == GATEWAY_NOT_FOUND:
        return  # no route matched (e.g. a "/" in a path parameter): API Gateway's own answer, not ours
    case.validate_response(response, checks=CHECKS)


def test_the_document_declares_every_error_body_and_csv_type(stack: Any) -> None:
    api = Api(stack)
    status, doc = api.call("GET", "/openapi.json")
    assert status == 200
    assert "HTTPValidationError" not in json.dumps(doc)
    for path, item in doc["paths"].items():
        for method, op in item.items():
            for code, answer in op["responses"].items():
                if code.startswith(("4", "5")) and "text/html" not in answer.get("content", {}):  # pages: HTML
                    assert answer["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/Error"}
            if "requestBody" in op and path != "/line/{accountId}/webhook":  # LINE's: the signature comes first
                assert {"400", "415", "422"} <= set(op["responses"]), (method, path)
            if path.startswith("/accounts"):
                assert "401" in op["responses"], (method, path)
            # a route that lists its own refusals still states its success answer
            assert any(code.startswith(("2", "3")) for code in op["responses"]), (method, path)
    assert "202" in doc["paths"]["/accounts/{account_id}/notifications"]["post"]["responses"]
    chats = doc["paths"]["/accounts/{account_id}/chats"]["get"]
    assert "text/csv" in chats["responses"]["200"]["content"]
    assert {p["name"] for p in chats["parameters"]} >= {"since", "until", "limit", "cursor"}
