"""DynamoDB for the console: staff members, invitations, sessions, failed logins and the staff
audit trail (``docs/data-model.md``). Tokens are stored only as SHA-256 hashes."""

from __future__ import annotations

import time
import uuid
from typing import Any

from tsunagu import keys
from tsunagu.console.domain import ABSOLUTE_SECONDS, Session, Staff
from tsunagu.infrastructure.dynamodb import Repository, from_item, to_item


def _staff(d: dict[str, Any]) -> Staff:
    return Staff(
        account_id=str(d["account_id"]),
        staff_id=str(d["staff_id"]),
        email=str(d["email"]),
        name=str(d.get("name", "")),
        scopes=frozenset(d.get("scopes") or ()),
        status=str(d["status"]),
        password_hash=d.get("password_hash"),
        created_at_ms=int(d.get("created_at_ms", 0)),
        invited_by=str(d.get("invited_by", "")),
    )


class DynamoStaffStore(Repository):
    def __init__(self, table: str):
        self.table = table

    # -- staff ---------------------------------------------------------------------------
    def put_staff(self, staff: Staff, *, new: bool) -> bool:
        item = {
            **keys.staff(staff.account_id, staff.staff_id),
            "entity": "staff",
            "account_id": staff.account_id,
            "staff_id": staff.staff_id,
            "email": staff.email,
            "name": staff.name,
            "scopes": sorted(staff.scopes),
            "status": staff.status,
            "password_hash": staff.password_hash,
            "created_at_ms": staff.created_at_ms,
            "invited_by": staff.invited_by,
        }
        if new:
            return self._put_if(item, "attribute_not_exists(PK)")
        self.db.put_item(TableName=self.table, Item=to_item(item))
        return True

    def get_staff(self, account_id: str, staff_id: str) -> Staff | None:
        d = self._get(keys.staff(account_id, staff_id))
        return _staff(d) if d else None

    def list_staff(self, account_id: str) -> list[Staff]:
        rows = self._query_pages(
            {
                "TableName": self.table,
                "KeyConditionExpression": "PK = :pk AND begins_with(SK, :p)",
                "ExpressionAttributeValues": to_item(
                    {":pk": keys.account_partition(account_id), ":p": keys.STAFF_SK_PREFIX}
                ),
            }
        )
        return sorted((_staff(r) for r in rows), key=lambda s: s.created_at_ms)

    # -- invitations ---------------------------------------------------------------------
    def put_invite(self, account_id: str, token_hash: str, staff_id: str, expires_s: int) -> None:
        item = {
            **keys.staff_invite(account_id, token_hash),
            "entity": "staff_invite",
            "staff_id": staff_id,
            "expires_at": expires_s,
        }
        self.db.put_item(TableName=self.table, Item=to_item(item))

    def take_invite(self, account_id: str, token_hash: str, now_s: int) -> str | None:
        from botocore.exceptions import ClientError

        from tsunagu.infrastructure.dynamodb import condition_failed

        try:
            r = self.db.delete_item(
                TableName=self.table,
                Key=to_item(keys.staff_invite(account_id, token_hash)),
                ConditionExpression="attribute_exists(PK) AND expires_at > :now",
                ExpressionAttributeValues=to_item({":now": now_s}),
                ReturnValues="ALL_OLD",
            )
        except ClientError as e:
            if condition_failed(e):
                return None
            raise
        return str(from_item(r["Attributes"])["staff_id"])

    # -- sessions ------------------------------------------------------------------------
    def put_session(self, token_hash: str, session: Session) -> None:
        item = {
            **keys.console_session(session.account_id, token_hash),
            "entity": "console_session",
            "staff_id": session.staff_id,
            "name": session.name,
            "email": session.email,
            "scopes": sorted(session.scopes),
            "created_s": session.created_s,
            "seen_s": session.seen_s,
            "expires_at": session.created_s + ABSOLUTE_SECONDS,
        }
        self.db.put_item(TableName=self.table, Item=to_item(item))

    def get_session(self, account_id: str, token_hash: str) -> Session | None:
        d = self._get(keys.console_session(account_id, token_hash))
        if d is None:
            return None
        return Session(
            account_id=account_id,
            staff_id=str(d["staff_id"]),
            name=str(d.get("name", "")),
            email=str(d.get("email", "")),
            scopes=frozenset(d.get("scopes") or ()),
            created_s=int(d["created_s"]),
            seen_s=int(d["seen_s"]),
        )

    def touch_session(self, account_id: str, token_hash: str, seen_s: int) -> None:
        from botocore.exceptions import ClientError

        from tsunagu.infrastructure.dynamodb import condition_failed

        try:
            self.db.update_item(
                TableName=self.table,
                Key=to_item(keys.console_session(account_id, token_hash)),
                UpdateExpression="SET seen_s = :s",
                ConditionExpression="attribute_exists(PK)",  # never revive a logged-out session
                ExpressionAttributeValues=to_item({":s": seen_s}),
            )
        except ClientError as e:
            if not condition_failed(e):
                raise

    def delete_session(self, account_id: str, token_hash: str) -> None:
        self.db.delete_item(TableName=self.table, Key=to_item(keys.console_session(account_id, token_hash)))

    # -- failed logins -------------------------------------------------------------------
    def login_failures(self, account_id: str, staff_id: str, window: int) -> int:
        d = self._get(keys.console_login_attempts(account_id, staff_id, window))
        return int(d.get("count", 0)) if d else 0

    def add_login_failure(self, account_id: str, staff_id: str, window: int, expires_s: int) -> int:
        r = self.db.update_item(
            TableName=self.table,
            Key=to_item(keys.console_login_attempts(account_id, staff_id, window)),
            UpdateExpression="ADD #c :one SET expires_at = :exp, entity = :e",
            ExpressionAttributeNames={"#c": "count"},
            ExpressionAttributeValues=to_item({":one": 1, ":exp": expires_s, ":e": "console_login_attempts"}),
            ReturnValues="UPDATED_NEW",
        )
        return int(from_item(r["Attributes"])["count"])

    # -- audit ---------------------------------------------------------------------------
    def audit(self, account_id: str, entry: dict[str, Any]) -> None:
        at_ms = int(entry.get("at_ms") or time.time() * 1000)
        item = {**keys.staff_audit(account_id, at_ms, uuid.uuid4().hex), "entity": "staff_audit", **entry}
        item["at_ms"] = at_ms
        self.db.put_item(TableName=self.table, Item=to_item(item))

    def audit_trail(self, account_id: str, limit: int = 100) -> list[dict[str, Any]]:
        r = self.db.query(
            TableName=self.table,
            KeyConditionExpression="PK = :pk",
            ExpressionAttributeValues=to_item({":pk": keys.staff_audit_partition(account_id)}),
            ScanIndexForward=False,
            Limit=limit,
        )
        return [{k: v for k, v in from_item(i).items() if k not in ("PK", "SK", "entity")} for i in r.get("Items", [])]
