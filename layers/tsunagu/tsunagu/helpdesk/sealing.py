"""Sealing a LINE reply token at rest: an operator may answer with the free reply API while the
member's last reply token is valid (one minute), so the token must outlive the worker that got
it - but no token is stored in the clear. Encrypt-then-MAC with HMAC-SHA256 only (standard
library): a keystream of HMAC(key, "enc" | nonce | counter) blocks XORed with the token, and a
tag HMAC(key, "mac" | nonce | ciphertext). The key is the account's key in Secrets Manager."""

from __future__ import annotations

import base64
import hashlib
import hmac
import os


def _stream(key: bytes, nonce: bytes, n: int) -> bytes:
    out = b""
    counter = 0
    while len(out) < n:
        out += hmac.new(key, b"enc" + nonce + counter.to_bytes(4, "big"), hashlib.sha256).digest()
        counter += 1
    return out[:n]


def seal(key: bytes, text: str) -> str:
    nonce = os.urandom(16)
    data = text.encode()
    ct = bytes(a ^ b for a, b in zip(data, _stream(key, nonce, len(data)), strict=True))
    tag = hmac.new(key, b"mac" + nonce + ct, hashlib.sha256).digest()[:16]
    return base64.urlsafe_b64encode(nonce + tag + ct).decode()


def unseal(key: bytes, sealed: str) -> str | None:
    """The token, or None when the sealed value was altered or sealed with another key."""
    try:
        raw = base64.urlsafe_b64decode(sealed.encode())
    except ValueError:
        return None
    nonce, tag, ct = raw[:16], raw[16:32], raw[32:]
    if len(nonce) < 16 or not hmac.compare_digest(
        tag, hmac.new(key, b"mac" + nonce + ct, hashlib.sha256).digest()[:16]
    ):
        return None
    return bytes(a ^ b for a, b in zip(ct, _stream(key, nonce, len(ct)), strict=True)).decode(errors="replace")
