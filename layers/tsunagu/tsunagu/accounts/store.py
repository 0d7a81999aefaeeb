"""The account store: accounts, their API key hash and settings, and the profile workers read."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from tsunagu import keys
from tsunagu.accounts.profile import AccountProfile
from tsunagu.errors import Conflict, NotFound
from tsunagu.infrastructure.dynamodb import Repository, condition_failed, from_item, to_item

if TYPE_CHECKING:
    from tsunagu.accounts.domain import Account, AccountSettings


class DynamoAccountStore(Repository):
    def __init__(self, table: str):
        self.table = table

    def account_auth(self, account_id: str) -> tuple[str, dict[str, Any]] | None:
        """(API key hash, stored settings map) of an account, or None."""
        r = self.db.get_item(
            TableName=self.table,
            Key=to_item(keys.account(account_id)),
            ProjectionExpression="api_key_hash, settings",
        )
        if "Item" not in r:
            return None
        d = from_item(r["Item"])
        return str(d.get("api_key_hash", "")), dict(d.get("settings") or {})

    def create(self, account: Account, api_key_hash: str) -> None:
        created = account.created_at.isoformat()
        item = {
            **keys.account(account.account_id),
            **keys.account_index(account.account_id, created),
            "entity": "account",
            "account_id": account.account_id,
            "settings": account.settings.model_dump(mode="json"),
            "api_key_hash": api_key_hash,
            "channel_configured": False,
            "created_at": created,
            "updated_at": account.updated_at.isoformat(),
            "version": account.version,
        }
        try:
            self.db.put_item(TableName=self.table, Item=to_item(item), ConditionExpression="attribute_not_exists(PK)")
        except ClientError as e:
            if condition_failed(e):
                raise Conflict("account already exists", code="account_exists") from None
            raise

    def get(self, account_id: str) -> tuple[Account, str] | None:
        r = self.db.get_item(TableName=self.table, Key=to_item(keys.account(account_id)), ConsistentRead=True)
        if "Item" not in r:
            return None
        d = from_item(r["Item"])
        return _account(d), d["api_key_hash"]

    def update_settings(self, account_id: str, settings: AccountSettings, expected_version: int) -> Account:
        now = datetime.now(UTC).isoformat()
        try:
            r = self.db.update_item(
                TableName=self.table,
                Key=to_item(keys.account(account_id)),
                UpdateExpression="SET #s = :s, updated_at = :now, version = version + :one",
                ConditionExpression="attribute_exists(PK) AND version = :v",
                ExpressionAttributeNames={"#s": "settings"},
                ExpressionAttributeValues=to_item(
                    {":s": settings.model_dump(mode="json"), ":now": now, ":one": 1, ":v": expected_version}
                ),
                ReturnValues="ALL_NEW",
            )
        except ClientError as e:
            if condition_failed(e):
                raise Conflict(
                    "the account changed while it was being updated; read it again and retry",
                    code="concurrent_update",
                ) from None
            raise
        return _account(from_item(r["Attributes"]))

    def mark_channel_configured(self, account_id: str) -> None:
        try:
            self.db.update_item(
                TableName=self.table,
                Key=to_item(keys.account(account_id)),
                UpdateExpression="SET channel_configured = :t, updated_at = :now",
                ConditionExpression="attribute_exists(PK)",
                ExpressionAttributeValues=to_item({":t": True, ":now": datetime.now(UTC).isoformat()}),
            )
        except ClientError as e:
            if condition_failed(e):
                raise NotFound("account not found") from None
            raise

    def profile(self, account_id: str) -> AccountProfile | None:
        """The settings workers need, without pydantic (validated when the API stored them)."""
        r = self.db.get_item(
            TableName=self.table,
            Key=to_item(keys.account(account_id)),
            ProjectionExpression="account_id, settings",
        )
        if "Item" not in r:
            return None
        d = from_item(r["Item"])
        return AccountProfile.from_settings(d["account_id"], d.get("settings") or {})

    def list_ids(self) -> list[str]:
        ids: list[str] = []
        kwargs: dict[str, Any] = {
            "TableName": self.table,
            "IndexName": "GSI1",
            "KeyConditionExpression": "GSI1PK = :pk",
            "ExpressionAttributeValues": to_item({":pk": keys.ACCOUNTS_INDEX_PK}),
            "ProjectionExpression": "account_id",
        }
        while True:
            r = self.db.query(**kwargs)
            ids += [from_item(i)["account_id"] for i in r.get("Items", [])]
            if "LastEvaluatedKey" not in r:
                return ids
            kwargs["ExclusiveStartKey"] = r["LastEvaluatedKey"]


def _account(d: dict[str, Any]) -> Account:
    # pydantic is imported only where an API needs the full, validated model.
    from tsunagu.accounts.domain import Account, AccountSettings

    return Account(
        account_id=d["account_id"],
        settings=AccountSettings.model_validate(d["settings"]),
        channel_configured=bool(d.get("channel_configured")),
        created_at=datetime.fromisoformat(d["created_at"]),
        updated_at=datetime.fromisoformat(d["updated_at"]),
        version=int(d.get("version", 1)),
    )
