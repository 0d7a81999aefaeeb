"""Quota under concurrency on the local stack's moto server (real conditional writes): 50 sends
race against a Light plan with 100 free messages left; the sandbox never gets more than 100."""

from __future__ import annotations

import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from tests.e2e.conftest import OPERATOR_KEY, RunningStack
from tsunagu_local.client import request

pytestmark = pytest.mark.e2e


def test_fifty_concurrent_sends_never_pass_a_light_plans_free_messages(
    local_stack: RunningStack, monkeypatch: Any
) -> None:
    from tsunagu import wiring
    from tsunagu.adapters.billing import DynamoBillingStore
    from tsunagu.adapters.line_api import LineClient
    from tsunagu.adapters.usage import DynamoUsageLedger
    from tsunagu.services.billing import BillingService, QuotaRefused, jst_today

    api, sb = local_stack.api, local_stack.sandbox
    r = request(
        "POST",
        f"{api}/accounts",
        {"name": "light", "plan": "light"},
        headers={"Authorization": f"Bearer {OPERATOR_KEY}"},
    )
    aid, auth = r.json["account_id"], {"Authorization": f"Bearer {r.json['api_key']}"}
    ch = request("POST", f"{sb}/_sandbox/channels", {}).json
    creds = {"channel_secret": ch["channelSecret"], "access_token": ch["accessToken"]}
    request("PUT", f"{api}/accounts/{aid}/channel", creds, headers=auth)
    table = next(t for t in local_stack.client("dynamodb").list_tables()["TableNames"] if "Idempotency" not in t)
    for k, v in {
        "AWS_ENDPOINT_URL": local_stack.moto,
        "AWS_DEFAULT_REGION": "ap-northeast-1",
        "AWS_ACCESS_KEY_ID": "local",
        "AWS_SECRET_ACCESS_KEY": "local",
        "TABLE_NAME": table,
        "SECRET_PREFIX": "tsunagu/dev",
    }.items():
        monkeypatch.setenv(k, v)
    wiring.reset()
    try:
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
    finally:
        wiring.reset()
