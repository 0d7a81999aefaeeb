"""Malformed requests (issue 15, item 1): whatever the body, encoding or content type, every HTTP
function answers a 4xx JSON error with a stable code, and nothing is written. The gate is
``tsunagu.http.refuse_malformed``, run before any route of every HTTP function."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.conftest import sign
from tests.integration.conftest import OPERATOR_KEY, scan_all

OP = {"Authorization": f"Bearer {OPERATOR_KEY}"}
SECRET = "0123456789abcdef0123456789abcdef"
TOKEN = "tok-" + "Z" * 60
HUGE = "9" * 5000

WRONG_TYPES = [
    "text/plain",
    "application/xml",
    "image/png",
    "multipart/form-data",
    "multipart/form-data; boundary=x",
    "application/x-www-form-urlencoded",
    "application/json; charset=shift_jis",
]


@pytest.fixture
def account(api: Any) -> tuple[str, dict[str, str]]:
    status, body = api.call("POST", "/accounts", {"name": "店舗"}, OP)
    assert status == 201, body
    auth = {"Authorization": f"Bearer {body['api_key']}"}
    api.call("PUT", f"/accounts/{body['account_id']}/channel", {"channel_secret": SECRET, "access_token": TOKEN}, auth)
    return body["account_id"], auth


def json_routes(aid: str, auth: dict[str, str]) -> list[tuple[str, str, dict[str, str]]]:
    return [
        ("POST", "/accounts", OP),
        ("PATCH", f"/accounts/{aid}", auth),
        ("PUT", f"/accounts/{aid}/budget", auth),
        ("POST", f"/accounts/{aid}/members", auth),
        ("POST", f"/accounts/{aid}/coupons", auth),
        ("POST", f"/accounts/{aid}/redemptions", auth),  # the lean redemption function
    ]


def test_a_body_that_is_not_utf8_is_400_invalid_encoding_on_every_json_route(api, stack, account):
    aid, auth = account
    before = scan_all(stack)
    for method, path, headers in json_routes(aid, auth):
        status, body = api.call(method, path, raw=b"\xff{", headers=headers)
        assert (status, body["error"]["code"]) == (400, "invalid_encoding"), (method, path, body)
    assert scan_all(stack) == before


@pytest.mark.parametrize("ctype", WRONG_TYPES)
def test_an_unsupported_content_type_is_415_with_what_is_accepted(api, stack, account, ctype):
    aid, auth = account
    before = scan_all(stack)
    for method, path, headers in json_routes(aid, auth):
        raw = b'{"chat_retention_days": 10}' if "json" in ctype else b"--x\r\n\r\n--x--"
        status, body = api.call(method, path, raw=raw, headers={**headers, "content-type": ctype})
        assert status == 415, (method, path, ctype, body)
        assert body["error"]["code"] == "unsupported_media_type"
        assert "application/json" in body["error"]["details"][0]["accepted"]
    assert scan_all(stack) == before  # the multipart PATCH no longer writes an empty change


def test_csv_sent_to_a_json_route_is_415_and_json_to_the_csv_import_is_not_a_500(api, stack, account):
    aid, auth = account
    before = scan_all(stack)
    status, body = api.call(
        "PATCH", f"/accounts/{aid}", raw=b"a,b\n1,2\n", headers={**auth, "content-type": "text/csv"}
    )
    assert (status, body["error"]["code"]) == (415, "unsupported_media_type")
    status, body = api.call("POST", f"/accounts/{aid}/members/import", raw=b'{"x": 1}', headers=auth)
    assert 400 <= status < 500, body
    assert scan_all(stack) == before


def test_an_integer_with_5000_digits_is_422_number_too_large(api, stack, account):
    aid, auth = account
    before = scan_all(stack)
    raw = ('{"chat_retention_days": ' + HUGE + "}").encode()
    for method, path, headers in json_routes(aid, auth):
        status, body = api.call(method, path, raw=raw, headers=headers)
        assert (status, body["error"]["code"]) == (422, "number_too_large"), (method, path, body)
    assert scan_all(stack) == before


def test_the_lone_surrogate_and_bad_json_refusals_still_hold(api, stack, account):
    aid, auth = account
    before = scan_all(stack)
    status, body = api.call("PATCH", f"/accounts/{aid}", raw=b'{"name": "\\ud800"}', headers=auth)
    assert (status, body["error"]["code"]) == (422, "invalid_text")
    status, body = api.call("PATCH", f"/accounts/{aid}", raw=b"{not json", headers=auth)
    assert (status, body["error"]["code"]) == (400, "invalid_json")
    status, body = api.call("PATCH", f"/accounts/{aid}", raw=b"[" * 100_000, headers=auth)
    assert (status, body["error"]["code"]) == (400, "invalid_json")
    assert scan_all(stack) == before


def test_json_with_a_utf8_charset_or_no_content_type_is_accepted_and_json_variants_are_not(api, account):
    aid, auth = account
    raw = json.dumps({"chat_retention_days": 45}).encode()
    for ctype in ("application/json; charset=UTF-8", 'Application/JSON; charset="utf-8"', ""):
        status, body = api.call("PATCH", f"/accounts/{aid}", raw=raw, headers={**auth, "content-type": ctype})
        assert status == 200, (ctype, body)
        assert body["settings"]["chat_retention_days"] == 45
    status, body = api.call(
        "PATCH", f"/accounts/{aid}", raw=raw, headers={**auth, "content-type": "application/merge-patch+json"}
    )
    assert (status, body["error"]["code"]) == (415, "unsupported_media_type")


def test_the_link_page_refuses_a_form_that_is_not_utf8_and_other_types(api, stack, account):
    aid, _ = account
    before = scan_all(stack)
    form = {"content-type": "application/x-www-form-urlencoded"}
    status, body = api.call("POST", f"/link/{aid}", raw=b"member=\xff\xfe", headers=form)
    assert (status, body["error"]["code"]) == (400, "invalid_encoding")
    status, body = api.call("POST", f"/link/{aid}", raw=b"<x/>", headers={"content-type": "application/xml"})
    assert (status, body["error"]["code"]) == (415, "unsupported_media_type")
    assert scan_all(stack) == before


def test_a_signed_webhook_whose_body_is_not_utf8_is_a_4xx(api, stack, account):
    aid, _ = account
    raw = b'{"destination":"U0","events":[\xff]}'
    status, body = api.call("POST", f"/line/{aid}/webhook", raw=raw, headers={"x-line-signature": sign(SECRET, raw)})
    assert 400 <= status < 500, body
    assert body["error"]["code"] in ("invalid_encoding", "invalid_webhook")
