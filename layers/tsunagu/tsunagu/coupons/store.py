"""Coupons in the single table: definitions, grants (the lottery outcome, drawn once), grant
references for redemption codes, redemptions with the POS's idempotency key, and counters.

Every state change that must happen at most once is one conditional write or one
TransactWriteItems (R-CPN-5: the grant item is the uniqueness item per coupon and person)."""

from __future__ import annotations

from typing import Any

from tsunagu import keys
from tsunagu.infrastructure.dynamodb import Repository, from_item, to_item, update_op

REDEEMABLE = ("granted", "won")


class DynamoCouponStore(Repository):
    def __init__(self, table: str):
        self.table = table

    # -- account reads without pydantic (the lean redemption and page functions) -------------
    # -- definitions -----------------------------------------------------------------------
    def put_coupon(self, account_id: str, record: dict[str, Any], expected_version: int | None = None) -> bool:
        """A new coupon (``expected_version=None``) or a change of the version read."""
        item = {**keys.coupon(account_id, record["coupon_id"]), "entity": "coupon", **record}
        if expected_version is None:
            return self._put_if(item, "attribute_not_exists(PK)")
        return self._put_if(item, "version = :v", {":v": expected_version})

    def coupon(self, account_id: str, coupon_id: str) -> dict[str, Any] | None:
        return self._get(keys.coupon(account_id, coupon_id))

    def _query_all(self, **kwargs: Any) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        while True:
            r = self.db.query(TableName=self.table, **kwargs)
            out += [from_item(i) for i in r.get("Items", [])]
            if "LastEvaluatedKey" not in r:
                return out
            kwargs["ExclusiveStartKey"] = r["LastEvaluatedKey"]

    def coupons(self, account_id: str) -> list[dict[str, Any]]:
        return self._query_all(
            KeyConditionExpression="PK = :pk AND begins_with(SK, :sk)",
            ExpressionAttributeValues=to_item(
                {":pk": keys.account_partition(account_id), ":sk": keys.COUPON_SK_PREFIX}
            ),
        )

    def counts(self, account_id: str, coupon_id: str) -> dict[str, int]:
        return self._counters(keys.coupon_counts(account_id, coupon_id))

    # -- grants ----------------------------------------------------------------------------
    def grant(self, account_id: str, coupon_id: str, user_id: str) -> dict[str, Any] | None:
        return self._get(keys.coupon_grant(account_id, coupon_id, user_id))

    def next_serial(self, account_id: str) -> int:
        r = self.db.update_item(
            TableName=self.table,
            Key=to_item(keys.grant_serials(account_id)),
            UpdateExpression="ADD serial :one SET entity = :e",
            ExpressionAttributeValues=to_item({":one": 1, ":e": "grant_serials"}),
            ReturnValues="UPDATED_NEW",
        )
        return int(from_item(r["Attributes"])["serial"])

    def add_grant(self, account_id: str, record: dict[str, Any], winner_cap: int | None = None) -> bool:
        """Store a grant once: the grant (must not exist), its code reference when it can be
        redeemed, and the counters. A lottery winner takes a slot with a conditional ADD
        (``winners < cap``) in the same transaction, so the cap holds under concurrency.
        False when the person already has the grant or the cap is full (the caller re-reads)."""
        cid, user = record["coupon_id"], record["user_id"]
        status = record["status"]
        items: list[dict[str, Any]] = [
            {
                "Put": {
                    "TableName": self.table,
                    "Item": to_item({**keys.coupon_grant(account_id, cid, user), "entity": "coupon_grant", **record}),
                    "ConditionExpression": "attribute_not_exists(PK)",
                }
            }
        ]
        if record.get("ref"):
            items.append(
                {
                    "Put": {
                        "TableName": self.table,
                        "Item": to_item(
                            {
                                **keys.grant_ref(account_id, record["ref"]),
                                "entity": "grant_ref",
                                "coupon_id": cid,
                                "user_id": user,
                            }
                        ),
                        "ConditionExpression": "attribute_not_exists(PK)",
                    }
                }
            )
        update: dict[str, Any] = {
            "TableName": self.table,
            "Key": to_item(keys.coupon_counts(account_id, cid)),
            "UpdateExpression": "ADD #s :one SET entity = :e",
            "ExpressionAttributeNames": {"#s": status},
            "ExpressionAttributeValues": to_item({":one": 1, ":e": "coupon_counts"}),
        }
        if status == "won" and winner_cap is not None:
            update["ConditionExpression"] = "attribute_not_exists(#s) OR #s < :cap"
            update["ExpressionAttributeValues"] = to_item({":one": 1, ":e": "coupon_counts", ":cap": winner_cap})
        items.append({"Update": update})
        return self._transact_once(items)

    def by_ref(self, account_id: str, ref: str) -> dict[str, Any] | None:
        return self._get(keys.grant_ref(account_id, ref), consistent=False)

    # -- redemptions -----------------------------------------------------------------------
    def redemption_request(self, account_id: str, key_hash: str) -> dict[str, Any] | None:
        return self._get(keys.redemption_request(account_id, key_hash))

    def redeem(
        self,
        account_id: str,
        key_hash: str,
        fingerprint: str,
        redemption: dict[str, Any],
        day: str,
        per_person_limit: int,
        total_cap: int | None,
    ) -> bool:
        """One transaction, all or nothing: the idempotency item (new key only) holding the
        result, one more use on the person's grant (``uses < limit`` and still redeemable:
        R-CPN-5 across every store and register), the redemption, and the counter (``redeemed
        < total_cap``). False when any condition failed."""
        cid, user = redemption["coupon_id"], redemption["user_id"]
        counter: dict[str, Any] = {
            "TableName": self.table,
            "Key": to_item(keys.coupon_counts(account_id, cid)),
            "UpdateExpression": "ADD redeemed :one SET entity = :e",
            "ExpressionAttributeValues": to_item({":one": 1, ":e": "coupon_counts"}),
        }
        if total_cap is not None:
            counter["ConditionExpression"] = "attribute_not_exists(redeemed) OR redeemed < :cap"
            counter["ExpressionAttributeValues"] = to_item({":one": 1, ":e": "coupon_counts", ":cap": total_cap})
        items: list[dict[str, Any]] = [
            {
                "Put": {
                    "TableName": self.table,
                    "Item": to_item(
                        {
                            **keys.redemption_request(account_id, key_hash),
                            "entity": "redemption_request",
                            "fingerprint": fingerprint,
                            "redemption_id": redemption["redemption_id"],
                        }
                    ),
                    "ConditionExpression": "attribute_not_exists(PK)",
                }
            },
            update_op(
                self.table,
                keys.coupon_grant(account_id, cid, user),
                "ADD uses :one",
                {":one": 1, ":g": REDEEMABLE[0], ":w": REDEEMABLE[1], ":limit": per_person_limit},
                condition="attribute_exists(PK) AND #st IN (:g, :w) AND uses < :limit",
                names={"#st": "status"},
            ),
            {
                "Put": {
                    "TableName": self.table,
                    "Item": to_item(
                        {
                            **keys.redemption(account_id, redemption["redemption_id"], day),
                            "entity": "redemption",
                            **redemption,
                        }
                    ),
                    "ConditionExpression": "attribute_not_exists(PK)",
                }
            },
            {"Update": counter},
        ]
        return self._transact_once(items)

    def redemption(self, account_id: str, redemption_id: str) -> dict[str, Any] | None:
        return self._get(keys.redemption_key(account_id, redemption_id))

    def void(self, account_id: str, redemption: dict[str, Any], voided_at: int, reason: str | None) -> bool:
        """Void a redemption once and give the person's use back (R-CPN-5), in one transaction."""
        cid, user = redemption["coupon_id"], redemption["user_id"]
        return self._transact_once(
            [
                update_op(
                    self.table,
                    keys.redemption_key(account_id, redemption["redemption_id"]),
                    "SET #st = :v, voided_at = :at, void_reason = :r",
                    {":v": "voided", ":ok": "redeemed", ":at": voided_at, ":r": reason or ""},
                    condition="#st = :ok",
                    names={"#st": "status"},
                ),
                update_op(
                    self.table,
                    keys.coupon_grant(account_id, cid, user),
                    "ADD uses :minus",
                    {":minus": -1, ":zero": 0},
                    condition="uses > :zero",
                ),
                update_op(
                    self.table,
                    keys.coupon_counts(account_id, cid),
                    "ADD redeemed :minus, voided :one",
                    {":minus": -1, ":one": 1},
                ),
            ]
        )

    def redemptions(self, account_id: str, first_day: str, last_day: str) -> list[dict[str, Any]]:
        """The account's redemptions on the JST days first..last (GSI1, in day order)."""
        return self._query_all(
            IndexName="GSI1",
            KeyConditionExpression="GSI1PK = :pk AND GSI1SK BETWEEN :lo AND :hi",
            ExpressionAttributeValues=to_item(
                {":pk": keys.redemptions_index(account_id), ":lo": f"{first_day}#", ":hi": f"{last_day}#~"}
            ),
        )
