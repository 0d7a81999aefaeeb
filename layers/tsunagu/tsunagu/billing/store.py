"""Plans, options, quota reservations, invoices, daily usage and points in DynamoDB.

The quota is one item per account-month: a reservation is an ``ADD`` whose condition is the cap,
so concurrent sends can never pass it together (the counters of the usage ledger are sharded
because nothing is checked against them; the cap needs one place). A reservation is committed
(with its usage-ledger entry, in one transaction) or released."""

from __future__ import annotations

import time
from datetime import date
from typing import Any

from botocore.exceptions import ClientError

from tsunagu import keys
from tsunagu.billing.ports import QuotaExceeded
from tsunagu.billing.usage import DEFAULT_SHARDS, shard_of
from tsunagu.billing.usage_store import counter_update, ledger_items
from tsunagu.errors import Conflict
from tsunagu.infrastructure.dynamodb import Repository, condition_failed, from_item, to_item, update_op

RESERVED, COMMITTED = "reserved", "committed"


def _now_ms() -> int:
    return int(time.time() * 1000)


def _rows(history: list[tuple[date, str]]) -> list[list[str]]:
    return [[d.isoformat(), str(p)] for d, p in history]


class DynamoBillingStore(Repository):
    def __init__(self, table: str, shards: int = DEFAULT_SHARDS):
        self.table = table
        self.shards = shards

    def _prefix(self, pk: str, prefix: str) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        kwargs: dict[str, Any] = {
            "TableName": self.table,
            "KeyConditionExpression": "PK = :pk AND begins_with(SK, :p)" if prefix else "PK = :pk",
            "ExpressionAttributeValues": to_item({":pk": pk, ":p": prefix} if prefix else {":pk": pk}),
            "ConsistentRead": True,
        }
        return out + self._query_pages(kwargs)

    # ------------------------------------------------------------------ plans and options
    def plan_history(self, account_id: str) -> list[tuple[date, str]]:
        """One GetItem: every billed send and every quota check reads it (a Query of history
        rows was the cost of a campaign's schedule call on a large account)."""
        item = self._get(keys.plan_history(account_id))
        return [(date.fromisoformat(e), p) for e, p in (item or {}).get("history", [])]

    def replace_plan_history(self, account_id: str, old: list[tuple[date, str]], new: list[tuple[date, str]]) -> None:
        """The whole history in one conditional put: it must still be ``old`` (or absent, when
        ``old`` came from the account's creation), so two changes at once cannot both win."""
        item = {
            **keys.plan_history(account_id),
            "entity": "plan_history",
            "history": _rows(new),
            "changed_ms": _now_ms(),
        }
        stored = self._get(keys.plan_history(account_id))
        condition = "attribute_not_exists(PK)" if stored is None else "history = :old"
        values = None if stored is None else {":old": _rows(old)}
        if not self._put_if(item, condition, values):
            raise Conflict("the plan changed meanwhile; read it again and retry", code="plan_changed")

    def options(self, account_id: str) -> list[dict[str, Any]]:
        return self._prefix(keys.account_partition(account_id), keys.OPTION_SK_PREFIX)

    def put_option(self, account_id: str, sub: dict[str, Any]) -> None:
        item = {**keys.option_subscription(account_id, sub["option"], sub["start"]), "entity": "option", **sub}
        self.db.put_item(TableName=self.table, Item=to_item(item))

    def settings(self, account_id: str) -> dict[str, Any]:
        return self._get(keys.billing_settings(account_id)) or {}

    def put_settings(self, account_id: str, values: dict[str, Any]) -> None:
        item = {**keys.billing_settings(account_id), "entity": "billing_settings", **values}
        self.db.put_item(TableName=self.table, Item=to_item({k: v for k, v in item.items() if v is not None}))

    # ------------------------------------------------------------------ quota
    def reserved(self, account_id: str, month: str) -> int:
        item = self._get(keys.quota_month(account_id, month))
        return int(item.get("reserved", 0)) if item else 0

    def reserve(
        self,
        account_id: str,
        send_id: str,
        month: str,
        n: int,
        limit: int | None,
        campaign: tuple[str, int] | None = None,
        *,
        fingerprint: str | None = None,
    ) -> bool:
        """Reserve ``n`` billable recipients; raises ``QuotaExceeded`` past ``limit`` (the month)
        or the campaign's cap. False when ``send_id`` was reserved before (a retried request)."""
        if limit is not None and n > limit:
            raise QuotaExceeded("month", max(0, limit - self.reserved(account_id, month)))
        if campaign is not None and n > campaign[1]:
            raise QuotaExceeded("campaign", campaign[1])
        values: dict[str, Any] = {":n": n, ":e": "quota", ":m": month}
        quota: dict[str, Any] = {
            "TableName": self.table,
            "Key": to_item(keys.quota_month(account_id, month)),
            "UpdateExpression": "SET entity = :e, #m = :m ADD reserved :n",
            "ExpressionAttributeNames": {"#m": "month"},
        }
        if limit is not None:
            quota["ConditionExpression"] = "attribute_not_exists(reserved) OR reserved <= :room"
            values[":room"] = limit - n
        quota["ExpressionAttributeValues"] = to_item(values)
        at_ms = _now_ms()
        record = {
            **keys.reservation(account_id, send_id),
            **keys.open_reservation_index(account_id, at_ms, send_id),
            "entity": "reservation",
            "state": RESERVED,
            "month": month,
            "n": n,
            "campaign": campaign[0] if campaign else None,
            "fingerprint": fingerprint,
            "at_ms": at_ms,
        }
        items: list[dict[str, Any]] = [
            {
                "Put": {
                    "TableName": self.table,
                    "Item": to_item(record),
                    "ConditionExpression": "attribute_not_exists(PK)",
                }
            },
            {"Update": quota},
        ]
        if campaign is not None:
            items.append(
                update_op(
                    self.table,
                    keys.campaign_cap(account_id, campaign[0]),
                    "SET entity = :e ADD reserved :n",
                    {":n": n, ":e": "campaign", ":room": campaign[1] - n},
                    condition="attribute_not_exists(reserved) OR reserved <= :room",
                )
            )
        try:
            self.db.transact_write_items(TransactItems=items)
        except ClientError as e:
            if not condition_failed(e):
                raise
            codes = [r.get("Code") for r in e.response.get("CancellationReasons") or []]
            if codes and codes[0] == "ConditionalCheckFailed":
                return False
            if len(codes) > 2 and codes[2] == "ConditionalCheckFailed" and campaign is not None:
                item = self._get(keys.campaign_cap(account_id, campaign[0])) or {}
                raise QuotaExceeded("campaign", max(0, campaign[1] - int(item.get("reserved", 0)))) from None
            left = max(0, (limit or 0) - self.reserved(account_id, month))
            raise QuotaExceeded("month", left) from None
        return True

    def release(self, account_id: str, send_id: str) -> bool:
        """Give a failed send's reservation back (once)."""
        r = self._get(keys.reservation(account_id, send_id))
        if r is None or r["state"] != RESERVED:
            return False
        items: list[dict[str, Any]] = [
            {
                "Delete": {
                    "TableName": self.table,
                    "Key": to_item(keys.reservation(account_id, send_id)),
                    "ConditionExpression": "#s = :r",
                    "ExpressionAttributeNames": {"#s": "state"},
                    "ExpressionAttributeValues": to_item({":r": RESERVED}),
                }
            },
            *self._give_back(account_id, r, int(r["n"])),
        ]
        return self._transact_once(items)

    def _give_back(self, account_id: str, r: dict[str, Any], n: int) -> list[dict[str, Any]]:
        """The updates that return ``n`` of reservation ``r`` to its month (and its campaign's cap)."""
        month = keys.quota_month(account_id, r["month"])
        items = [update_op(self.table, month, "ADD reserved :minus", {":minus": -n})]
        if r.get("campaign"):
            cap = keys.campaign_cap(account_id, r["campaign"])
            items.append(update_op(self.table, cap, "ADD reserved :minus", {":minus": -n}))
        return items

    def commit(self, account_id: str, send_id: str, kind: str, recipients: int, at_ms: int) -> bool:
        """The send went out: the reservation is kept and the usage ledger records it, once."""
        mark = update_op(
            self.table,
            keys.reservation(account_id, send_id),
            "SET #s = :c REMOVE GSI1PK, GSI1SK",
            {":c": COMMITTED, ":r": RESERVED},
            condition="#s = :r",
            names={"#s": "state"},
        )
        ledger = ledger_items(self.table, account_id, send_id, kind, recipients, at_ms, self.shards)
        return self._transact_once([mark, *ledger])

    def settle(self, account_id: str, send_id: str, used: int) -> bool:
        """A reservation that covered many sends (a campaign's chunks, each with its own ledger
        entry) is closed: committed, and what it reserved beyond ``used`` given back. Once."""
        r = self._get(keys.reservation(account_id, send_id))
        if r is None or r["state"] != RESERVED:
            return False
        unused = max(0, int(r["n"]) - used)
        items: list[dict[str, Any]] = [
            update_op(
                self.table,
                keys.reservation(account_id, send_id),
                "SET #s = :c, used = :u REMOVE GSI1PK, GSI1SK",
                {":c": COMMITTED, ":r": RESERVED, ":u": used},
                condition="#s = :r",
                names={"#s": "state"},
            ),
            *self._give_back(account_id, r, unused),
        ]
        return self._transact_once(items)

    def open_reservations(self, account_id: str, before_ms: int) -> list[str]:
        """Send ids whose reservation was made before ``before_ms`` and is still open."""
        out: list[str] = []
        kwargs: dict[str, Any] = {
            "TableName": self.table,
            "IndexName": "GSI1",
            "KeyConditionExpression": "GSI1PK = :pk AND GSI1SK < :cut",
            "ExpressionAttributeValues": to_item(
                {":pk": keys.open_reservation_index(account_id, 0, "")["GSI1PK"], ":cut": f"{before_ms:013d}"}
            ),
            "ProjectionExpression": "GSI1SK",
        }
        while True:
            r = self.db.query(**kwargs)
            out += [from_item(i)["GSI1SK"].split("#", 1)[1] for i in r.get("Items", [])]
            if "LastEvaluatedKey" not in r:
                return out
            kwargs["ExclusiveStartKey"] = r["LastEvaluatedKey"]

    def reservation(self, account_id: str, send_id: str) -> dict[str, Any] | None:
        return self._get(keys.reservation(account_id, send_id))

    def record_calls(self, account_id: str, call_id: str, minutes: int, month: str) -> bool:
        """Call Plus minutes (R-PLAN-5), counted once per call id."""
        entry = {
            **keys.usage_entry(account_id, f"call-{call_id}"),
            "entity": "usage_entry",
            "kind": "call",
            "minutes": minutes,
            "month": month,
        }
        put = {
            "Put": {"TableName": self.table, "Item": to_item(entry), "ConditionExpression": "attribute_not_exists(PK)"}
        }
        counter = counter_update(
            self.table, account_id, month, shard_of(call_id, self.shards), {"call_minutes": minutes}
        )
        return self._transact_once([put, counter])

    # ------------------------------------------------------------------ rollups and invoices
    def put_usage_day(self, account_id: str, day: str, totals: dict[str, Any]) -> None:
        item = {**keys.usage_day(account_id, day), "entity": "usage_day", "day": day, **totals}
        self.db.put_item(TableName=self.table, Item=to_item(item))

    def usage_day(self, account_id: str, day: str) -> dict[str, Any] | None:
        return self._get(keys.usage_day(account_id, day))

    def usage_days(self, account_id: str, first: str, last: str) -> list[dict[str, Any]]:
        """The daily rollups from ``first`` to ``last`` (JST dates), in one query."""
        lo, hi = keys.usage_day(account_id, first)["SK"], keys.usage_day(account_id, last)["SK"]
        return self._query_pages(
            {
                "TableName": self.table,
                "KeyConditionExpression": "PK = :pk AND SK BETWEEN :lo AND :hi",
                "ExpressionAttributeValues": to_item({":pk": keys.account_partition(account_id), ":lo": lo, ":hi": hi}),
            }
        )

    def put_invoice(self, account_id: str, month: str, doc: dict[str, Any]) -> bool:
        """Write a month's invoice once; False when it exists (a re-run changes nothing)."""
        item = {**keys.invoice(account_id, month), "entity": "invoice", "month": month, **doc}
        return self._put_if(item, "attribute_not_exists(PK)")

    def invoice(self, account_id: str, month: str) -> dict[str, Any] | None:
        return self._get(keys.invoice(account_id, month))

    def put_quota_check(self, account_id: str, day: str, doc: dict[str, Any]) -> None:
        item = {**keys.quota_check(account_id, day), "entity": "quota_check", "day": day, **doc}
        self.db.put_item(TableName=self.table, Item=to_item(item))

    def quota_check_of(self, account_id: str, day: str) -> dict[str, Any] | None:
        return self._get(keys.quota_check(account_id, day))

    # ------------------------------------------------------------------ points (R-PTS-1)
    def contractors(self, account_id: str) -> list[dict[str, Any]]:
        """Contractor links (``LINK#CONTRACTOR#{member}``): who receives points."""
        prefix = keys.link_target(account_id, "CONTRACTOR#")["SK"]
        return self._prefix(keys.account_partition(account_id), prefix)

    def grant_points(self, account_id: str, month: str, member_number: str, statement: dict[str, Any]) -> bool:
        item = {
            **keys.points_grant(account_id, month, member_number, "ALL"),
            "entity": "points_grant",
            "month": month,
            "member_number": member_number,
            **statement,
        }
        return self._put_if(item, "attribute_not_exists(PK)")

    def points(self, account_id: str, month: str) -> list[dict[str, Any]]:
        return self._prefix(keys.points_partition(account_id, month), "")
