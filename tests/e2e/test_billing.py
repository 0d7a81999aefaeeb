"""Quota under concurrency on the local stack's moto server (real conditional writes): 50 sends
race against a Light plan with 100 free messages left; the sandbox never gets more than 100."""

from __future__ import annotations

import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.e2e.conftest import RunningStack, new_account
from tsunagu_local.client import request

pytestmark = pytest.mark.e2e


def test_fifty_concurrent_sends_never_pass_a_light_plans_free_messages(
    local_stack: RunningStack, in_process: str
) -> None:
    from tsunagu import wiring
    from tsunagu.billing.service import BillingService, QuotaRefused, jst_today
    from tsunagu.billing.store import DynamoBillingStore
    from tsunagu.billing.usage_store import DynamoUsageLedger
    from tsunagu.infrastructure.line_api import LineClient

    sb = local_stack.sandbox
    aid, _ = new_account(local_stack, plan="light")
    table = in_process
    svc = BillingService(
        DynamoBillingStore(table),
        DynamoUsageLedger(table),
        wiring.account_store(),
        wiring.friend_store(),
        wiring.channel_secrets(),
        LineClient(sb),
    )
    month = jst_today().strftime("%Y-%m")
    used = str(uuid.uuid4())
    assert svc.store.reserve(aid, used, month, 4_900, None)  # Light: 5,000 free, 100 left
    assert svc.store.commit(aid, used, "broadcast", 4_900, 1_795_000_000_000)
    request("DELETE", f"{sb}/_sandbox/calls")

    def one(i: int) -> int:
        to = ["U" + uuid.uuid4().hex for _ in range(3)]  # 3 recipients each: 150 asked for
        try:
            return int(
                svc.send(
                    aid,
                    "multicast",
                    {"to": to, "messages": [{"type": "text", "text": "x"}]},
                    str(uuid.uuid4()),
                    None,
                )["recipients"]
            )
        except QuotaRefused:
            return 0

    with ThreadPoolExecutor(16) as pool:
        sent = sum(pool.map(one, range(50)))
    calls = request("GET", f"{sb}/_sandbox/calls?path=/v2/bot/message/multicast").json["calls"]
    delivered = sum(len(c["body"]["to"]) for c in calls if c["status"] == 200)
    assert sent == delivered <= 100
    assert sent == 99  # 33 sends of 3 fit; the 34th would pass 100
    assert svc.store.reserved(aid, month) == 4_900 + sent
