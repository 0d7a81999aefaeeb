"""Accounts API against moto: operator-only creation, per-account keys (401 / 404), settings
validation (4xx with a stable code, never 500), channel credentials only in Secrets Manager."""

from __future__ import annotations

import json

import boto3
import pytest

from tests.integration.conftest import OPERATOR_KEY, scan_all

OP = {"Authorization": f"Bearer {OPERATOR_KEY}"}
SECRET = "0123456789abcdef0123456789abcdef"
TOKEN = "tok-" + "Z" * 60


def create(api, name="生協テスト", **extra):
    status, body = api.call("POST", "/accounts", {"name": name, **extra}, OP)
    assert status == 201, body
    return body["account_id"], {"Authorization": f"Bearer {body['api_key']}"}, body


def test_operator_creates_an_account_and_gets_its_key_once(api, stack):
    aid, auth, body = create(api, plan="light")
    assert body["settings"]["plan"] == "light"
    assert body["api_key"].startswith(f"tsk_{aid}_")
    status, got = api.call("GET", f"/accounts/{aid}", headers=auth)
    assert status == 200
    assert "api_key" not in got and "api_key_hash" not in got
    # Only a hash of the key is stored.
    dump = json.dumps(scan_all(stack))
    assert body["api_key"] not in dump


@pytest.mark.parametrize("headers", [{}, {"Authorization": "Bearer wrong"}, {"Authorization": OPERATOR_KEY}])
def test_creating_an_account_needs_the_operator_key(api, stack, headers):
    status, body = api.call("POST", "/accounts", {"name": "x"}, headers)
    assert status == 401
    assert body["error"]["code"] == "unauthorized"
    assert scan_all(stack) == []


def test_invalid_settings_on_create_are_422_with_a_stable_code_and_nothing_written(api, stack):
    status, body = api.call("POST", "/accounts", {"name": "x", "plan": "gold"}, OP)
    assert status == 422
    assert body["error"]["code"] == "validation_failed"
    assert any("plan" in d["loc"] for d in body["error"]["details"])
    assert scan_all(stack) == []


def test_malformed_json_is_400(api):
    status, body = api.call("POST", "/accounts", raw=b"{not json", headers=OP)
    assert status == 400
    assert body["error"]["code"] == "invalid_json"


@pytest.mark.parametrize(
    "authorization",
    [None, "Bearer ", "Basic abc", "Bearer tsk_acct_0000000000000000_" + "A" * 43, "Bearer garbage"],
)
def test_missing_or_wrong_key_is_401(api, authorization):
    aid, _, _ = create(api)
    headers = {"Authorization": authorization} if authorization is not None else {}
    status, body = api.call("GET", f"/accounts/{aid}", headers=headers)
    assert status == 401
    assert body["error"]["code"] == "unauthorized"


def test_a_key_is_401_when_its_secret_part_is_wrong(api):
    aid, auth, _ = create(api)
    key = auth["Authorization"][7:]
    forged = key[:-2] + ("AA" if not key.endswith("AA") else "BB")
    assert api.call("GET", f"/accounts/{aid}", headers={"Authorization": f"Bearer {forged}"})[0] == 401


def test_another_accounts_resource_is_404(api):
    _a, auth_a, _ = create(api, name="A")
    b, _, _ = create(api, name="B")
    for method, path, body in [
        ("GET", f"/accounts/{b}", None),
        ("PATCH", f"/accounts/{b}", {"plan": "light"}),
        ("PUT", f"/accounts/{b}/channel", {"channel_secret": SECRET, "access_token": TOKEN}),
        ("GET", f"/accounts/{b}/friends", None),
    ]:
        status, out = api.call(method, path, body, auth_a)
        assert status == 404, (method, path, out)
        assert out["error"]["code"] == "not_found"


def test_patch_changes_settings_and_bad_values_change_nothing(api):
    aid, auth, _ = create(api)
    status, body = api.call(
        "PATCH",
        f"/accounts/{aid}",
        {"greeting": "ようこそ", "account_type": "verified", "certified_provider": True},
        auth,
    )
    assert status == 200
    assert body["settings"]["greeting"] == "ようこそ"
    assert body["settings"]["account_type"] == "verified"
    status, body = api.call("PATCH", f"/accounts/{aid}", {"greeting": "x", "plan": "platinum"}, auth)
    assert status == 422
    _, now = api.call("GET", f"/accounts/{aid}", headers=auth)
    assert now["settings"]["greeting"] == "ようこそ"


def test_patch_with_unknown_field_is_refused(api):
    aid, auth, _ = create(api)
    status, body = api.call("PATCH", f"/accounts/{aid}", {"api_key_hash": "x"}, auth)
    assert status == 422
    assert body["error"]["code"] == "validation_failed"


def test_channel_credentials_go_to_secrets_manager_never_the_table_or_logs(api, stack, capsys):
    aid, auth, _ = create(api)
    status, _body = api.call("PUT", f"/accounts/{aid}/channel", {"channel_secret": SECRET, "access_token": TOKEN}, auth)
    assert status == 200
    stored = boto3.client("secretsmanager").get_secret_value(SecretId=f"tsunagu/dev/accounts/{aid}/channel")
    assert json.loads(stored["SecretString"]) == {"channelSecret": SECRET, "accessToken": TOKEN}
    dump = json.dumps(scan_all(stack))
    assert SECRET not in dump and TOKEN not in dump
    _, got = api.call("GET", f"/accounts/{aid}", headers=auth)
    assert got["channel_configured"] is True
    # Rotating the credentials overwrites the secret.
    new_secret = "f" * 32
    api.call("PUT", f"/accounts/{aid}/channel", {"channel_secret": new_secret, "access_token": TOKEN}, auth)
    stored = boto3.client("secretsmanager").get_secret_value(SecretId=f"tsunagu/dev/accounts/{aid}/channel")
    assert json.loads(stored["SecretString"])["channelSecret"] == new_secret
    out = capsys.readouterr()
    assert SECRET not in out.out + out.err and TOKEN not in out.out + out.err


def test_invalid_channel_credentials_are_422_and_do_not_echo_the_input(api):
    aid, auth, _ = create(api)
    status, body = api.call(
        "PUT", f"/accounts/{aid}/channel", {"channel_secret": "NOT-HEX-SECRET-VALUE", "access_token": TOKEN}, auth
    )
    assert status == 422
    assert "NOT-HEX-SECRET-VALUE" not in json.dumps(body)
    assert TOKEN not in json.dumps(body)


def test_a_malformed_user_id_is_422_not_a_500(api):
    aid, auth, _ = create(api)
    status, _ = api.call("GET", f"/accounts/{aid}/friends/not-a-user-id", headers=auth)
    assert status == 422


def test_openapi_document_is_served(api):
    status, doc = api.call("GET", "/openapi.json")
    assert status == 200
    assert "/accounts" in doc["paths"]


def test_a_form_encoded_body_is_415_not_a_validation_error(api, stack):
    status, body = api.call(
        "POST", "/accounts", raw=b'{"name": "x"}', headers={**OP, "content-type": "application/x-www-form-urlencoded"}
    )
    assert status == 415
    assert body["error"]["code"] == "unsupported_media_type"
    assert scan_all(stack) == []


def test_a_json_body_without_content_type_is_accepted(api):
    status, _ = api.call("POST", "/accounts", raw=b'{"name": "x"}', headers={**OP, "content-type": ""})
    assert status == 201


def test_settings_that_cannot_be_stored_or_used_are_422(api, stack):
    """Found in review: each of these was a 500."""
    _, body = api.call("POST", "/accounts", {"name": "shop"}, {"Authorization": f"Bearer {OPERATOR_KEY}"})
    aid, auth = body["account_id"], {"Authorization": f"Bearer {body['api_key']}"}
    rule = {"keywords": ["k" * 100] * 50, "reply": "r" * 5000}
    cases = [
        {"name": None},
        {"plan": None},
        {"forward_urls": ["https://[::1"]},
        {"auto_responses": [rule] * 100},  # ~3 MB: more than one DynamoDB item holds
    ]
    for patch in cases:
        status, out = api.call("PATCH", f"/accounts/{aid}", patch, auth)
        assert (status, out["error"]["code"]) == (422, "validation_failed"), list(patch)
    status, out = api.call("GET", f"/accounts/{aid}/chats?until=9999-12-31", headers=auth)
    assert (status, out["error"]["code"]) == (422, "invalid_date")
