"""Bulk seeding: fill one account on the local stack with friends, a year of 1:1 chats and a
member register, through BatchWriteItem (25 items a call, unprocessed items retried), so that
benchmarks and a curious user can try tsunagu at a realistic size in minutes.

    python -m tsunagu_local seed --account ACCOUNT_ID --friends 10000 --chats 100000 --members 10000

Items have exactly the shapes the real stores write (docs/data-model.md): friends with the
friend counter kept consistent (only friends that were not there yet are counted, so a re-run
adds nothing), each chat message with its id pointer, members with their keyed-hash factors and
factor look-ups. The data is synthetic and deterministic (friend i of an account always has the
same LINE user id; member i the same member number and factors): no raw phone number, birth
date or e-mail is ever written or printed - only the HMACs made with the account's factor key,
the same key the API uses (read from, or created in, Secrets Manager under the stack's name).
Members get no password: scrypt costs ~50 ms each, so 10,000 would take minutes on their own."""

from __future__ import annotations

import hashlib
import os
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import boto3
from boto3.dynamodb.types import TypeDeserializer, TypeSerializer
from botocore.exceptions import ClientError

from tsunagu import keys

# The one import of tsunagu's domain code: the member register's own validation and keyed
# hashing, so seeded factors verify exactly as imported ones do. (Path to update when the
# register moves into its capability package.)
from tsunagu.linking.members import MemberIn, to_record
from tsunagu.linking.store import member_item
from tsunagu_local.cli import progress
from tsunagu_local.resources import REGION

BATCH = 25
DAY_MS = 86_400_000
CHAT_TEXTS_IN = (
    "こんにちは",
    "今日は営業していますか？",
    "ポイントはいくら残っていますか",
    "配達の時間を変えたいです",
    "ありがとうございました",
)
CHAT_TEXTS_OUT = (
    "お問い合わせありがとうございます。",
    "本日は10時から19時まで営業しております。",
    "担当者より折り返しご連絡します。",
)

_ser, _de = TypeSerializer(), TypeDeserializer()


def to_item(d: dict[str, Any]) -> dict[str, Any]:
    return {k: _ser.serialize(v) for k, v in d.items() if v is not None}


def friend_user_id(account_id: str, i: int) -> str:
    """LINE's shape: U + 32 hex digits; the same for friend i of an account every time."""
    return "U" + hashlib.sha256(f"{account_id}:friend:{i}".encode()).hexdigest()[:32]


def member_number(i: int) -> str:
    return f"{i + 1:08d}"


def member_row(i: int) -> dict[str, Any]:
    """Member i's register row as a business would import it (fictitious values, hashed by
    ``to_record`` before anything is written)."""
    return {
        "member_number": member_number(i),
        "phone": f"090{i:08d}",
        "birth_date": f"{1950 + i % 50}{1 + i % 12:02d}{1 + i % 28:02d}",
        "email": f"member{i}@example.jp",
        "lines": [{"line_id": "main", "usage_code": f"{4000_0000_0000_0000 + i:016d}", "monthly_base_fee": 1000}],
    }


@dataclass
class Seeder:
    ddb: Any
    sm: Any
    table: str
    secret_prefix: str
    account_id: str
    show_progress: bool = True
    new_chats: int = 0

    def check_account(self) -> dict[str, Any]:
        r = self.ddb.get_item(TableName=self.table, Key=to_item(keys.account(self.account_id)), ConsistentRead=True)
        if "Item" not in r:
            raise SystemExit(f"no account {self.account_id} in {self.table}: create it with POST /accounts first")
        return {k: _de.deserialize(v) for k, v in r["Item"].items()}

    # ------------------------------------------------------------------ writing
    def write(self, items: Iterator[dict[str, Any]], total: int, what: str) -> int:
        written = 0
        chunk: list[dict[str, Any]] = []
        for item in items:
            chunk.append({"PutRequest": {"Item": to_item(item)}})
            if len(chunk) == BATCH:
                written += self._batch(chunk)
                chunk = []
                self._progress(written, total, what)
        if chunk:
            written += self._batch(chunk)
        self._progress(written, total, what, final=True)
        return written

    def _batch(self, requests: list[dict[str, Any]]) -> int:
        pending, delay = requests, 0.05
        while pending:
            r = self.ddb.batch_write_item(RequestItems={self.table: pending})
            pending = r.get("UnprocessedItems", {}).get(self.table, [])
            if pending:
                time.sleep(delay)
                delay = min(delay * 2, 2.0)
        return len(requests)

    def _progress(self, written: int, total: int, what: str, final: bool = False) -> None:
        if self.show_progress and (final or written % 2500 == 0):
            progress(written, total, what=what)
            if final:
                sys.stderr.write("\n")

    # ------------------------------------------------------------------ friends
    def friends(self, n: int) -> int:
        """Friends 0..n-1 of the account (``state`` friend); returns how many were new."""
        now = datetime.now(UTC)
        now_ms = int(now.timestamp() * 1000)
        new: list[dict[str, Any]] = []
        for start in range(0, n, 100):
            ids = [friend_user_id(self.account_id, i) for i in range(start, min(start + 100, n))]
            existing = self._existing([keys.friend(self.account_id, u) for u in ids])
            for j, user_id in enumerate(ids):
                if keys.friend(self.account_id, user_id)["SK"] in existing:
                    continue
                since = now_ms - ((start + j) * 7919 % 730) * DAY_MS  # followed within the last two years
                new.append(
                    {
                        **keys.friend(self.account_id, user_id),
                        "entity": "friend",
                        "user_id": user_id,
                        "state": "friend",
                        "since_ms": since,
                        "last_event_ms": since,
                        "updated_at": now.isoformat(),
                    }
                )
        self.write(iter(new), len(new), "friends")
        if new:
            # The counter the friendship worker keeps with ADD: seeded friends count like real ones.
            self.ddb.update_item(
                TableName=self.table,
                Key=to_item(keys.friend_counts(self.account_id)),
                UpdateExpression="ADD friends :f, blocked :b SET entity = :e",
                ExpressionAttributeValues=to_item({":f": len(new), ":b": 0, ":e": "friend_counts"}),
            )
        return len(new)

    def _existing(self, item_keys: list[dict[str, str]]) -> set[str]:
        found: set[str] = set()
        req: dict[str, Any] = {
            self.table: {"Keys": [to_item(k) for k in item_keys], "ProjectionExpression": "SK", "ConsistentRead": True}
        }
        while req:
            r = self.ddb.batch_get_item(RequestItems=req)
            found |= {i["SK"]["S"] for i in r.get("Responses", {}).get(self.table, [])}
            req = r.get("UnprocessedKeys") or {}
        return found

    # ------------------------------------------------------------------ chats
    def chats(self, n: int, friends: int, retention_days: int) -> int:
        """n messages over the last 365 days among friends 0..friends-1 (two in three from the
        user, one in three a reply), as the message worker archives them; returns how many were
        new. Message i always has the same id and, for the same ``friends``, the same user, so a
        re-run with the same numbers adds nothing."""
        if friends < 1:
            raise SystemExit("--chats needs --friends (the messages are those friends' chats)")
        now_ms = int(time.time() * 1000)
        span = 365 * DAY_MS

        def message(i: int) -> tuple[str, str]:
            return friend_user_id(self.account_id, i * 31 % friends), f"5{i:017d}"

        def items() -> Iterator[dict[str, Any]]:
            for start in range(0, n, 100):
                batch = range(start, min(start + 100, n))
                # A message already archived (a re-run) is left alone, as the worker would.
                there = self._existing([keys.chat_message_pointer(self.account_id, *message(i)) for i in batch])
                for i in batch:
                    user_id, message_id = message(i)
                    if keys.chat_message_pointer(self.account_id, user_id, message_id)["SK"] in there:
                        continue
                    self.new_chats += 1
                    ts = now_ms - span + (i * span // n)
                    inbound = i % 3 != 2
                    key = keys.chat_message(self.account_id, user_id, ts, message_id)
                    expires = ts // 1000 + retention_days * 86_400
                    texts = CHAT_TEXTS_IN if inbound else CHAT_TEXTS_OUT
                    yield {
                        **key,
                        "entity": "chat_message",
                        "user_id": user_id,
                        "timestamp_ms": ts,
                        "message_id": message_id,
                        "direction": "in" if inbound else "out",
                        "kind": "text",
                        "content": texts[i % len(texts)],
                        "origin": "user" if inbound else "reply",
                        "expires_at": expires,
                    }
                    yield {
                        **keys.chat_message_pointer(self.account_id, user_id, message_id),
                        "entity": "chat_pointer",
                        "msg_sk": key["SK"],
                        "expires_at": expires,
                    }

        self.new_chats = 0
        self.write(items(), 2 * n, "chat items")
        return self.new_chats

    # ------------------------------------------------------------------ members
    def factor_key(self) -> bytes:
        """The account's factor key, as SecretsManagerFactorKeys reads or creates it."""
        name = f"{self.secret_prefix}/accounts/{self.account_id}/factor-key"
        try:
            return bytes.fromhex(self.sm.get_secret_value(SecretId=name)["SecretString"])
        except ClientError as e:
            if e.response["Error"]["Code"] != "ResourceNotFoundException":
                raise
        value = os.urandom(32).hex()
        self.sm.create_secret(
            Name=name,
            SecretString=value,
            Description="tsunagu: key for hashes of member verification factors",
            Tags=[{"Key": "tsunagu:account", "Value": self.account_id}],
        )
        return bytes.fromhex(value)

    def members(self, n: int) -> int:
        key = self.factor_key()
        now = int(time.time())
        aid = self.account_id

        def items() -> Iterator[dict[str, Any]]:
            for i in range(n):
                r = to_record(MemberIn.model_validate(member_row(i)), key)
                yield member_item(aid, r, now)
                mn = r.member_number
                if r.phone_hash:
                    yield {**keys.member_phone(aid, r.phone_hash, mn), "entity": "member_phone", "member_number": mn}
                if r.email_hash:
                    email = keys.factor_index(aid, "email", r.email_hash)
                    yield {**email, "entity": "factor_index", "member_number": mn}
                for ln in r.lines:
                    if ln.usage_code_hash:
                        yield {
                            **keys.factor_index(aid, "usage_code", ln.usage_code_hash),
                            "entity": "factor_index",
                            "member_number": r.member_number,
                            "line_id": ln.line_id,
                        }

        return self.write(items(), 4 * n, "member items") // 4


def connect(endpoint: str) -> tuple[Any, Any]:
    session = boto3.session.Session(
        region_name=REGION,
        aws_access_key_id=os.environ.get("AWS_ACCESS_KEY_ID", "local"),
        aws_secret_access_key=os.environ.get("AWS_SECRET_ACCESS_KEY", "local"),
    )
    return session.client("dynamodb", endpoint_url=endpoint), session.client("secretsmanager", endpoint_url=endpoint)


def run(seeder: Seeder, friends: int, chats: int, members: int, say: Callable[[str], None] = print) -> dict[str, Any]:
    account = seeder.check_account()
    retention = int((account.get("settings") or {}).get("chat_retention_days") or 365)
    out: dict[str, Any] = {}
    t0 = time.perf_counter()
    if friends:
        out["friends_new"] = seeder.friends(friends)
    if chats:
        out["chats"] = seeder.chats(chats, friends, retention)
    if members:
        out["members"] = seeder.members(members)
    out["seconds"] = round(time.perf_counter() - t0, 1)
    say(f"seeded {seeder.account_id}: {out}")
    return out
