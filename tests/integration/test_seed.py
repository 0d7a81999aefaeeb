"""``python -m tsunagu_local seed``: a seeded account reads back through the real API, and each
seeded item has the shape the real code writes (compared with items written by the real
friendship worker, message worker and member import)."""

from __future__ import annotations

import csv
import io
from typing import Any

import boto3
import pytest
from boto3.dynamodb.types import TypeDeserializer

from tests.conftest import line_event
from tests.integration.conftest import OPERATOR_KEY
from tests.integration.test_webhook_and_workers import SECRET, TOKEN, friendship, sqs_event
from tsunagu import keys
from tsunagu.infrastructure.secrets import SecretsManagerFactorKeys
from tsunagu.linking.domain import factor_hash, normalize_phone_jp
from tsunagu_local import seed

_de = TypeDeserializer()


@pytest.fixture
def account(api) -> tuple[str, dict[str, str]]:
    _, body = api.call("POST", "/accounts", {"name": "生協テスト店"}, {"Authorization": f"Bearer {OPERATOR_KEY}"})
    auth = {"Authorization": f"Bearer {body['api_key']}"}
    api.call("PUT", f"/accounts/{body['account_id']}/channel", {"channel_secret": SECRET, "access_token": TOKEN}, auth)
    return body["account_id"], auth


def seeder(stack, aid: str) -> seed.Seeder:
    prefix = next(iter(stack.functions.values())).environment["SECRET_PREFIX"]
    return seed.Seeder(
        boto3.client("dynamodb"), boto3.client("secretsmanager"), stack.tables["Table"], prefix, aid, False
    )


def items_under(stack, pk: str) -> list[dict[str, Any]]:
    r = boto3.client("dynamodb").query(
        TableName=stack.tables["Table"],
        KeyConditionExpression="PK = :pk",
        ExpressionAttributeValues={":pk": {"S": pk}},
    )
    return r["Items"]


def shape(item: dict[str, Any]) -> dict[str, str]:
    """Attribute names and DynamoDB types (values differ, the shape must not)."""
    return {k: next(iter(v)) for k, v in item.items()}


def test_a_seeded_account_reads_back_through_the_api(api, stack, account):
    aid, auth = account
    out = seed.run(seeder(stack, aid), friends=120, chats=300, members=30, say=lambda _: None)
    assert (out["friends_new"], out["chats"], out["members"]) == (120, 300, 30)

    _, page = api.call("GET", f"/accounts/{aid}/friends?limit=500", headers=auth)
    assert page["counts"] == {"friends": 120, "blocked": 0}
    assert len(page["friends"]) == 120 and {f["state"] for f in page["friends"]} == {"friend"}

    status, text = api.call("GET", f"/accounts/{aid}/chats?limit=1000", headers=auth)
    assert status == 200
    rows = list(csv.reader(io.StringIO(text.removeprefix("\ufeff"), newline="")))
    assert len(rows) == 1 + 300  # header + every message, across all users, in time order
    user = seed.friend_user_id(aid, 0)
    _, one = api.call("GET", f"/accounts/{aid}/chats/{user}?limit=1000", headers=auth)
    mine = list(csv.reader(io.StringIO(one.removeprefix("\ufeff"), newline="")))[1:]
    assert mine and all(user in r for r in mine)

    status, m = api.call("GET", f"/accounts/{aid}/members/{seed.member_number(7)}", headers=auth)
    assert status == 200, m
    assert m["on_file"] == {"phone": True, "birth_date": True, "email": True, "login_id": False, "password": False}
    assert m["lines"] == [{"line_id": "main", "monthly_base_fee": 1000, "usage_code": True}]


def test_seeding_again_writes_the_same_items_and_counts_no_friend_twice(api, stack, account):
    aid, auth = account
    seed.run(seeder(stack, aid), friends=40, chats=50, members=5, say=lambda _: None)
    again = seed.run(seeder(stack, aid), friends=40, chats=50, members=5, say=lambda _: None)
    assert (again["friends_new"], again["chats"]) == (0, 0)
    more = seed.run(seeder(stack, aid), friends=60, chats=0, members=0, say=lambda _: None)
    assert more["friends_new"] == 20
    _, page = api.call("GET", f"/accounts/{aid}/friends?limit=500", headers=auth)
    assert page["counts"]["friends"] == 60 == len(page["friends"])
    _, text = api.call("GET", f"/accounts/{aid}/chats?limit=1000", headers=auth)
    assert text.count("\r\n") == 1 + 50


def test_seeded_factors_are_the_apis_keyed_hashes_and_nothing_raw_is_stored(api, stack, account):
    aid, _ = account
    s = seeder(stack, aid)
    seed.run(s, friends=0, chats=0, members=3, say=lambda _: None)
    key = SecretsManagerFactorKeys(s.secret_prefix).key(aid)  # what the link page verifies with
    row = seed.member_row(2)
    item = {
        k: _de.deserialize(v)
        for k, v in boto3.client("dynamodb")
        .get_item(TableName=s.table, Key={k: {"S": v} for k, v in keys.member(aid, row["member_number"]).items()})[
            "Item"
        ]
        .items()
    }
    assert item["phone_hash"] == factor_hash(key, "phone", normalize_phone_jp(row["phone"]))
    assert item["birth_hash"] == factor_hash(key, "birth", row["birth_date"])
    # The phone look-up used by notification routing finds the member.
    assert items_under(stack, keys.member_phone_partition(aid, item["phone_hash"]))[0]["member_number"] == {
        "S": row["member_number"]
    }
    dump = repr(boto3.client("dynamodb").scan(TableName=s.table)["Items"])
    for raw in (row["phone"], row["birth_date"], row["email"], row["lines"][0]["usage_code"]):
        assert raw not in dump


def test_seeded_items_have_the_shapes_the_real_code_writes(api, stack, account):
    aid, auth = account
    s = seeder(stack, aid)
    seed.run(s, friends=2, chats=2, members=1, say=lambda _: None)

    # A friend made by the friendship worker from a follow event.
    real_user = "U" + "e" * 32
    friendship(api, stack, aid, line_event("follow", user=real_user, ts=1000))
    partition = items_under(stack, keys.account_partition(aid))
    by_sk = {i["SK"]["S"]: i for i in partition}
    assert shape(by_sk[f"FRIEND#{seed.friend_user_id(aid, 0)}"]) == shape(by_sk[f"FRIEND#{real_user}"])

    # A chat message and its pointer archived by the message worker.
    ev = line_event(
        "message", user=seed.friend_user_id(aid, 1), ts=5000, message={"type": "text", "id": "99", "text": "x"}
    )
    api.functions["MessageWorkerFunction"].invoke(sqs_event(stack, [{"accountId": aid, "receivedAt": 0, "event": ev}]))
    chat = {i["SK"]["S"]: i for i in items_under(stack, keys.chat_partition(aid, seed.friend_user_id(aid, 1)))}
    real_msg = next(v for k, v in chat.items() if k.startswith("MSG#") and k.endswith("#99"))
    seeded_msg = next(v for k, v in chat.items() if k.startswith("MSG#") and not k.endswith("#99"))
    assert shape(seeded_msg) == shape(real_msg)
    assert shape(chat["MSGID#99"]) == shape(
        next(v for k, v in chat.items() if k.startswith("MSGID#") and k != "MSGID#99")
    )

    # The member import of the same row, through the API, writes the same items - same hashes,
    # since both use the account's factor key - apart from the time of writing.
    row = seed.member_row(0)
    seeded = sorted((i for i in items_under(stack, keys.account_partition(aid)) if "member_number" in i), key=repr)
    phone_items = items_under(
        stack, keys.member_phone_partition(aid, _de.deserialize(by_sk[f"MEMBER#{row['member_number']}"]["phone_hash"]))
    )
    client = boto3.client("dynamodb")
    for i in seeded + phone_items:
        client.delete_item(TableName=s.table, Key={"PK": i["PK"], "SK": i["SK"]})
    status, out = api.call("POST", f"/accounts/{aid}/members", {"members": [row]}, auth)
    assert (status, out["imported"]) == (200, 1), out
    imported = sorted((i for i in items_under(stack, keys.account_partition(aid)) if "member_number" in i), key=repr)
    imported_phone = items_under(stack, phone_items[0]["PK"]["S"])

    def without_time(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return [{k: v for k, v in i.items() if k != "updated_at"} for i in items]

    assert without_time(imported) == without_time(seeded)
    assert imported_phone == phone_items
    assert len(seeded) == 3  # member, e-mail look-up, usage-code look-up
