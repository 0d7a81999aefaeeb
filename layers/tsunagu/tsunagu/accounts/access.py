"""Who a request is: the ``Authorization: Bearer`` API key check, shared by the resolver API
(``AccountService.authenticate``, which then loads the validated account) and the lean functions
(``check_api_key``, no pydantic: the register's redemption call). A key opens exactly one
account: a missing or wrong key is 401, another account's resource is 404, so a key cannot
probe which accounts exist."""

from __future__ import annotations

from typing import Any, Protocol

from tsunagu.accounts.ids import api_key_account, api_key_matches
from tsunagu.errors import NotFound, Unauthorized


class AccountKeys(Protocol):
    def account_auth(self, account_id: str) -> tuple[str, dict[str, Any]] | None:
        """(API key hash, stored settings map) of an account, or None."""
        ...


def bearer_token(authorization: str | None) -> str | None:
    if not authorization:
        return None
    scheme, _, token = authorization.partition(" ")
    return token.strip() or None if scheme.lower() == "bearer" else None


def key_and_account(authorization: str | None) -> tuple[str, str]:
    """The bearer key and the account id it names; 401 when missing or malformed."""
    token = bearer_token(authorization)
    key_account = api_key_account(token) if token else None
    if not token or not key_account:
        raise Unauthorized("missing or malformed API key")
    return token, key_account


def require_key(token: str, stored_hash: str | None, key_account: str, account_id: str) -> None:
    """401 unless the key matches its account's stored hash; 404 when that is not ``account_id``."""
    if stored_hash is None or not api_key_matches(token, stored_hash):
        raise Unauthorized("invalid API key")
    if key_account != account_id:
        raise NotFound("account not found")


def check_api_key(keys: AccountKeys, authorization: str | None, account_id: str) -> dict[str, Any]:
    """The lean check: returns the account's stored settings map."""
    token, key_account = key_and_account(authorization)
    found = keys.account_auth(key_account)
    require_key(token, found[0] if found else None, key_account, account_id)
    assert found is not None  # require_key refused otherwise
    return found[1]
