"""Audiences and campaigns in DynamoDB.

- Friend facts for segments come from whole-partition Queries (friends, the audience facts, the
  linked index, the register, a coupon's grants) joined in memory: no read per friend.
- A friend's tags and custom fields are changed path by path (ADD / DELETE / SET), never by
  replacing the item, so concurrent taggers and field writers do not lose each other's changes.
- A campaign's state changes are conditional on the state it leaves; its snapshot is a set of
  chunk items, each claimed with a lease before its LINE call and finished in one transaction
  with its usage-ledger entry and the campaign's counters (so a redelivered chunk is counted
  once and, once finished, never calls LINE again).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from decimal import Decimal
from typing import Any

from botocore.exceptions import ClientError

from tsunagu import keys
from tsunagu.billing.usage_store import ledger_items
from tsunagu.campaigns.domain import Chunk
from tsunagu.campaigns.segments import FIELD_PREFIX, Definitions, FriendFacts, Needs, fields_of
from tsunagu.infrastructure.dynamodb import Repository, condition_failed, from_item, to_item, update_op


class DynamoAudienceStore(Repository):
    def __init__(self, table: str):
        self.table = table

    # ------------------------------------------------------------------ vocabulary
    def definitions(self, account_id: str) -> Definitions:
        d = self._get(keys.audience_definitions(account_id), consistent=True) or {}
        fields = {k[len(FIELD_PREFIX) :]: str(v) for k, v in d.items() if k.startswith(FIELD_PREFIX)}
        return Definitions(frozenset(d.get("tags", set())), fields)

    def define_tag(self, account_id: str, tag: str) -> None:
        self.db.update_item(
            TableName=self.table,
            Key=to_item(keys.audience_definitions(account_id)),
            UpdateExpression="ADD tags :t SET entity = :e",
            ExpressionAttributeValues=to_item({":t": {tag}, ":e": "audience_definitions"}),
        )

    def define_field(self, account_id: str, name: str, kind: str) -> bool:
        """False when the field exists with another type (a type never changes under stored values)."""
        try:
            self.db.update_item(
                TableName=self.table,
                Key=to_item(keys.audience_definitions(account_id)),
                UpdateExpression="SET #f = :k, entity = :e",
                ConditionExpression="attribute_not_exists(#f) OR #f = :k",
                ExpressionAttributeNames={"#f": FIELD_PREFIX + name},
                ExpressionAttributeValues=to_item({":k": kind, ":e": "audience_definitions"}),
            )
        except ClientError as e:
            if condition_failed(e):
                return False
            raise
        return True

    def tag_rules(self, account_id: str) -> list[dict[str, Any]]:
        item = self._get(keys.tag_rules(account_id), consistent=False)
        return list(json.loads(item["rules"])) if item else []

    def put_tag_rules(self, account_id: str, rules: list[dict[str, Any]]) -> None:
        item = {**keys.tag_rules(account_id), "entity": "tag_rules", "rules": json.dumps(rules, ensure_ascii=False)}
        self.db.put_item(TableName=self.table, Item=to_item(item))

    # ------------------------------------------------------------------ one friend's facts
    def change_tags(self, account_id: str, user_id: str, add: set[str], remove: set[str]) -> None:
        """DynamoDB refuses ADD and DELETE of one attribute in one expression: removals first."""
        for op, tags in (("DELETE", remove), ("ADD", add)):
            if tags:
                self.db.update_item(
                    TableName=self.table,
                    Key=to_item(keys.audience_facts(account_id, user_id)),
                    UpdateExpression=f"SET entity = :e, user_id = :u {op} tags :t",
                    ExpressionAttributeValues=to_item({":e": "audience_facts", ":u": user_id, ":t": tags}),
                )

    def note_inbound(self, account_id: str, user_id: str, at_ms: int) -> None:
        """The friend's last message moment: only ever moves forward (a late or redelivered
        event changes nothing)."""
        try:
            self.db.update_item(
                TableName=self.table,
                Key=to_item(keys.audience_facts(account_id, user_id)),
                UpdateExpression="SET entity = :e, user_id = :u, last_inbound_ms = :t",
                ConditionExpression="attribute_not_exists(last_inbound_ms) OR last_inbound_ms < :t",
                ExpressionAttributeValues=to_item({":e": "audience_facts", ":u": user_id, ":t": at_ms}),
            )
        except ClientError as e:
            if not condition_failed(e):
                raise

    def set_fields(self, account_id: str, user_id: str, values: dict[str, Any]) -> None:
        names = {f"#f{i}": FIELD_PREFIX + k for i, k in enumerate(values)}
        sets = [f"#f{i} = :v{i}" for i, v in enumerate(values.values()) if v is not None]
        removes = [f"#f{i}" for i, v in enumerate(values.values()) if v is None]
        expr = "SET " + ", ".join(["entity = :e", "user_id = :u", *sets])
        if removes:
            expr += " REMOVE " + ", ".join(removes)
        vals: dict[str, Any] = {":e": "audience_facts", ":u": user_id}
        # DynamoDB numbers are decimals: a float goes through its shortest text form, exactly.
        vals |= {
            f":v{i}": Decimal(repr(v)) if isinstance(v, float) else v
            for i, v in enumerate(values.values())
            if v is not None
        }
        self.db.update_item(
            TableName=self.table,
            Key=to_item(keys.audience_facts(account_id, user_id)),
            UpdateExpression=expr,
            ExpressionAttributeNames=names,
            ExpressionAttributeValues=to_item(vals),
        )

    def facts_item(self, account_id: str, user_id: str) -> dict[str, Any]:
        return self._get(keys.audience_facts(account_id, user_id)) or {}

    # ------------------------------------------------------------------ the one pass
    def _all(
        self, pk: str, prefix: str | None, projection: str | None = None, index: str | None = None
    ) -> list[dict[str, Any]]:
        pk_name = "GSI1PK" if index else "PK"
        kwargs: dict[str, Any] = {
            "TableName": self.table,
            "KeyConditionExpression": f"{pk_name} = :pk" + (" AND begins_with(SK, :p)" if prefix else ""),
            "ExpressionAttributeValues": to_item({":pk": pk, **({":p": prefix} if prefix else {})}),
        }
        if projection:  # every name aliased: "store", "state", "name" ... are reserved words
            attrs = [a.strip() for a in projection.split(",")]
            kwargs["ProjectionExpression"] = ", ".join(f"#p{i}" for i in range(len(attrs)))
            kwargs["ExpressionAttributeNames"] = {f"#p{i}": a for i, a in enumerate(attrs)}
        if index:
            kwargs["IndexName"] = index
        return self._query_pages(kwargs)

    def friend_facts(self, account_id: str, needs: Needs) -> list[FriendFacts]:
        """Every friend record of the account with the facts a rule may read, from one Query per
        source (the register and coupons only when the rule names them)."""
        account_pk = keys.account_partition(account_id)
        friends = self._all(account_pk, keys.FRIEND_SK_PREFIX, "user_id, state, since_ms")
        audience = {r["SK"]: r for r in self._all(keys.audience_partition(account_id), None)}
        links: dict[str, str] = {}
        if needs.links:
            for r in self._all(keys.linked_index(account_id), None, "GSI1SK", index="GSI1"):
                user, _, target = r["GSI1SK"].partition("#")
                links.setdefault(user, target)
        members: dict[str, dict[str, Any]] = {}
        if needs.members:
            rows = self._all(account_pk, keys.MEMBER_SK_PREFIX, "member_number, store, plan, prefecture, age_band")
            members = {f"MEMBER#{m['member_number']}": m for m in rows}
        redeemed: dict[str, set[str]] = {}
        for coupon_id in needs.coupons:
            grants = self._all(keys.coupon_partition(account_id, coupon_id), keys.GRANT_SK_PREFIX, "SK, uses")
            for g in grants:
                if int(g.get("uses", 0)) > 0:
                    redeemed.setdefault(g["SK"].removeprefix(keys.GRANT_SK_PREFIX), set()).add(coupon_id)
        out: list[FriendFacts] = []
        empty: frozenset[str] = frozenset()
        for f in friends:
            uid = f["user_id"]
            a = audience.get(uid, {})
            target = links.get(uid)
            m = members.get(target or "", {})
            out.append(
                {
                    "user_id": uid,
                    "blocked": f.get("state") == "blocked",
                    "since_ms": int(f.get("since_ms", 0)),
                    "last_inbound_ms": int(a.get("last_inbound_ms", 0)),
                    "linked": target is not None,
                    "store": m.get("store"),
                    "plan": m.get("plan"),
                    "prefecture": m.get("prefecture"),
                    "age_band": m.get("age_band"),
                    "tags": frozenset(a.get("tags", empty)),
                    "fields": fields_of(a),
                    "clicked": frozenset(a.get("clicked", empty)),
                    "redeemed": frozenset(redeemed.get(uid, empty)),
                }
            )
        return out

    # ------------------------------------------------------------------ segments
    def put_segment(self, account_id: str, segment_id: str, doc: dict[str, Any]) -> bool:
        item = {**keys.segment(account_id, segment_id), "entity": "segment", "segment_id": segment_id, **doc}
        return self._put_if(item, "attribute_not_exists(PK)")

    def segment(self, account_id: str, segment_id: str) -> dict[str, Any] | None:
        return self._get(keys.segment(account_id, segment_id))

    def segments(self, account_id: str) -> list[dict[str, Any]]:
        return self._all(keys.account_partition(account_id), keys.SEGMENT_SK_PREFIX, "segment_id, name, created_at")


class DynamoCampaignStore(Repository):
    def __init__(self, table: str):
        self.table = table

    def create(self, account_id: str, campaign_id: str, created_ms: int, doc: dict[str, Any]) -> bool:
        item = {
            **keys.campaign(account_id, campaign_id, created_ms),
            "entity": "campaign_record",  # "campaign" is billing's cap item in the same partition
            "campaign_id": campaign_id,
            "created_ms": created_ms,
            **doc,
        }
        return self._put_if(item, "attribute_not_exists(PK)")

    def get(self, account_id: str, campaign_id: str) -> dict[str, Any] | None:
        return self._get(keys.campaign(account_id, campaign_id))

    def recent(self, account_id: str, limit: int = 100) -> list[dict[str, Any]]:
        r = self.db.query(
            TableName=self.table,
            IndexName="GSI1",
            KeyConditionExpression="GSI1PK = :pk",
            ExpressionAttributeValues=to_item({":pk": keys.campaigns_index(account_id)}),
            ScanIndexForward=False,
            Limit=limit,
        )
        return [from_item(i) for i in r.get("Items", [])]

    def transition(
        self, account_id: str, campaign_id: str, leaving: Iterable[str], new: str, values: dict[str, Any] | None = None
    ) -> bool:
        """Move to ``new`` only from one of ``leaving``; False when the campaign was elsewhere."""
        olds = list(leaving)
        vals: dict[str, Any] = {":new": new, **{f":o{i}": s for i, s in enumerate(olds)}}
        sets = ["#s = :new"]
        names = {"#s": "state"}
        for i, (k, v) in enumerate((values or {}).items()):
            names[f"#x{i}"] = k
            vals[f":x{i}"] = v
            sets.append(f"#x{i} = :x{i}")
        try:
            self.db.update_item(
                TableName=self.table,
                Key=to_item(keys.campaign(account_id, campaign_id)),
                UpdateExpression="SET " + ", ".join(sets),
                ConditionExpression=f"#s IN ({', '.join(f':o{i}' for i in range(len(olds)))})",
                ExpressionAttributeNames=names,
                ExpressionAttributeValues=to_item(vals),
            )
        except ClientError as e:
            if condition_failed(e):
                return False
            raise
        return True

    # ------------------------------------------------------------------ snapshot chunks
    def put_chunks(self, account_id: str, campaign_id: str, chunks: list[Chunk]) -> None:
        """Write the snapshot (a rebuilt snapshot overwrites chunks no message was sent for yet)."""
        items = [
            {
                **keys.campaign_chunk(account_id, campaign_id, c.index),
                "entity": "campaign_chunk",
                "index": c.index,
                "variant": c.variant,
                "user_ids": list(c.user_ids),
                "retry_key": c.retry_key or None,
                "mode": c.mode,
                "parts": list(c.parts) or None,
                "recipients": c.recipients or len(c.user_ids),
                "state": "pending",
                "lease_ms": 0,
            }
            for c in chunks
        ]
        for i in range(0, len(items), 25):
            req = {self.table: [{"PutRequest": {"Item": to_item(it)}} for it in items[i : i + 25]]}
            while req:
                r = self.db.batch_write_item(RequestItems=req)
                req = r.get("UnprocessedItems") or {}

    def chunk(self, account_id: str, campaign_id: str, index: int) -> dict[str, Any] | None:
        return self._get(keys.campaign_chunk(account_id, campaign_id, index))

    def claim_chunk(self, account_id: str, campaign_id: str, index: int, now_ms: int, lease_ms: int) -> bool:
        """Take the chunk for one LINE call: pending, or sending under a lease that has run out
        (its worker died; the retry key makes the repeated call safe)."""
        try:
            self.db.update_item(
                TableName=self.table,
                Key=to_item(keys.campaign_chunk(account_id, campaign_id, index)),
                UpdateExpression="SET #s = :sending, lease_ms = :until ADD attempts :one",
                ConditionExpression="#s = :pending OR (#s = :sending AND lease_ms < :now)",
                ExpressionAttributeNames={"#s": "state"},
                ExpressionAttributeValues=to_item(
                    {
                        ":sending": "sending",
                        ":pending": "pending",
                        ":now": now_ms,
                        ":until": now_ms + lease_ms,
                        ":one": 1,
                    }
                ),
            )
        except ClientError as e:
            if condition_failed(e):
                return False
            raise
        return True

    def note_chunk(self, account_id: str, campaign_id: str, index: int, values: dict[str, Any]) -> None:
        """Remember a narrowcast's progress (its audience id, parts uploaded, request id)."""
        names = {f"#k{i}": k for i, k in enumerate(values)}
        self.db.update_item(
            TableName=self.table,
            Key=to_item(keys.campaign_chunk(account_id, campaign_id, index)),
            UpdateExpression="SET " + ", ".join(f"#k{i} = :v{i}" for i in range(len(values))),
            ExpressionAttributeNames=names,
            ExpressionAttributeValues=to_item({f":v{i}": v for i, v in enumerate(values.values())}),
        )

    def sent_narrowcasts(self, account_id: str, campaign_id: str) -> list[dict[str, Any]]:
        rows = self._query_pages(
            {
                "TableName": self.table,
                "KeyConditionExpression": "PK = :pk AND begins_with(SK, :p)",
                "ExpressionAttributeValues": to_item(
                    {":pk": keys.campaign_partition(account_id, campaign_id), ":p": keys.CHUNK_SK_PREFIX}
                ),
                "ProjectionExpression": "#i, variant, #m, request_id",
                "ExpressionAttributeNames": {"#i": "index", "#m": "mode"},
            }
        )
        return [r for r in rows if r.get("mode") == "narrowcast" and r.get("request_id")]

    def drop_lease(self, account_id: str, campaign_id: str, index: int) -> None:
        """LINE did not answer: let the next delivery claim the chunk at once."""
        self.db.update_item(
            TableName=self.table,
            Key=to_item(keys.campaign_chunk(account_id, campaign_id, index)),
            UpdateExpression="SET lease_ms = :z",
            ConditionExpression="#s = :sending",
            ExpressionAttributeNames={"#s": "state"},
            ExpressionAttributeValues=to_item({":z": 0, ":sending": "sending"}),
        )

    def finish_chunk(
        self,
        account_id: str,
        campaign_id: str,
        chunk: dict[str, Any],
        outcome: str,
        at_ms: int,
        request_id: str | None = None,
    ) -> bool:
        """``sent``: the chunk, its usage-ledger entry (kind multicast, send id = its retry key)
        and the campaign's counters in one transaction; ``failed``: the chunk and the counters.
        False when it was finished before."""
        n = int(chunk.get("recipients") or len(chunk["user_ids"]))
        kind = "narrowcast" if chunk.get("mode") == "narrowcast" else "multicast"
        variant = chunk["variant"]
        mark = update_op(
            self.table,
            keys.campaign_chunk(account_id, campaign_id, int(chunk["index"])),
            "SET #s = :out, finished_ms = :at" + (", request_id = :rid" if request_id else ""),
            {":out": outcome, ":at": at_ms, ":sending": "sending", **({":rid": request_id} if request_id else {})},
            condition="#s = :sending",
            names={"#s": "state"},
        )
        counters = update_op(
            self.table,
            keys.campaign(account_id, campaign_id),
            f"ADD chunks_{outcome} :one, recipients_{outcome} :n, #v :n",
            {":one": 1, ":n": n},
            names={"#v": f"{outcome}_{variant}"},
        )
        items = [mark, counters]
        if outcome == "sent":
            items += ledger_items(self.table, account_id, chunk["retry_key"], kind, n, at_ms)
        return self._transact_once(items)

    # ------------------------------------------------------------------ tracked links and insight
    def put_link(self, token: str, doc: dict[str, Any]) -> None:
        self.db.put_item(
            TableName=self.table, Item=to_item({**keys.tracked_link(token), "entity": "tracked_link", **doc})
        )

    def link(self, token: str) -> dict[str, Any] | None:
        return self._get(keys.tracked_link(token), consistent=False)

    def add_click(self, account_id: str, campaign_id: str, variant: str) -> None:
        self.db.update_item(
            TableName=self.table,
            Key=to_item(keys.campaign_clicks(account_id, campaign_id)),
            UpdateExpression="ADD #v :one SET entity = :e",
            ExpressionAttributeNames={"#v": variant},
            ExpressionAttributeValues=to_item({":one": 1, ":e": "campaign_clicks"}),
        )

    def clicks(self, account_id: str, campaign_id: str) -> dict[str, int]:
        return self._counters(keys.campaign_clicks(account_id, campaign_id))

    def put_insight(self, account_id: str, campaign_id: str, doc: dict[str, Any]) -> None:
        item = {**keys.campaign_insight(account_id, campaign_id), "entity": "campaign_insight", **doc}
        self.db.put_item(TableName=self.table, Item=to_item(item))

    def insight(self, account_id: str, campaign_id: str) -> dict[str, Any] | None:
        return self._get(keys.campaign_insight(account_id, campaign_id))
