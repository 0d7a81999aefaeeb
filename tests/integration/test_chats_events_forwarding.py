"""Message worker (chat archive, unsend), chat export, event store and forwarding against moto."""

from __future__ import annotations

import base64
import csv
import io
import json
import time
from typing import Any

import boto3
import pytest

from tests.conftest import USER_A, USER_B, line_event, sign, webhook_body
from tests.integration.conftest import OPERATOR_KEY
from tests.integration.test_webhook_and_workers import SECRET, TOKEN, post_webhook, sqs_event
from tsunagu import keys, wiring
from tsunagu_local.gateway import build_v2_event


@pytest.fixture
def account(api) -> tuple[str, dict[str, str]]:
    _, body = api.call(
        "POST", "/accounts", {"name": "shop", "chat_retention_days": 30}, {"Authorization": f"Bearer {OPERATOR_KEY}"}
    )
    auth = {"Authorization": f"Bearer {body['api_key']}"}
    api.call("PUT", f"/accounts/{body['account_id']}/channel", {"channel_secret": SECRET, "access_token": TOKEN}, auth)
    return body["account_id"], auth


def messages(api, stack, aid: str, *events: dict[str, Any]) -> dict[str, Any]:
    ev = sqs_event(stack, [{"accountId": aid, "receivedAt": 0, "event": e} for e in events])
    return api.functions["MessageWorkerFunction"].invoke(ev)


def text_event(text: str, mid: str, ts: int, user: str = USER_A) -> dict[str, Any]:
    # receivedAt 0 makes the reply token stale: these tests archive, they do not reply.
    return line_event("message", user=user, ts=ts, message={"type": "text", "id": mid, "text": text})


def export(api, aid: str, auth: dict[str, str], path: str = "") -> tuple[int, Any]:
    return api.call("GET", f"/accounts/{aid}/chats{path}", headers=auth)


def csv_rows(text: str) -> list[list[str]]:
    return list(csv.reader(io.StringIO(text.removeprefix("\ufeff"), newline="")))


def test_inbound_messages_are_archived_once_and_exported_per_user_and_for_all(api, stack, account):
    aid, auth = account
    a1 = text_event("こんにちは", "m1", 1_795_300_000_000)
    messages(api, stack, aid, a1, text_event("営業時間は？", "m2", 1_795_300_060_000))
    messages(api, stack, aid, text_event("B です", "m3", 1_795_300_030_000, user=USER_B))
    messages(api, stack, aid, {**a1, "deliveryContext": {"isRedelivery": True}})  # redelivered
    status, body = export(api, aid, auth, f"/{USER_A}")
    assert status == 200
    rows = csv_rows(body)
    assert [r[4] for r in rows[1:]] == ["こんにちは", "営業時間は？"]
    status, body = export(api, aid, auth)
    assert [r[1] for r in csv_rows(body)[1:]] == [USER_A, USER_B, USER_A]  # all chats, in time order


def test_archived_messages_expire_by_the_accounts_retention(api, stack, account):
    aid, _ = account
    messages(api, stack, aid, text_event("x", "m9", 1_795_300_000_000))
    item = boto3.client("dynamodb").get_item(
        TableName=stack.tables["Table"],
        Key={
            k: {"S": v} for k, v in keys.chat_message(aid, USER_A, 1_795_300_000_000, "m9").items() if k in ("PK", "SK")
        },
    )["Item"]

    assert abs(int(item["expires_at"]["N"]) - (time.time() + 30 * 86_400)) < 120


def test_unsend_blanks_the_archived_content(api, stack, account):
    aid, auth = account
    messages(api, stack, aid, text_event("間違えました", "m5", 1_795_300_000_000))
    messages(api, stack, aid, line_event("unsend", unsend={"messageId": "m5"}))
    _, body = export(api, aid, auth, f"/{USER_A}")
    row = csv_rows(body)[1]
    assert row[4] == "" and row[7] == "取消済み"


def test_export_pages_with_a_cursor(api, stack, account):
    aid, auth = account
    for i in range(5):
        messages(api, stack, aid, text_event(f"msg{i}", f"p{i}", 1_795_300_000_000 + i))
    fn = api.functions["AccountsApiFunction"]
    seen, cursor = [], None
    while True:
        q = "limit=2" + (f"&cursor={cursor}" if cursor else "")

        route = next(r for r in api.routes if r.path == "/accounts/{accountId}/chats/{userId}")
        ev = build_v2_event(
            "GET",
            f"/accounts/{aid}/chats/{USER_A}",
            q,
            {k.lower(): v for k, v in auth.items()},
            b"",
            route,
            {"accountId": aid, "userId": USER_A},
            "127.0.0.1",
        )
        r = fn.invoke(ev)
        assert r["statusCode"] == 200
        seen += [row[4] for row in csv_rows(r["body"])[1:]]
        cursor = r["headers"].get("X-Next-Cursor")
        if not cursor:
            break
    assert seen == [f"msg{i}" for i in range(5)]


@pytest.mark.parametrize(
    ("query", "code"),
    [
        ("?since=2026/11/01", "validation_failed"),  # typed query parameters (issue 15)
        ("?since=2026-11-02&until=2026-11-01", "invalid_date"),
        ("?limit=0", "validation_failed"),
        ("?limit=many", "validation_failed"),
        ("?cursor=!!!", "invalid_cursor"),
    ],
)
def test_bad_export_queries_are_422(api, account, query, code):
    aid, auth = account
    status, body = export(api, aid, auth, query)
    assert status == 422
    assert body["error"]["code"] == code


def test_a_cursor_cannot_reach_another_accounts_chats(api, stack, account):
    aid, auth = account
    foreign = {"GSI1PK": "ACCOUNT#acct_ffffffffffffffff#CHATS", "GSI1SK": "0", "PK": "x", "SK": "y"}
    token = base64.urlsafe_b64encode(json.dumps(foreign).encode()).decode()
    status, body = export(api, aid, auth, f"?cursor={token}")
    assert (status, body["error"]["code"]) == (422, "invalid_cursor")


def test_another_accounts_chats_are_404(api, account):
    aid, _ = account
    _, other = api.call("POST", "/accounts", {"name": "other"}, {"Authorization": f"Bearer {OPERATOR_KEY}"})
    status, _ = api.call("GET", f"/accounts/{aid}/chats", headers={"Authorization": f"Bearer {other['api_key']}"})
    assert status == 404


def test_unknown_and_unconsumed_event_kinds_are_kept_once_redacted_and_counted(api, stack, account):
    aid, _ = account
    hashed = "d41e0ad70dddfeb68f149ad6fc61574b9c5780ab7bcb2fba5517771ffbb2409c"
    evs = [
        line_event("accountLink", link={"result": "ok", "nonce": "n0nce-value"}, replyToken="rt"),
        line_event("delivery", delivery={"data": hashed}),
        line_event("brandNewKind"),
    ]
    fn = api.functions["EventStoreFunction"]
    assert fn.invoke(sqs_event(stack, [{"accountId": aid, "event": e} for e in evs])) == {"batchItemFailures": []}
    fn.invoke(sqs_event(stack, [{"accountId": aid, "event": evs[2]}]))  # duplicate
    counts = wiring.event_store_service().store.counts(aid)
    assert counts == {"accountLink": 1, "delivery": 1, "brandNewKind": 1}
    dump = json.dumps(boto3.client("dynamodb").scan(TableName=stack.tables["Table"])["Items"])
    assert "n0nce-value" not in dump and hashed not in dump and '"rt"' not in dump


def test_intake_queues_one_forward_per_downstream_url_with_the_exact_body_and_signature(api, stack, account):
    aid, auth = account
    urls = ["https://tool-a.example.com/hook", "https://tool-b.example.com/line"]
    assert api.call("PATCH", f"/accounts/{aid}", {"forward_urls": urls}, auth)[0] == 200
    wiring.reset()  # a fresh container: the forward-target cache starts empty
    body = webhook_body(line_event("follow"))
    assert post_webhook(api, aid, body)[0] == 200
    sqs = boto3.client("sqs")
    got = sqs.receive_message(QueueUrl=stack.queue_urls["ForwardQueue"], MaxNumberOfMessages=10)["Messages"]
    fwd = sorted((json.loads(m["Body"]) for m in got), key=lambda d: d["url"])
    assert [f["url"] for f in fwd] == urls
    assert all(base64.b64decode(f["body"]) == body and f["signature"] == sign(SECRET, body) for f in fwd)


@pytest.mark.parametrize("urls", [["ftp://x.example.com"], ["https://a.example.com/ with space"], ["x"] * 6])
def test_invalid_forward_urls_are_refused(api, account, urls):
    aid, auth = account
    status, body = api.call("PATCH", f"/accounts/{aid}", {"forward_urls": urls}, auth)
    assert status == 422
    assert body["error"]["code"] == "validation_failed"


def test_forwarder_refuses_an_internal_target_without_retrying(api, stack, monkeypatch):
    monkeypatch.setenv("TSUNAGU_ALLOW_PRIVATE_FORWARD", "false")
    wiring.reset()
    msg = {
        "accountId": "acct_0123456789abcdef",
        "url": "https://127.0.0.1/hook",
        "body": base64.b64encode(b"{}").decode(),
        "signature": "x",
    }
    assert api.functions["WebhookForwarderFunction"].invoke(sqs_event(stack, [msg])) == {"batchItemFailures": []}
    assert wiring.forwarding_service().forward(msg) == "refused"


def test_the_relay_never_follows_a_redirect():
    """SSRF: the guard checks the forward URL's host; a 302 to another host must not be followed."""
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    from tsunagu.infrastructure.outbound import UrllibRelay

    hits: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            hits.append(self.path)
            self.send_response(302 if self.path == "/hook" else 200)
            self.send_header("Location", f"http://127.0.0.1:{self.server.server_port}/latest/meta-data/")
            self.send_header("Content-Length", "0")
            self.end_headers()

        do_GET = do_POST

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        status = UrllibRelay(timeout=2).post(f"http://127.0.0.1:{server.server_port}/hook", b"{}", "sig")
    finally:
        server.shutdown()
    assert status == 302 and hits == ["/hook"]  # a failure to retry, never a request to the redirect target
