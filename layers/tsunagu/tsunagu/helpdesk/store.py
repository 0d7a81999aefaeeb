"""DynamoDB for the help desk: the FAQ, the settings (hours), one conversation item per LINE
user written only on the version it was read at (so two workers cannot both move it), the
operator queue on GSI1 (present only while a conversation waits), and the day's counters (ADD)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from botocore.exceptions import ClientError

from tsunagu import keys
from tsunagu.helpdesk.domain import QUEUED, WAITING, Conversation
from tsunagu.helpdesk.retrieval import FaqEntry
from tsunagu.infrastructure.dynamodb import Repository, condition_failed, from_item, to_item


class DynamoHelpdeskStore(Repository):
    def __init__(self, table: str):
        self.table = table

    # -- FAQ -----------------------------------------------------------------------------
    def put_faq(self, account_id: str, entries: list[FaqEntry], replace_all: bool) -> int:
        """Upsert entries; ``replace_all`` also deletes the entries not in ``entries``."""
        keep = {e.faq_id for e in entries}
        deletes = [e.faq_id for e in self.faq(account_id) if replace_all and e.faq_id not in keep]
        requests: list[dict[str, Any]] = [
            {"DeleteRequest": {"Key": to_item(keys.faq_entry(account_id, fid))}} for fid in deletes
        ]
        requests += [
            {
                "PutRequest": {
                    "Item": to_item(
                        {
                            **keys.faq_entry(account_id, e.faq_id),
                            "entity": "faq",
                            "faq_id": e.faq_id,
                            "question": e.question,
                            "answer": e.answer,
                            "category": e.category or None,
                        }
                    )
                }
            }
            for e in entries
        ]
        for i in range(0, len(requests), 25):
            chunk = requests[i : i + 25]
            while chunk:
                r = self.db.batch_write_item(RequestItems={self.table: chunk})
                chunk = r.get("UnprocessedItems", {}).get(self.table, [])
        self.db.update_item(
            TableName=self.table,
            Key=to_item(keys.faq_revision(account_id)),
            UpdateExpression="SET entity = :e ADD revision :one",
            ExpressionAttributeValues=to_item({":e": "faq_revision", ":one": 1}),
        )
        return len(deletes)

    def faq_revision(self, account_id: str) -> int:
        d = self._get(keys.faq_revision(account_id))
        return int(d["revision"]) if d else 0

    def faq(self, account_id: str) -> list[FaqEntry]:
        items = self._query_pages(
            {
                "TableName": self.table,
                "KeyConditionExpression": "PK = :pk",
                "ExpressionAttributeValues": to_item({":pk": keys.faq_partition(account_id)}),
            }
        )
        return [FaqEntry(d["faq_id"], d["question"], d["answer"], d.get("category", "")) for d in items]

    # -- settings ------------------------------------------------------------------------
    def settings(self, account_id: str) -> dict[str, Any] | None:
        d = self._get(keys.helpdesk_settings(account_id), consistent=False)
        return {k: v for k, v in d.items() if k not in ("PK", "SK", "entity")} if d else None

    def put_settings(self, account_id: str, settings: dict[str, Any]) -> None:
        # DynamoDB numbers are decimals: a float (the confidence threshold) goes in by its text.
        plain = {k: Decimal(str(v)) if isinstance(v, float) else v for k, v in settings.items()}
        self.db.put_item(
            TableName=self.table,
            Item=to_item({**keys.helpdesk_settings(account_id), "entity": "helpdesk_settings", **plain}),
        )

    # -- conversations -------------------------------------------------------------------
    def conversation(self, account_id: str, user_id: str) -> tuple[Conversation, tuple[str, int] | None]:
        """The conversation and the member's last reply token (sealed) with when it was stored."""
        d = self._get(keys.conversation(account_id, user_id))
        if d is None:
            return Conversation(user_id), None
        sealed = d.get("reply_token_sealed")
        return _conversation(d), (str(sealed), int(d.get("reply_token_at_ms", 0))) if sealed else None

    def save(
        self, account_id: str, before: Conversation, after: Conversation, sealed_reply: tuple[str, int] | None = None
    ) -> bool:
        """Write ``after`` if the item is still at ``before.version``; False if it moved on."""
        item: dict[str, Any] = {
            **keys.conversation(account_id, after.user_id),
            "entity": "conversation",
            **after.view(),
            "version": after.version,
            "reply_token_sealed": sealed_reply[0] if sealed_reply else None,
            "reply_token_at_ms": sealed_reply[1] if sealed_reply else None,
        }
        if after.state in (WAITING, QUEUED):
            item.update(keys.operator_queue_entry(account_id, after.queued_at_ms, after.user_id))
        condition = "attribute_not_exists(PK)" if before.version == 0 else "version = :v"
        values = None if before.version == 0 else {":v": before.version}
        return self._put_if(item, condition, values)

    def clear_reply_token(self, account_id: str, user_id: str) -> None:
        try:
            self.db.update_item(
                TableName=self.table,
                Key=to_item(keys.conversation(account_id, user_id)),
                UpdateExpression="REMOVE reply_token_sealed, reply_token_at_ms",
                ConditionExpression="attribute_exists(PK)",
            )
        except ClientError as e:
            if not condition_failed(e):
                raise

    def queue(self, account_id: str, limit: int = 100) -> list[Conversation]:
        """Waiting and queued conversations, oldest first."""
        r = self.db.query(
            TableName=self.table,
            IndexName="GSI1",
            KeyConditionExpression="GSI1PK = :pk",
            ExpressionAttributeValues=to_item({":pk": keys.operator_queue(account_id)}),
            Limit=limit,
        )
        return [_conversation(from_item(d)) for d in r.get("Items", [])]

    # -- counters ------------------------------------------------------------------------
    def count(self, account_id: str, day: str, adds: dict[str, int]) -> None:
        names = {f"#c{i}": k for i, k in enumerate(adds)}
        values = {f":v{i}": v for i, v in enumerate(adds.values())}
        self.db.update_item(
            TableName=self.table,
            Key=to_item(keys.helpdesk_day(account_id, day)),
            UpdateExpression="SET entity = :e ADD " + ", ".join(f"#c{i} :v{i}" for i in range(len(adds))),
            ExpressionAttributeNames=names,
            ExpressionAttributeValues=to_item({**values, ":e": "helpdesk_day"}),
        )

    def counters(self, account_id: str, day: str) -> dict[str, int]:
        return self._counters(keys.helpdesk_day(account_id, day))


def _conversation(d: dict[str, Any]) -> Conversation:
    return Conversation(
        str(d["user_id"]),
        str(d.get("state", "bot")),
        int(d.get("version", 0)),
        str(d.get("question", "")),
        int(d.get("since_ms", 0)),
        int(d.get("queued_at_ms") or 0),
        int(d.get("last_activity_ms", 0)),
    )
