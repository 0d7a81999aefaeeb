"""ES256 LIFF ID tokens (issue 16): the verifier's refusals, and the JWKS cache (fetched once,
kept for its max-age, one rate-limited refetch for an unknown kid). Tokens are made with
joserfc, an implementation independent of tsunagu's own checks."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest
from joserfc import jws, jwt
from joserfc.jwk import ECKey, OctKey

from tsunagu.coupons import domain as c
from tsunagu.coupons.jwks import LineJwks, max_age
from tsunagu.errors import UpstreamError

NOW = datetime(2026, 12, 4, 9, 0, tzinfo=UTC)
CHANNEL, SECRET = "1600000001", "channel-secret"
KEY = ECKey.generate_key("P-256", parameters={"kid": "k1", "use": "sig", "alg": "ES256"})
PUBLIC = KEY.as_dict(private=False)


def claims(**over: Any) -> dict[str, Any]:
    t = int(NOW.timestamp())
    return {"iss": c.LINE_ISSUER, "sub": "U1", "aud": CHANNEL, "exp": t + 600, "iat": t, **over}


def es256(key: ECKey = KEY, kid: str = "k1", **over: Any) -> str:
    return jwt.encode({"typ": "JWT", "alg": "ES256", "kid": kid}, claims(**over), key)


def verify(token: str, nonce: str | None = None, keys: dict[str, dict[str, Any]] | None = None) -> dict[str, Any]:
    published = {"k1": PUBLIC} if keys is None else keys
    return c.verify_id_token(token, CHANNEL, SECRET, NOW, nonce, jwks=published.get)


def refused(token: str, **kw: Any) -> str:
    with pytest.raises(c.IdTokenError) as e:
        verify(token, **kw)
    return str(e.value.code)


def test_an_es256_token_signed_with_the_published_key_is_accepted():
    assert verify(es256())["sub"] == "U1"
    assert verify(es256(nonce="n-1"), nonce="n-1")["sub"] == "U1"


def test_es256_refusals():
    other = ECKey.generate_key("P-256")
    assert refused(es256(other)) == c.TOKEN_SIGNATURE  # another key under LINE's kid
    assert refused(es256(kid="unknown")) == c.TOKEN_SIGNATURE
    assert refused(es256(exp=int(NOW.timestamp()))) == c.TOKEN_EXPIRED
    assert refused(es256(aud="1600000002")) == c.TOKEN_AUDIENCE
    assert refused(es256(iss="https://evil.example")) == c.TOKEN_ISSUER
    assert refused(es256(nonce="n-1"), nonce="n-2") == c.TOKEN_NONCE
    assert refused(es256()[:-4] + "AAAA") == c.TOKEN_SIGNATURE
    # A P-256 key published for another use, or an RSA / symmetric key under the kid: refused.
    assert refused(es256(), keys={"k1": {**PUBLIC, "use": "enc"}}) == c.TOKEN_SIGNATURE
    assert refused(es256(), keys={"k1": {"kty": "oct", "k": "c2VjcmV0"}}) == c.TOKEN_SIGNATURE
    # Without a JWKS (the old call), ES256 is refused as before.
    with pytest.raises(c.IdTokenError) as e:
        c.verify_id_token(es256(), CHANNEL, SECRET, NOW)
    assert e.value.code == c.TOKEN_SIGNATURE


def test_alg_none_and_hs256_with_the_public_key_as_secret_are_refused():
    header = c._b64url(json.dumps({"alg": "none", "kid": "k1"}).encode())
    body = c._b64url(json.dumps(claims()).encode())
    assert refused(f"{header}.{body}.AAAA") == c.TOKEN_SIGNATURE
    # The classic confusion: MAC the token with LINE's public key (as JSON, or its x coordinate).
    for secret in (json.dumps(PUBLIC).encode(), PUBLIC["x"].encode()):
        forged = jws.serialize_compact(
            {"alg": "HS256", "kid": "k1"}, json.dumps(claims()).encode(), OctKey.import_key(secret)
        )
        assert refused(forged) == c.TOKEN_SIGNATURE
    # HS256 from web login, with the channel secret, still works.
    assert verify(c.sign_id_token(claims(), SECRET))["sub"] == "U1"


def test_max_age_is_read_from_cache_control():
    assert max_age("public, max-age=1800") == 1800
    assert max_age(None) == 3600 and max_age("no-store") == 0
    assert max_age("max-age=99999999") == 86400


class Clock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


def test_the_jwks_is_fetched_once_kept_for_its_max_age_and_refetched_once_for_a_new_kid():
    published = {"keys": [PUBLIC]}
    clock = Clock()
    cache = LineJwks(lambda: (published, "max-age=300"), clock=clock)
    assert cache.key("k1") == PUBLIC and cache.key("k1") == PUBLIC
    assert cache.fetches == 1
    clock.t += 299
    cache.key("k1")
    assert cache.fetches == 1
    clock.t += 2  # past max-age
    cache.key("k1")
    assert cache.fetches == 2
    # LINE rotates: the new kid refetches once, at once.
    new = {**ECKey.generate_key("P-256", parameters={"kid": "k2"}).as_dict(private=False)}
    published["keys"] = [PUBLIC, new]
    assert cache.key("k2") == new and cache.fetches == 3
    # Made-up kids do not hammer LINE: no further refetch within the interval.
    for i in range(50):
        assert cache.key(f"bogus{i}") is None
    assert cache.fetches == 3
    clock.t += 61
    cache.key("bogus-later")
    assert cache.fetches == 4


def test_a_failed_fetch_keeps_the_keys_held_but_fails_with_none_held():
    calls = {"n": 0}

    def fetch() -> tuple[dict[str, Any], str | None]:
        calls["n"] += 1
        if calls["n"] > 1:
            raise UpstreamError("LINE is down")
        return {"keys": [PUBLIC]}, "max-age=10"

    clock = Clock()
    cache = LineJwks(fetch, clock=clock)
    assert cache.key("k1") == PUBLIC
    clock.t += 11
    assert cache.key("k1") == PUBLIC  # stale, but LINE is unreachable
    with pytest.raises(UpstreamError):
        LineJwks(lambda: (_ for _ in ()).throw(UpstreamError("down")), clock=clock).key("k1")
