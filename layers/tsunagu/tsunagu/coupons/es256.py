"""ES256 (ECDSA P-256 / SHA-256) signatures of LINE's LIFF ID tokens, checked against a JWK from
LINE's JWKS (https://api.line.me/oauth2/v2.1/certs). Only the signature: every claim and header
rule is ``domain.verify_id_token``'s. Imported only when an ES256 token arrives, so the
``cryptography`` import is not paid by a function that never sees one (docs/benchmarks.md)."""

from __future__ import annotations

import base64
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

_COORD_BYTES = 32  # P-256


def _unb64(part: str) -> bytes:
    return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))


def public_key(jwk: dict[str, Any]) -> ec.EllipticCurvePublicKey | None:
    """The P-256 public key of an EC signing JWK, or None for any other kind of key (an RSA or
    symmetric key, another curve, a key for encryption or for another algorithm)."""
    if jwk.get("kty") != "EC" or jwk.get("crv") != "P-256":
        return None
    if jwk.get("alg", "ES256") != "ES256" or jwk.get("use", "sig") != "sig":
        return None
    try:
        x, y = _unb64(str(jwk["x"])), _unb64(str(jwk["y"]))
        if len(x) != _COORD_BYTES or len(y) != _COORD_BYTES:
            return None
        nums = ec.EllipticCurvePublicNumbers(int.from_bytes(x, "big"), int.from_bytes(y, "big"), ec.SECP256R1())
        return nums.public_key()
    except (KeyError, ValueError):
        return None  # not on the curve, not base64url


def verify_es256(token: str, jwk: dict[str, Any]) -> bool:
    """True when ``token``'s JWS signature (raw ``r || s``, 64 bytes, RFC 7518 3.4) is valid for
    ``jwk`` over ``header.payload``."""
    key = public_key(jwk)
    header_b64, _, rest = token.partition(".")
    payload_b64, _, sig_b64 = rest.partition(".")
    if key is None or not sig_b64:
        return False
    try:
        sig = _unb64(sig_b64)
    except ValueError:
        return False
    if len(sig) != 2 * _COORD_BYTES:
        return False
    der = encode_dss_signature(int.from_bytes(sig[:32], "big"), int.from_bytes(sig[32:], "big"))
    try:
        key.verify(der, f"{header_b64}.{payload_b64}".encode("ascii"), ec.ECDSA(hashes.SHA256()))
    except InvalidSignature:
        return False
    return True
