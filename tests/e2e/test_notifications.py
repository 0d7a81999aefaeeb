"""Notification messages end to end on the local stack: the batch goes through SQS to the
sender, the LINE sandbox accepts some numbers (and sends their ``delivery`` events back through
the signed webhook), answers 422 for others and fails once with a 500; the batch report and the
undelivered CSV tell the business which is which. Nothing raw reaches the table or the logs."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from typing import Any

import pytest

from tests.e2e.conftest import OPERATOR_KEY, RunningStack, new_account
from tsunagu.notifications.phone import line_hash
from tsunagu_local.client import request

pytestmark = pytest.mark.e2e

PHONES = {
    "r-1": ("090-1234-5678", "+819012345678"),  # delivered
    "r-2": ("０８０－２２２２－３３３３", "+818022223333"),  # delivered (full-width input)
    "r-3": ("070 4444 5555", "+817044445555"),  # no LINE user: 422
    "r-4": ("+66 81 234 5678", "+66812345678"),  # accepted, never delivered (no consent)
}


def test_batch_through_the_sandbox_and_its_report(local_stack: RunningStack) -> None:
    api, sb = local_stack.api, local_stack.sandbox
    r = request(
        "POST",
        f"{api}/accounts",
        {"name": "carrier", "account_type": "premium", "certified_provider": True},
        headers={"Authorization": f"Bearer {OPERATOR_KEY}"},
    )
    aid, auth = r.json["account_id"], {"Authorization": f"Bearer {r.json['api_key']}"}
    ch = request("POST", f"{sb}/_sandbox/channels", {"webhookUrl": f"{api}/line/{aid}/webhook"}).json
    creds = {"channel_secret": ch["channelSecret"], "access_token": ch["accessToken"]}
    assert request("PUT", f"{api}/accounts/{aid}/channel", creds, headers=auth).status == 200

    content = {
        "template_key": "shipment_completed_ja",
        "body": {
            "emphasizedItem": {"itemKey": "date_001_ja", "content": "{{date}}"},
            "items": [{"itemKey": "order_number_001_ja", "content": "{{order}}"}],
        },
    }
    t = request(
        "POST",
        f"{api}/accounts/{aid}/notification-templates",
        {"name": "shipped", "kind": "template", "content": content},
        headers=auth,
    ).json
    t = request(
        "POST", f"{api}/accounts/{aid}/notification-templates/{t['template_id']}/approve", {"version": 1}, headers=auth
    ).json
    assert t["status"] == "approved"

    reachable = [line_hash(PHONES[r][1]) for r in ("r-1", "r-2", "r-4")]
    pnp = {"reachable": reachable, "undelivered": [line_hash(PHONES["r-4"][1])], "fail_next": 1}
    assert request("PUT", f"{sb}/_sandbox/pnp", pnp).status == 200
    request("DELETE", f"{sb}/_sandbox/calls")
    items = [
        {"reference": r, "phone": raw, "parameters": {"date": "11/22", "order": r}} for r, (raw, _) in PHONES.items()
    ]
    items.append({"reference": "r-5", "phone": "+1 202 555 0143", "parameters": {"date": "11/22", "order": "r-5"}})
    r = request(
        "POST", f"{api}/accounts/{aid}/notifications", {"template_id": t["template_id"], "items": items}, headers=auth
    )
    assert r.status == 202, r.text
    batch_id = r.json["batch_id"]
    assert (r.json["accepted"], [x["code"] for x in r.json["refused"]]) == (4, ["country_not_allowed"])

    report = wait_for(lambda: request("GET", f"{api}/accounts/{aid}/notifications/{batch_id}", headers=auth).json)
    states = {n["reference"]: n["state"] for n in report["notifications"]}
    assert states == {"r-1": "delivered", "r-2": "delivered", "r-3": "failed", "r-4": "sent"}
    assert report["counts"] == {
        "accepted": 0,
        "sending": 0,
        "sent": 1,
        "delivered": 2,
        "undelivered": 0,
        "failed": 1,
    }
    failed = next(n for n in report["notifications"] if n["reference"] == "r-3")
    assert failed["reason"] == "no_reachable_user"

    calls = request("GET", f"{sb}/_sandbox/calls?path=/v2/bot/message/pnp/templated/push").json["calls"]
    # One 500 retried: five calls for four notifications, and every accepted one exactly once.
    assert len(calls) == 5
    tags = [c["headers"].get("x-line-delivery-tag") for c in calls]
    assert all(tag and 16 <= len(tag) <= 100 for tag in tags)
    assert calls[-1]["body"]["body"]["items"][0]["content"].startswith("r-")

    csv_text = request("GET", f"{api}/accounts/{aid}/notifications/{batch_id}/undelivered", headers=auth).text
    assert csv_text.splitlines()[1:] == ["r-3,failed,no_reachable_user,"]

    # Privacy: the numbers, in any form, are in neither the table nor the logs.
    # (This account's items only: other tests' data holds e.g. JAN item codes such as
    # 4901234567890, which contain a run of digits equal to a national number.)
    ddb = local_stack.client("dynamodb")
    items = []
    for table in ddb.list_tables()["TableNames"]:
        pages = ddb.get_paginator("scan").paginate(TableName=table)
        items += [i for page in pages for i in page["Items"] if aid in json.dumps(i)]
    dump = json.dumps(items, ensure_ascii=False)
    logs = local_stack.logs()
    forms = [f for raw, e164 in PHONES.values() for f in (raw, e164, e164[3:], line_hash(e164))]
    assert len(items) > 5
    # A plain list comparison: pytest's diff of a large string in a failed `not in` is very slow.
    assert [f for f in forms if f in dump] == []
    assert [f for f in forms if f in logs] == []


def wait_for(get: Any, timeout: float = 30) -> dict[str, Any]:
    """The batch once nothing is queued or in flight (and the delivery events have come back)."""
    deadline = time.monotonic() + timeout
    while True:
        report: dict[str, Any] = get()
        # Once, on a loaded machine, the report answer had no counts (the body was not kept; the
        # cause is not found yet): ask again until the deadline instead of failing on a KeyError.
        c = report.get("counts") if isinstance(report, dict) else None
        if c is not None and c["accepted"] == c["sending"] == 0 and c["delivered"] >= 2:
            return report
        if time.monotonic() > deadline:
            raise AssertionError(f"batch did not settle: {report}")
        time.sleep(0.3)


def test_cli_sends_a_csv_in_batches_with_progress(local_stack: RunningStack, tmp_path: Any) -> None:
    api, sb = local_stack.api, local_stack.sandbox
    r = request(
        "POST",
        f"{api}/accounts",
        {"name": "isp", "account_type": "verified", "certified_provider": True},
        headers={"Authorization": f"Bearer {OPERATOR_KEY}"},
    )
    aid, key = r.json["account_id"], r.json["api_key"]
    auth = {"Authorization": f"Bearer {key}"}
    ch = request("POST", f"{sb}/_sandbox/channels", {"webhookUrl": f"{api}/line/{aid}/webhook"}).json
    creds = {"channel_secret": ch["channelSecret"], "access_token": ch["accessToken"]}
    request("PUT", f"{api}/accounts/{aid}/channel", creds, headers=auth)
    content = {"messages": [{"type": "text", "text": "{{name}}様 工事日は{{day}}です。"}]}
    t = request(
        "POST",
        f"{api}/accounts/{aid}/notification-templates",
        {"name": "工事日", "kind": "flexible", "content": content},
        headers=auth,
    ).json
    request(
        "POST", f"{api}/accounts/{aid}/notification-templates/{t['template_id']}/approve", {"version": 1}, headers=auth
    )
    lines = ["phone,reference,name,day"]
    lines += [f"090-1000-{i:04d},job-{i},客{i},12/0{i % 9 + 1}" for i in range(1, 25)]
    lines.insert(8, "not-a-number,job-bad,客,12/01")  # CSV line 9
    f = tmp_path / "jobs.csv"
    f.write_text("\n".join(lines) + "\n", encoding="utf-8")
    cmd = [sys.executable, "-m", "tsunagu_local.cli", "notify", str(f), "--template", t["template_id"]]
    cmd += ["--api", api, "--account", aid, "--key", key, "--batch", "10"]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=300, check=False)
    assert out.returncode == 1, out.stderr
    summary = json.loads(out.stdout)
    assert (len(summary["batches"]), summary["accepted"], summary["duplicates"]) == (3, 24, 0)
    assert summary["refused"] == [{"csv_line": 9, "reference": "job-bad", "code": "invalid_phone"}]
    assert "25/25 notifications" in out.stderr
    # The same file again (an operator re-runs it after a failure): nothing is sent twice.
    again = json.loads(subprocess.run(cmd, capture_output=True, text=True, timeout=300, check=False).stdout)
    assert (again["accepted"], again["duplicates"]) == (0, 24)


def test_racing_senders_send_one_notification_once(local_stack: RunningStack, in_process: str) -> None:
    """SQS may hand the same message to several senders at once: 16 senders race on the local
    stack's moto server (real conditional writes) and LINE is called exactly once."""
    from concurrent.futures import ThreadPoolExecutor

    from tsunagu import wiring
    from tsunagu.notifications import domain as n
    from tsunagu.notifications.service import RetryLater

    sb = local_stack.sandbox
    aid, _ = new_account(local_stack, account_type="verified", certified_provider=True)  # R-PNP-3
    store = wiring.notification_store()
    content = {"messages": [{"type": "text", "text": "お知らせ"}]}
    store.put_batch(aid, {"batch_id": "nb_race", "template_id": "t", "kind": "flexible", "content": content})
    for trial in range(5):
        ref = f"race-{trial}"
        item = n.AcceptedItem(0, ref, n.delivery_tag(aid, ref), "+819012345678", "JP", {})
        assert store.add(aid, "nb_race", trial, item, {})
        msg = {"a": aid, "b": "nb_race", "t": item.tag, "to": line_hash(item.e164), "p": {}}

        def one(_: int, msg: dict[str, Any] = msg) -> str:
            try:
                return str(wiring.notification_sender().send(msg))
            except RetryLater:
                return "retry_later"  # another sender holds it: SQS would redeliver later

        with ThreadPoolExecutor(16) as pool:
            outcomes = list(pool.map(one, range(16)))
        calls = request("GET", f"{sb}/_sandbox/calls?path=/bot/pnp/push").json["calls"]
        mine = [c for c in calls if c["headers"].get("x-line-delivery-tag") == item.tag]
        assert outcomes.count("sent") == 1, outcomes
        assert len(mine) == 1
        assert store.get(aid, item.tag)["state"] == "sent"
