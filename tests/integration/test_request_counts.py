"""Request counts per hot operation (issue 21, capacity model in docs/scaling.md): every AWS call
the code makes is counted at botocore's ``_make_api_call`` (the real client, not a mock), and
LINE calls at the sender's LINE client. The count per redemption, link and notification send is
the same on an account with a few items as on one seeded with thousands of friends and chats:
nothing on these paths scans or pages through a partition that grows."""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any

import boto3
import pytest
from botocore.client import BaseClient

from tests.integration.test_coupons import account as coupon_account
from tests.integration.test_coupons import code_for, coupon, grant, new_user, redeem
from tests.integration.test_notifications import FakeLine, approved_template, item, submit
from tests.integration.test_notifications import account as sending_account
from tsunagu import wiring
from tsunagu.notifications.service import SenderConfig
from tsunagu_local import seed


class Calls:
    """Counts (service, operation) for every botocore call while recording."""

    def __init__(self) -> None:
        self.counts: Counter[tuple[str, str]] = Counter()
        self.on = False

    def during(self, fn: Callable[[], Any]) -> tuple[Any, Counter[tuple[str, str]]]:
        self.counts.clear()
        self.on = True
        try:
            out = fn()
        finally:
            self.on = False
        return out, Counter(self.counts)


@pytest.fixture
def calls(stack, monkeypatch: pytest.MonkeyPatch) -> Iterator[Calls]:
    c = Calls()
    real = BaseClient._make_api_call

    def counted(self: BaseClient, operation_name: str, api_params: dict[str, Any]) -> Any:
        if c.on:
            c.counts[(self.meta.service_model.service_name, operation_name)] += 1
        return real(self, operation_name, api_params)

    monkeypatch.setattr(BaseClient, "_make_api_call", counted)
    yield c


def grow(stack, aid: str, friends: int, chats: int) -> int:
    """Seeds ``friends`` friends and ``chats`` chats into the account (batch writes); returns the
    table's item count afterwards."""
    prefix = next(iter(stack.functions.values())).environment["SECRET_PREFIX"]
    ddb = boto3.client("dynamodb")
    s = seed.Seeder(ddb, boto3.client("secretsmanager"), stack.tables["Table"], prefix, aid, False)
    seed.run(s, friends, chats, 0, say=lambda _m: None)
    return int(ddb.scan(TableName=stack.tables["Table"], Select="COUNT")["Count"])


def dynamodb(counts: Counter[tuple[str, str]]) -> dict[str, int]:
    return {op: n for (svc, op), n in counts.items() if svc == "dynamodb"}


def no_growing_reads(ops: dict[str, int]) -> None:
    assert "Scan" not in ops, ops


def test_a_redemption_costs_the_same_requests_on_a_small_and_a_large_account(api, stack, calls):
    aid, auth = coupon_account(api)
    cid = coupon(api, aid, auth)
    users = [new_user() for _ in range(2)]
    grant(api, aid, auth, cid, *users)

    def once(user: str) -> Counter[tuple[str, str]]:
        code = code_for(aid, cid, user)
        (status, out), counts = calls.during(lambda: redeem(api, aid, auth, code))
        assert status == 201, out
        return counts

    small = once(users[0])
    items = grow(stack, aid, friends=300, chats=1500)
    assert items > 3000
    large = once(users[1])
    assert dynamodb(small) == dynamodb(large)
    ops = dynamodb(large)
    no_growing_reads(ops)
    # One transaction writes the redemption (R-COUP rules: one use per person, caps, idempotency).
    assert ops.get("TransactWriteItems") == 1, ops
    assert sum(ops.values()) <= 8, ops


def test_a_link_costs_the_same_requests_on_a_small_and_a_large_account(api, stack, calls):
    aid, _auth = coupon_account(api)
    store = wiring.link_store()

    def once(number: str) -> Counter[tuple[str, str]]:
        user, nonce = new_user(), uuid.uuid4().hex

        def attempt() -> None:
            store.put_nonce(aid, nonce, user, f"MEMBER#{number}", number, 2**31)
            assert store.link(aid, nonce, user, f"MEMBER#{number}", number, None) is None

        return calls.during(attempt)[1]

    small = once("100001")
    grow(stack, aid, friends=300, chats=1500)
    large = once("100002")
    assert dynamodb(small) == dynamodb(large)
    ops = dynamodb(large)
    no_growing_reads(ops)
    assert ops.get("TransactWriteItems") == 1, ops  # the link itself is one transaction (R-LINK)


def test_a_notification_send_costs_the_same_requests_and_one_line_call(api, stack, calls):
    aid, auth = sending_account(api, notification_routing="always_notification")
    tid = approved_template(api, aid, auth)
    line = FakeLine()
    sender = wiring.notification_sender()
    sender.line = line
    sender.sleep = lambda _s: None
    sender.config = SenderConfig(rate_per_second=10_000, backoff_s=0.0)

    def once(ref: str) -> Counter[tuple[str, str]]:
        _batch, (msg,) = submit(api, stack, aid, auth, tid, [item(ref)])
        before = len(line.calls)
        result, counts = calls.during(lambda: sender.send(msg))
        assert result == "sent"
        assert len(line.calls) - before == 1  # one LINE request per notification
        return counts

    once("o-warm")  # the first send also reads the channel's token, which the sender then caches
    small = once("o-small")
    grow(stack, aid, friends=300, chats=1500)
    large = once("o-large")
    assert dynamodb(small) == dynamodb(large)
    no_growing_reads(dynamodb(large))
    assert sum(dynamodb(large).values()) <= 6, dynamodb(large)
