"""Account ids and API keys. Kept free of pydantic so the webhook intake can check an id
without importing it (cold start; see docs/benchmarks.md)."""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets

ACCOUNT_ID_RE = re.compile(r"^acct_[0-9a-f]{16}$")
API_KEY_RE = re.compile(r"^tsk_(acct_[0-9a-f]{16})_([A-Za-z0-9_-]{43})$")


def new_account_id() -> str:
    return "acct_" + secrets.token_hex(8)


def is_account_id(value: str) -> bool:
    return bool(ACCOUNT_ID_RE.fullmatch(value))


def new_api_key(account_id: str) -> str:
    """An API key names its account, so authentication is one GetItem, never a scan."""
    return f"tsk_{account_id}_{secrets.token_urlsafe(32)}"


def hash_api_key(api_key: str) -> str:
    # The key carries 256 random bits: a fast hash is enough (no dictionary to attack).
    return hashlib.sha256(api_key.encode()).hexdigest()


def api_key_account(api_key: str) -> str | None:
    m = API_KEY_RE.fullmatch(api_key)
    return m.group(1) if m else None


def api_key_matches(api_key: str, stored_hash: str) -> bool:
    return hmac.compare_digest(hash_api_key(api_key), stored_hash)
