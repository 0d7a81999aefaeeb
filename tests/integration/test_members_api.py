"""Member register API against moto: imports with per-row errors, look-up without values,
staff unlink, and the bad inputs (4xx with stable codes, nothing half-written)."""

from __future__ import annotations

import json

import boto3

from tests.integration.conftest import OPERATOR_KEY, scan_all


def account(api):
    status, body = api.call("POST", "/accounts", {"name": "coop"}, {"Authorization": f"Bearer {OPERATOR_KEY}"})
    assert status == 201, body
    return body["account_id"], {"Authorization": f"Bearer {body['api_key']}"}


def test_import_reports_bad_rows_and_stores_no_raw_factor(api, stack):
    aid, auth = account(api)
    status, out = api.call(
        "POST",
        f"/accounts/{aid}/members",
        {
            "members": [
                {
                    "member_number": "1234567",
                    "phone": "090-1234-5678",
                    "birth_date": "19710401",
                    "password": "s3cret-pass",
                },
                {"member_number": "1234568", "phone": "not a phone"},
            ]
        },
        auth,
    )
    assert status == 200
    assert (out["imported"], out["rejected"]) == (1, 1)
    assert out["errors"][0]["code"] == "phone_format" and "not a phone" not in json.dumps(out)
    dump = json.dumps(scan_all(stack))
    assert "09012345678" not in dump and "19710401" not in dump and "s3cret-pass" not in dump
    # The per-account factor key lives in Secrets Manager.
    assert boto3.client("secretsmanager").get_secret_value(SecretId=f"tsunagu/dev/accounts/{aid}/factor-key")
    status, m = api.call("GET", f"/accounts/{aid}/members/1234567", headers=auth)
    assert status == 200
    assert m["on_file"] == {"phone": True, "birth_date": True, "email": False, "login_id": False, "password": True}


def test_padded_or_styled_factors_are_refused_by_row_and_not_stored(api, stack):
    """Issue 15 / R-LINK-1: the length of a phone number is checked as typed, before spaces and
    dashes are dropped; circled or other scripts' digits are not read as digits."""
    aid, auth = account(api)
    rows = [
        {"member_number": "1000001", "phone": "090-1234-5678" + " " * 60},
        {"member_number": "1000002", "phone": "0" + "-" * 50 + "9012345678"},
        {"member_number": "1000003", "phone": "⓪⑨⓪-①②③④-⑤⑥⑦⑧"},
        {"member_number": "1000004", "phone": "090-1234-٥٦٧٨"},
        {"member_number": "1000005", "birth_date": "①⑨⑦①⓪④⓪①"},
        {"member_number": "①⓪⓪⓪⓪⓪⑥"},
        {"member_number": "1000007", "phone": "０９０ー１２３４ー５６７８", "login_id": "ｔａｒｏ"},
    ]
    status, out = api.call("POST", f"/accounts/{aid}/members", {"members": rows}, auth)
    assert status == 200, out
    assert (out["imported"], out["rejected"]) == (1, 6)
    assert [(e["row"], e["code"]) for e in out["errors"]] == [
        (1, "phone_format"),
        (2, "phone_format"),
        (3, "phone_format"),
        (4, "phone_format"),
        (5, "birth_date_format"),
        (6, "member_number_format"),
    ]
    for mn in ("1000001", "1000002", "1000003", "1000004", "1000005"):
        assert api.call("GET", f"/accounts/{aid}/members/{mn}", headers=auth)[0] == 404
    status, m = api.call("GET", f"/accounts/{aid}/members/1000007", headers=auth)
    assert status == 200 and m["on_file"]["phone"] and m["on_file"]["login_id"]
    assert "09012345678" not in json.dumps(scan_all(stack))


def test_csv_import_over_http(api):
    aid, auth = account(api)
    csv_body = b"member_number,phone,birth_date\n1234567,09012345678,19710401\n"
    status, out = api.call(
        "POST", f"/accounts/{aid}/members/import", raw=csv_body, headers={**auth, "content-type": "text/csv"}
    )
    assert (status, out["imported"]) == (200, 1)
    status, out = api.call(
        "POST", f"/accounts/{aid}/members/import", raw=b"name,age\nx,1\n", headers={**auth, "content-type": "text/csv"}
    )
    assert (status, out["error"]["code"]) == (422, "csv_columns")
    # Shift_JIS (Excel in Japan) with full-width digits: the body is not UTF-8 and is not JSON.
    sjis = "member_number,phone,birth_date\n3456789,０９０-２２２２-３３３３,19900101\n".encode("cp932")
    status, out = api.call(
        "POST", f"/accounts/{aid}/members/import", raw=sjis, headers={**auth, "content-type": "text/csv"}
    )
    assert (status, out["imported"]) == (200, 1)
    for bad in (b"member_number,phone\r1234567,09012345678\r", b"member_number,phone\n" + b"1" * 140_000 + b",0\n"):
        status, out = api.call(
            "POST", f"/accounts/{aid}/members/import", raw=bad, headers={**auth, "content-type": "text/csv"}
        )
        assert status in (200, 422) and (status == 200 or out["error"]["code"] == "csv_format"), out


def test_empty_or_oversize_batches_are_refused_and_write_nothing(api, stack):
    aid, auth = account(api)
    before = len(scan_all(stack))
    assert api.call("POST", f"/accounts/{aid}/members", {"members": []}, auth)[0] == 422
    rows = [{"member_number": str(1000000 + i)} for i in range(1001)]
    assert api.call("POST", f"/accounts/{aid}/members", {"members": rows}, auth)[0] == 422
    assert len(scan_all(stack)) == before


def test_member_lookups_and_staff_unlink_errors(api):
    aid, auth = account(api)
    status, out = api.call("GET", f"/accounts/{aid}/members/7654321", headers=auth)
    assert (status, out["error"]["code"]) == (404, "member_not_found")
    status, _ = api.call("GET", f"/accounts/{aid}/members/bad!", headers=auth)
    assert status == 422
    status, out = api.call("POST", f"/accounts/{aid}/members/7654321/unlink", {"kind": "member", "reason": "x"}, auth)
    assert (status, out["error"]["code"]) == (404, "link_not_found")
    status, out = api.call("POST", f"/accounts/{aid}/members/7654321/unlink", {"kind": "member"}, auth)
    assert status == 422
    status, out = api.call("POST", f"/accounts/{aid}/members/7654321/unlink", {"kind": "user", "reason": "x"}, auth)
    assert (status, out["error"]["code"]) == (422, "line_id_required")


def test_another_accounts_members_are_404(api):
    aid, _ = account(api)
    _, other = account(api)
    assert api.call("GET", f"/accounts/{aid}/members", headers=other)[0] == 404
    assert api.call("POST", f"/accounts/{aid}/members", {"members": [{"member_number": "1234567"}]}, other)[0] == 404
