"""DynamoDB for the member register and links. Every rule that must hold under concurrency
(one member <-> one LINE account, R-LINK-3; one usage code per LINE account, R-LINK-11; a nonce
used once) is a condition inside one TransactWriteItems, never a read-then-write."""

from __future__ import annotations

import secrets
import time
from typing import Any

from botocore.exceptions import ClientError

from tsunagu import keys
from tsunagu.errors import UpstreamError
from tsunagu.infrastructure.dynamodb import Repository, condition_failed, from_item, to_item
from tsunagu.linking.domain import sliding_admit, sliding_estimate
from tsunagu.linking.register import ContractLine, MemberRecord


def _now() -> int:
    return int(time.time())


def member_item(account_id: str, r: MemberRecord, now: Any) -> dict[str, Any]:
    """A member as stored: hashes of the factors only, never their values (R-LINK-14)."""
    return {
        **keys.member(account_id, r.member_number),
        "entity": "member",
        "member_number": r.member_number,
        "phone_hash": r.phone_hash,
        "birth_hash": r.birth_hash,
        "email_hash": r.email_hash,
        "login_id_hash": r.login_id_hash,
        "password_hash": r.password_hash,
        "updated_at": now,
        "store": r.store,
        "plan": r.plan,
        "prefecture": r.prefecture,
        "age_band": r.age_band,
        "lines": [
            {"line_id": ln.line_id, "usage_code_hash": ln.usage_code_hash, "monthly_base_fee": ln.monthly_base_fee}
            for ln in r.lines
        ],
    }


class DynamoMemberRegister(Repository):
    def __init__(self, table: str):
        self.table = table

    def put(self, account_id: str, records: list[MemberRecord]) -> None:
        """Upsert members and their factor lookups; stale lookups of a changed member are removed."""
        existing = self.get_many(account_id, [r.member_number for r in records])
        puts: list[dict[str, Any]] = []
        deletes: list[dict[str, str]] = []
        now = _now()
        for r in records:
            new_index = _factor_entries(r)
            old = existing.get(r.member_number)
            if old is not None:
                deletes += [
                    keys.factor_index(account_id, kind, h)
                    for kind, h in _factor_entries(old)
                    if (kind, h) not in new_index
                ]
                if old.phone_hash and old.phone_hash != r.phone_hash:
                    deletes.append(keys.member_phone(account_id, old.phone_hash, r.member_number))
            if r.phone_hash:
                puts.append(
                    {
                        **keys.member_phone(account_id, r.phone_hash, r.member_number),
                        "entity": "member_phone",
                        "member_number": r.member_number,
                    }
                )
            item = member_item(account_id, r, now)
            puts.append(item)
            for (kind, h), line_id in new_index.items():
                puts.append(
                    {
                        **keys.factor_index(account_id, kind, h),
                        "entity": "factor_index",
                        "member_number": r.member_number,
                        "line_id": line_id,
                    }
                )
        requests = [{"DeleteRequest": {"Key": to_item(k)}} for k in deletes]
        requests += [{"PutRequest": {"Item": to_item({k: v for k, v in p.items() if v is not None})}} for p in puts]
        for i in range(0, len(requests), 25):
            chunk = requests[i : i + 25]
            while chunk:
                r = self.db.batch_write_item(RequestItems={self.table: chunk})
                chunk = r.get("UnprocessedItems", {}).get(self.table, [])

    def get_many(self, account_id: str, member_numbers: list[str]) -> dict[str, MemberRecord]:
        out: dict[str, MemberRecord] = {}
        unique = list(dict.fromkeys(member_numbers))
        for i in range(0, len(unique), 100):
            req = {self.table: {"Keys": [to_item(keys.member(account_id, mn)) for mn in unique[i : i + 100]]}}
            while req:
                r = self.db.batch_get_item(RequestItems=req)
                for item in r.get("Responses", {}).get(self.table, []):
                    rec = _record(from_item(item))
                    out[rec.member_number] = rec
                req = r.get("UnprocessedKeys") or {}
        return out

    def get(self, account_id: str, member_number: str) -> MemberRecord | None:
        r = self.db.get_item(
            TableName=self.table, Key=to_item(keys.member(account_id, member_number)), ConsistentRead=True
        )
        return _record(from_item(r["Item"])) if "Item" in r else None

    def find(self, account_id: str, kind: str, factor_hash: str) -> tuple[str, str | None] | None:
        """(member number, line id) of the member a unique factor belongs to."""
        r = self.db.get_item(TableName=self.table, Key=to_item(keys.factor_index(account_id, kind, factor_hash)))
        if "Item" not in r:
            return None
        d = from_item(r["Item"])
        return d["member_number"], d.get("line_id")

    def by_phone(self, account_id: str, phone_hash: str) -> list[str]:
        """Member numbers whose phone has this keyed hash (notification routing)."""
        r = self.db.query(
            TableName=self.table,
            KeyConditionExpression="PK = :pk",
            ExpressionAttributeValues=to_item({":pk": keys.member_phone_partition(account_id, phone_hash)}),
            ProjectionExpression="member_number",
        )
        return [from_item(i)["member_number"] for i in r.get("Items", [])]

    def page(self, account_id: str, limit: int, after: str | None) -> tuple[list[str], str | None]:
        kwargs: dict[str, Any] = {
            "TableName": self.table,
            "Limit": limit,
            "ProjectionExpression": "member_number",
            "KeyConditionExpression": "PK = :pk AND begins_with(SK, :p)",
            "ExpressionAttributeValues": to_item(
                {":pk": keys.account_partition(account_id), ":p": keys.MEMBER_SK_PREFIX}
            ),
        }
        if after:
            kwargs["ExclusiveStartKey"] = to_item(keys.member(account_id, after))
        r = self.db.query(**kwargs)
        nxt = (
            from_item(r["LastEvaluatedKey"])["SK"].removeprefix(keys.MEMBER_SK_PREFIX)
            if "LastEvaluatedKey" in r
            else None
        )
        return [from_item(i)["member_number"] for i in r.get("Items", [])], nxt


def _factor_entries(r: MemberRecord) -> dict[tuple[str, str], str | None]:
    """(factor kind, keyed hash) -> line id, for the factors that identify a member alone."""
    out: dict[tuple[str, str], str | None] = {}
    if r.login_id_hash:
        out[("login_id", r.login_id_hash)] = None
    if r.email_hash:
        out[("email", r.email_hash)] = None
    for ln in r.lines:
        if ln.usage_code_hash:
            out[("usage_code", ln.usage_code_hash)] = ln.line_id
    return out


def _record(d: dict[str, Any]) -> MemberRecord:
    return MemberRecord(
        member_number=d["member_number"],
        phone_hash=d.get("phone_hash"),
        birth_hash=d.get("birth_hash"),
        email_hash=d.get("email_hash"),
        login_id_hash=d.get("login_id_hash"),
        password_hash=d.get("password_hash"),
        lines=tuple(
            ContractLine(ln["line_id"], ln.get("usage_code_hash"), int(ln.get("monthly_base_fee", 0)))
            for ln in d.get("lines", [])
        ),
        store=d.get("store"),
        plan=d.get("plan"),
        prefecture=d.get("prefecture"),
        age_band=d.get("age_band"),
    )


_LIMITER_TRIES = 10  # optimistic rewrites of one sliding-window log before failing closed

# Position of each item in the link transaction, to name the condition that failed.
_LINK_FAILURES = {
    0: "nonce_invalid",
    1: "member_already_linked",
    3: "usage_code_already_held",
    4: "contractor_link_required",
}


class DynamoLinkStore(Repository):
    def __init__(self, table: str):
        self.table = table

    # -- sessions and nonces ------------------------------------------------------------
    def _put_new(self, item: dict[str, Any]) -> None:
        self.db.put_item(TableName=self.table, Item=to_item(item), ConditionExpression="attribute_not_exists(PK)")

    def put_session(
        self, account_id: str, session_id: str, user_id: str, link_token: str, csrf: str, expires_at: int
    ) -> None:
        self._put_new(
            {
                **keys.link_session(account_id, session_id),
                "entity": "link_session",
                "user_id": user_id,
                "link_token": link_token,
                "csrf": csrf,
                "expires_at": expires_at,
            }
        )

    def get_session(self, account_id: str, session_id: str) -> dict[str, Any] | None:
        return self._get(keys.link_session(account_id, session_id))

    def put_nonce(
        self, account_id: str, nonce: str, user_id: str, target: str, member_number: str, expires_at: int
    ) -> None:
        # The target's generation now: a link or a release of the target moves it on, and the
        # nonce links only while it is unchanged (a lost race or a later release kills it).
        gen = int((self._get_consistent(keys.link_generation(account_id, target)) or {}).get("gen", 0))
        self._put_new(
            {
                **keys.link_nonce(account_id, nonce),
                "entity": "link_nonce",
                "user_id": user_id,
                "target": target,
                "member_number": member_number,
                "expires_at": expires_at,
                "gen": gen,
            }
        )

    def get_nonce(self, account_id: str, nonce: str) -> dict[str, Any] | None:
        return self._get(keys.link_nonce(account_id, nonce))

    # -- links --------------------------------------------------------------------------
    def link(
        self, account_id: str, nonce: str, user_id: str, target: str, member_number: str, contractor_target: str | None
    ) -> str | None:
        """Consume ``nonce`` and link ``target`` to ``user_id`` in one transaction.
        Returns None on success, else the failed rule's code."""
        now = _now()
        t = self.table
        is_user_link = target.startswith("LINE#")
        issued = self._get_consistent(keys.link_nonce(account_id, nonce))
        if issued is None:
            return "nonce_invalid"
        gen = int(issued.get("gen", 0))
        items: list[dict[str, Any]] = [
            {
                "Delete": {
                    "TableName": t,
                    "Key": to_item(keys.link_nonce(account_id, nonce)),
                    "ConditionExpression": "attribute_exists(PK) AND user_id = :u AND expires_at > :now",
                    "ExpressionAttributeValues": to_item({":u": user_id, ":now": now}),
                }
            },
            {
                "Put": {
                    "TableName": t,
                    "Item": to_item(
                        {
                            **keys.link_target(account_id, target),
                            "entity": "link",
                            "target": target,
                            "user_id": user_id,
                            "member_number": member_number,
                            "linked_at": now,
                        }
                    ),
                    "ConditionExpression": "attribute_not_exists(PK)",
                }
            },
            {
                "Put": {
                    "TableName": t,
                    "Item": to_item(
                        {
                            **keys.user_link(account_id, user_id, target),
                            "entity": "user_link",
                            "target": target,
                            "member_number": member_number,
                            "linked_at": now,
                        }
                    ),
                }
            },
        ]
        if is_user_link:
            items.append(
                {
                    "Put": {
                        "TableName": t,
                        "Item": to_item(
                            {**keys.user_line_slot(account_id, user_id), "entity": "user_link_slot", "target": target}
                        ),
                        "ConditionExpression": "attribute_not_exists(PK)",
                    }
                }
            )
            items.append(
                {
                    "ConditionCheck": {
                        "TableName": t,
                        "Key": to_item(keys.link_target(account_id, str(contractor_target))),
                        "ConditionExpression": "attribute_exists(PK)",
                    }
                }
            )
        failures = {**_LINK_FAILURES, len(items): "nonce_stale"}
        items.append(_next_generation(t, account_id, target, gen))
        items.append(
            {
                "Put": {
                    "TableName": t,
                    "Item": to_item(self._audit(account_id, "link", target, member_number, user_id, "member", None)),
                }
            }
        )
        try:
            self.db.transact_write_items(TransactItems=items)
        except ClientError as e:
            if not condition_failed(e):
                raise
            reasons = e.response.get("CancellationReasons") or []
            for i, reason in enumerate(reasons):
                if reason.get("Code") == "ConditionalCheckFailed":
                    return failures.get(i, "conflict")
            # TransactionConflict: another transaction held an item; nothing was written and the
            # nonce is still there, so the record is retried (SQS) and decided then.
            raise UpstreamError("link transaction conflicted; retry", code="transaction_conflict") from None
        return None

    def unlink(
        self, account_id: str, target: str, actor: str, reason: str | None, expected_user: str | None = None
    ) -> str | None:
        """Remove a link; ``expected_user`` (self-service) must be the linked LINE user.
        Returns the LINE user it was linked to, or None if there was no such link."""
        r = self.db.get_item(
            TableName=self.table, Key=to_item(keys.link_target(account_id, target)), ConsistentRead=True
        )
        if "Item" not in r:
            return None
        link = from_item(r["Item"])
        user_id = link["user_id"]
        if expected_user is not None and user_id != expected_user:
            return None
        t = self.table
        items: list[dict[str, Any]] = [
            {
                "Delete": {
                    "TableName": t,
                    "Key": to_item(keys.link_target(account_id, target)),
                    "ConditionExpression": "user_id = :u",
                    "ExpressionAttributeValues": to_item({":u": user_id}),
                }
            },
            {
                "Delete": {
                    "TableName": t,
                    "Key": to_item(
                        {k: v for k, v in keys.user_link(account_id, user_id, target).items() if k in ("PK", "SK")}
                    ),
                }
            },
            {
                "Put": {
                    "TableName": t,
                    "Item": to_item(
                        self._audit(account_id, "unlink", target, link["member_number"], user_id, actor, reason)
                    ),
                }
            },
        ]
        if target.startswith("LINE#"):
            items.append({"Delete": {"TableName": t, "Key": to_item(keys.user_line_slot(account_id, user_id))}})
        items.append(_next_generation(t, account_id, target, None))  # every open nonce of the target dies
        try:
            self.db.transact_write_items(TransactItems=items)
        except ClientError as e:
            if condition_failed(e):
                return None  # unlinked concurrently
            raise
        return str(user_id)

    def target(self, account_id: str, target: str) -> dict[str, Any] | None:
        return self._get(keys.link_target(account_id, target))

    def user_links(self, account_id: str, user_id: str) -> list[dict[str, Any]]:
        r = self.db.query(
            TableName=self.table,
            KeyConditionExpression="PK = :pk AND begins_with(SK, :p)",
            ExpressionAttributeValues=to_item({":pk": keys.user_partition(account_id, user_id), ":p": "LINK#"}),
            ConsistentRead=True,
        )
        return [from_item(i) for i in r.get("Items", [])]

    def linked_users(
        self, account_id: str, limit: int, after: dict[str, Any] | None
    ) -> tuple[list[str], dict[str, Any] | None]:
        kwargs: dict[str, Any] = {
            "TableName": self.table,
            "IndexName": "GSI1",
            "Limit": limit,
            "KeyConditionExpression": "GSI1PK = :pk",
            "ExpressionAttributeValues": to_item({":pk": keys.linked_index(account_id)}),
        }
        if after:
            kwargs["ExclusiveStartKey"] = to_item(after)
        r = self.db.query(**kwargs)
        users = list(dict.fromkeys(from_item(i)["GSI1SK"].split("#", 1)[0] for i in r.get("Items", [])))
        return users, (from_item(r["LastEvaluatedKey"]) if "LastEvaluatedKey" in r else None)

    # -- attempts and audit -------------------------------------------------------------
    def claim_attempt(self, account_id: str, subject: str, token: str, window_s: int, limit: int) -> bool:
        """Take one slot of ``subject``'s sliding window (``limit`` per ``window_s``) for the
        attempt ``token``; False when the window is full. Optimistic concurrency: the log is
        rewritten only if its version is the one read, so parallel attempts cannot overfill it.
        Fails closed (False) if the item stays contended - only the subject's own requests
        write it."""
        key = keys.link_limiter(account_id, subject)
        for _ in range(_LIMITER_TRIES):
            now_ms = int(time.time() * 1000)
            item = self._get_consistent(key)
            hits = list(item.get("hits", [])) if item else []
            admitted = sliding_admit(hits, now_ms, window_s * 1000, limit, token)
            if admitted is None:
                return False
            if self._write_log(key, item, admitted, now_ms // 1000 + window_s):
                return True
            time.sleep(secrets.randbelow(10) / 1000)  # jitter: the racing writers do not collide again
        return False

    def release_attempt(self, account_id: str, subject: str, token: str) -> None:
        """Give back the slot of an attempt that did not count (right factors, a format error)."""
        key = keys.link_limiter(account_id, subject)
        for _ in range(_LIMITER_TRIES):
            item = self._get_consistent(key)
            hits = list(item.get("hits", [])) if item else []
            kept = [h for h in hits if h.split(":", 1)[1] != token]
            if item is None or len(kept) == len(hits):
                return
            if self._write_log(key, item, kept, int(item.get("expires_at", 0))):
                return
            time.sleep(secrets.randbelow(10) / 1000)

    def attempts(self, account_id: str, subject: str, window_s: int) -> int:
        """How many attempts of ``subject`` fall in the sliding window now."""
        item = self._get_consistent(keys.link_limiter(account_id, subject))
        cutoff = int(time.time() * 1000) - window_s * 1000
        return sum(1 for h in (item or {}).get("hits", []) if int(h.split(":", 1)[0]) > cutoff)

    def _get_consistent(self, key: dict[str, str]) -> dict[str, Any] | None:
        r = self.db.get_item(TableName=self.table, Key=to_item(key), ConsistentRead=True)
        return from_item(r["Item"]) if "Item" in r else None

    def _write_log(self, key: dict[str, str], item: dict[str, Any] | None, hits: list[str], expires_at: int) -> bool:
        version = int(item.get("version", 0)) if item else 0
        try:
            self.db.put_item(
                TableName=self.table,
                Item=to_item(
                    {**key, "entity": "link_limiter", "hits": hits, "version": version + 1, "expires_at": expires_at}
                ),
                ConditionExpression="attribute_not_exists(PK)" if item is None else "version = :v",
                **({"ExpressionAttributeValues": to_item({":v": version})} if item is not None else {}),
            )
        except ClientError as e:
            if condition_failed(e):
                return False  # another attempt of the same subject wrote first: read again
            raise
        return True

    def note_guess(self, account_id: str, member_number: str, user_id: str, window_s: int) -> tuple[float, int]:
        """Count a failed attempt against a member from any LINE user (atomic ADD, no conflict
        however many users guess at once). (failures in the sliding window, estimated from two
        buckets; distinct LINE users in the current bucket)."""
        now = _now()
        bucket = now // window_s
        r = self.db.update_item(
            TableName=self.table,
            Key=to_item(keys.link_attempts(account_id, f"GUESS#{member_number}", bucket)),
            UpdateExpression="ADD #c :one, #u :user SET expires_at = :exp, entity = :e",
            ExpressionAttributeNames={"#c": "count", "#u": "users"},
            ExpressionAttributeValues={
                **to_item({":one": 1, ":exp": (bucket + 2) * window_s, ":e": "link_guesses"}),
                ":user": {"SS": [user_id]},
            },
            ReturnValues="ALL_NEW",
        )
        cur = from_item(r["Attributes"])
        prev = self._get_consistent(keys.link_attempts(account_id, f"GUESS#{member_number}", bucket - 1)) or {}
        users = len(set(cur.get("users", ())) | set(prev.get("users", ())))
        return sliding_estimate(int(prev.get("count", 0)), int(cur["count"]), now, window_s), users

    def guesses(self, account_id: str, member_number: str, window_s: int) -> float:
        """The sliding estimate of failed attempts against a member (all LINE users)."""
        now = _now()
        bucket = now // window_s
        cur, prev = (
            self._get_consistent(keys.link_attempts(account_id, f"GUESS#{member_number}", b)) or {}
            for b in (bucket, bucket - 1)
        )
        return sliding_estimate(int(prev.get("count", 0)), int(cur.get("count", 0)), now, window_s)

    def raise_guess_alert(self, account_id: str, member_number: str, window_s: int, reason: str) -> bool:
        """A staff alert in the link audit, at most once per member and hour bucket (the marker
        and the audit entry in one transaction). True if this call raised it."""
        bucket = _now() // window_s
        marker = {
            **keys.guess_alert(account_id, member_number, bucket),
            "entity": "guess_alert",
            "expires_at": (bucket + 2) * window_s,
        }
        entry = self._audit(
            account_id, "guessing_alert", f"MEMBER#{member_number}", member_number, "", "system", reason
        )
        try:
            self.db.transact_write_items(
                TransactItems=[
                    {
                        "Put": {
                            "TableName": self.table,
                            "Item": to_item(marker),
                            "ConditionExpression": "attribute_not_exists(PK)",
                        }
                    },
                    {"Put": {"TableName": self.table, "Item": to_item(entry)}},
                ]
            )
        except ClientError as e:
            if condition_failed(e):
                return False  # already raised in this bucket
            raise
        return True

    def audit_trail(self, account_id: str, limit: int = 100) -> list[dict[str, Any]]:
        r = self.db.query(
            TableName=self.table,
            KeyConditionExpression="PK = :pk",
            ExpressionAttributeValues=to_item({":pk": f"ACCOUNT#{account_id}#AUDIT"}),
            ScanIndexForward=False,
            Limit=limit,
        )
        return [{k: v for k, v in from_item(i).items() if k not in ("PK", "SK")} for i in r.get("Items", [])]

    @staticmethod
    def _audit(
        account_id: str, action: str, target: str, member_number: str, user_id: str, actor: str, reason: str | None
    ) -> dict[str, Any]:
        now_ms = int(time.time() * 1000)
        return {
            **keys.audit(account_id, now_ms, uuid4_hex()),
            "entity": "audit",
            "action": action,
            "target": target,
            "member_number": member_number,
            "user_id": user_id,
            "actor": actor,
            "reason": reason,
            "at_ms": now_ms,
        }


def _next_generation(table: str, account_id: str, target: str, expected: int | None) -> dict[str, Any]:
    """Move the target's generation on (a link, a release); with ``expected``, only from that
    generation - the one the nonce was issued in."""
    update: dict[str, Any] = {
        "TableName": table,
        "Key": to_item(keys.link_generation(account_id, target)),
        "UpdateExpression": "ADD gen :one SET entity = :e",
        "ExpressionAttributeValues": to_item({":one": 1, ":e": "link_generation"}),
    }
    if expected is not None:
        if expected == 0:
            update["ConditionExpression"] = "attribute_not_exists(gen)"
        else:
            update["ConditionExpression"] = "gen = :g"
            update["ExpressionAttributeValues"] = to_item({":one": 1, ":e": "link_generation", ":g": expected})
    return {"Update": update}


def uuid4_hex() -> str:
    import uuid

    return uuid.uuid4().hex


class DynamoOtpStore(Repository):
    """One-time codes (keyed hashes, 5 minutes, a few tries, single use) and the link
    session's progress through them."""

    def __init__(self, table: str):
        self.table = table

    def put(
        self, account_id: str, session_id: str, channel: str, code_hash: str, member_number: str | None, expires_at: int
    ) -> None:
        self.db.put_item(
            TableName=self.table,
            Item=to_item(
                {
                    **keys.link_otp(account_id, session_id, channel),
                    "entity": "link_otp",
                    "code_hash": code_hash,
                    "member_number": member_number,
                    "tries": 0,
                    "expires_at": expires_at,
                }
            ),
        )

    def take(
        self, account_id: str, session_id: str, channel: str, code_hash: str, max_tries: int
    ) -> tuple[bool, str | None]:
        """Count a try; on a match delete the code (single use). (matched, member number)."""
        key = to_item(keys.link_otp(account_id, session_id, channel))
        try:
            r = self.db.update_item(
                TableName=self.table,
                Key=key,
                UpdateExpression="ADD tries :one",
                ConditionExpression="attribute_exists(PK) AND tries < :max AND expires_at > :now",
                ExpressionAttributeValues=to_item({":one": 1, ":max": max_tries, ":now": _now()}),
                ReturnValues="ALL_NEW",
            )
        except ClientError as e:
            if condition_failed(e):
                return False, None
            raise
        d = from_item(r["Attributes"])
        if not hmac_eq(d["code_hash"], code_hash) or not d.get("member_number"):
            return False, d.get("member_number")
        try:
            self.db.delete_item(TableName=self.table, Key=key, ConditionExpression="attribute_exists(PK)")
        except ClientError as e:
            if condition_failed(e):
                return False, None  # used concurrently
            raise
        return True, d["member_number"]

    def set_stage(self, account_id: str, session_id: str, stage: str, member_number: str | None) -> None:
        self.db.update_item(
            TableName=self.table,
            Key=to_item(keys.link_session(account_id, session_id)),
            UpdateExpression="SET otp_stage = :s, otp_member = :m",
            ExpressionAttributeValues=to_item({":s": stage, ":m": member_number or ""}),
        )


def hmac_eq(a: str, b: str) -> bool:
    import hmac

    return hmac.compare_digest(a, b)
