"""Accounts: creation by the platform operator, per-account API keys, settings, channel
credentials. A key opens exactly one account: wrong or missing key is 401, another account's
resource is 404 (so keys cannot probe which accounts exist)."""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from datetime import UTC, datetime

from tsunagu.accounts.access import bearer_token, key_and_account, require_key
from tsunagu.accounts.domain import Account, AccountSettings, AccountSettingsPatch
from tsunagu.accounts.ids import (
    hash_api_key,
    is_account_id,
    new_account_id,
    new_api_key,
)
from tsunagu.accounts.ports import AccountStore, ChannelSecrets
from tsunagu.errors import Unauthorized


@dataclass
class AccountService:
    store: AccountStore
    secrets: ChannelSecrets

    def check_operator(self, authorization: str | None, operator_key: str | None) -> None:
        token = bearer_token(authorization)
        if not token or not operator_key or not hmac.compare_digest(token.encode(), operator_key.encode()):
            raise Unauthorized("a valid platform operator key is required")

    def create(self, settings: AccountSettings) -> tuple[Account, str]:
        now = datetime.now(UTC)
        account = Account(account_id=new_account_id(), settings=settings, created_at=now, updated_at=now)
        api_key = new_api_key(account.account_id)
        self.store.create(account, hash_api_key(api_key))
        return account, api_key

    def authenticate(self, authorization: str | None, account_id: str) -> Account:
        """The account ``authorization`` opens, if it is ``account_id``."""
        token, key_account = key_and_account(authorization)
        found = self.store.get(key_account)
        require_key(token, found[1] if found else None, key_account, account_id)
        assert found is not None  # require_key refused otherwise
        return found[0]

    def update(self, account: Account, patch: AccountSettingsPatch) -> Account:
        return self.store.update_settings(account.account_id, patch.apply_to(account.settings), account.version)

    def put_channel(self, account: Account, channel_secret: str, access_token: str) -> None:
        self.secrets.put(account.account_id, channel_secret, access_token)
        self.store.mark_channel_configured(account.account_id)

    def exists(self, account_id: str) -> bool:
        return is_account_id(account_id) and self.store.get(account_id) is not None
