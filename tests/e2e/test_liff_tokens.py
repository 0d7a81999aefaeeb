"""LIFF ID tokens on the coupon page, end to end (issue 16): the LINE sandbox publishes a JWKS at
LINE's path (``/oauth2/v2.1/certs``) and issues ES256 tokens as ``liff.getIDToken()`` does; the
coupon page accepts them as ``Authorization: Bearer`` beside LINE Login's HS256 cookie, refuses one
signed by another key, follows a key rotation, and does not refetch the JWKS per request."""

from __future__ import annotations

import time
import uuid
from typing import Any

import pytest
from joserfc import jwt
from joserfc.jwk import ECKey

from tests.e2e.conftest import RunningStack
from tests.e2e.test_coupons import grant, new_coupon, setup_account
from tsunagu.coupons import domain as c
from tsunagu_local.client import request

pytestmark = pytest.mark.e2e


def liff_token(stack: RunningStack, acct: dict[str, Any], user: str, **over: Any) -> str:
    doc = {"channelId": acct["login"]["channelId"], "userId": user, **over}
    r = request("POST", f"{stack.sandbox}/_sandbox/liff/id-token", doc)
    assert r.status == 200, r.text
    return str(r.json["idToken"])


def code_page(stack: RunningStack, acct: dict[str, Any], cid: str, token: str) -> Any:
    url = f"{stack.api}/coupon/{acct['aid']}/code?c={cid}"
    return request("GET", url, headers={"Authorization": f"Bearer {token}"})


def liff_state(stack: RunningStack) -> dict[str, Any]:
    return request("GET", f"{stack.sandbox}/_sandbox/liff").json  # type: ignore[no-any-return]


def test_an_es256_token_from_the_sandboxs_jwks_is_accepted_and_another_keys_refused(local_stack: RunningStack):
    stack, user = local_stack, "U" + uuid.uuid4().hex
    acct = setup_account(stack, user)
    cid = new_coupon(stack, acct)
    grant(stack, acct, cid, user)
    r = code_page(stack, acct, cid, liff_token(stack, acct, user))
    assert r.status == 200, r.text
    assert r.json.get("qr_payload")
    # Another key, under the kid LINE publishes: the signature fails.
    kid = liff_state(stack)["kids"][-1]
    now = int(time.time())
    claims = {"iss": c.LINE_ISSUER, "sub": user, "aud": acct["login"]["channelId"], "exp": now + 600, "iat": now}
    forged = jwt.encode({"alg": "ES256", "kid": kid}, claims, ECKey.generate_key("P-256"))
    r = code_page(stack, acct, cid, forged)
    assert (r.status, r.json["error"]["code"]) == (401, c.TOKEN_SIGNATURE)
    # Expired, and for another channel: refused with their codes.
    r = code_page(stack, acct, cid, liff_token(stack, acct, user, expSeconds=-1))
    assert (r.status, r.json["error"]["code"]) == (401, c.TOKEN_EXPIRED)
    other = request("POST", f"{stack.sandbox}/_sandbox/login-channels", {"userId": user}).json
    r = code_page(stack, acct, cid, liff_token(stack, {"login": other}, user))
    assert (r.status, r.json["error"]["code"]) == (401, c.TOKEN_AUDIENCE)
    # The web-login HS256 cookie still works beside it.
    hs = c.sign_id_token(claims, acct["login"]["channelSecret"])
    r = request("GET", f"{stack.api}/coupon/{acct['aid']}/code?c={cid}", headers={"Cookie": f"tsunagu_coupon={hs}"})
    assert r.status == 200, r.text


def test_a_key_rotation_is_followed_and_the_jwks_is_not_fetched_per_request(local_stack: RunningStack):
    stack, user = local_stack, "U" + uuid.uuid4().hex
    acct = setup_account(stack, user)
    cid = new_coupon(stack, acct)
    grant(stack, acct, cid, user)
    assert code_page(stack, acct, cid, liff_token(stack, acct, user)).status == 200
    before = liff_state(stack)["certsFetches"]
    for _ in range(3):
        assert code_page(stack, acct, cid, liff_token(stack, acct, user)).status == 200
    assert liff_state(stack)["certsFetches"] == before  # cached for its max-age
    request("POST", f"{stack.sandbox}/_sandbox/liff/rotate", {"dropOld": True})
    r = code_page(stack, acct, cid, liff_token(stack, acct, user))  # a kid tsunagu has not seen
    assert r.status == 200, r.text
    assert liff_state(stack)["certsFetches"] == before + 1  # one refetch for the new kid
