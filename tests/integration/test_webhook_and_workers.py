"""Webhook intake and the friendship worker against moto: signature checks before parsing,
one queue message per event, exactly-once friend state, partial batch failures."""

from __future__ import annotations

import base64
import json
from typing import Any

import boto3
import pytest

from tests.conftest import USER_A, USER_B, line_event, sign, webhook_body
from tests.integration.conftest import OPERATOR_KEY
from tsunagu_local.runtime import LocalFunction

SECRET = "0123456789abcdef0123456789abcdef"
TOKEN = "tok-" + "Z" * 60


@pytest.fixture
def account(api) -> tuple[str, dict[str, str]]:
    _, body = api.call("POST", "/accounts", {"name": "shop"}, {"Authorization": f"Bearer {OPERATOR_KEY}"})
    auth = {"Authorization": f"Bearer {body['api_key']}"}
    api.call("PUT", f"/accounts/{body['account_id']}/channel", {"channel_secret": SECRET, "access_token": TOKEN}, auth)
    return body["account_id"], auth


def post_webhook(
    api,
    account_id: str,
    body: bytes,
    signature: str | None = "auto",
    header: str = "x-line-signature",
    base64_body: bool = False,
) -> tuple[int, Any]:
    headers = {"content-type": "application/json; charset=utf-8"}
    if signature == "auto":
        signature = sign(SECRET, body)
    if signature is not None:
        headers[header] = signature
    fn = api.functions["WebhookIntakeFunction"]
    event = {
        "version": "2.0",
        "routeKey": "POST /line/{accountId}/webhook",
        "rawPath": f"/line/{account_id}/webhook",
        "headers": headers,
        "pathParameters": {"accountId": account_id},
        "requestContext": {"requestId": "r1", "http": {"method": "POST"}},
        "body": base64.b64encode(body).decode() if base64_body else body.decode(errors="replace"),
        "isBase64Encoded": base64_body,
    }
    r = fn.invoke(event)
    return r["statusCode"], json.loads(r["body"])


def drain(stack, queue: str) -> list[dict[str, Any]]:
    sqs = boto3.client("sqs")
    out = []
    while True:
        r = sqs.receive_message(QueueUrl=stack.queue_urls[queue], MaxNumberOfMessages=10)
        msgs = r.get("Messages", [])
        if not msgs:
            return out
        for m in msgs:
            out.append(m)
            sqs.delete_message(QueueUrl=stack.queue_urls[queue], ReceiptHandle=m["ReceiptHandle"])


def all_queued(stack) -> int:
    return sum(len(drain(stack, q)) for q in stack.queue_urls)


def test_signed_webhook_fans_out_one_message_per_event_by_kind(api, stack, account):
    aid, _ = account
    body = webhook_body(
        line_event("follow"),
        line_event("message", message={"type": "text", "text": "hi"}),
        line_event("accountLink", link={"result": "ok", "nonce": "n"}),
        line_event("delivery", delivery={"data": "tag"}),
        line_event("brandNewEventType"),
    )
    status, out = post_webhook(api, aid, body)
    assert (status, out) == (200, {"accepted": 5})
    queued = {q: [json.loads(m["Body"])["event"]["type"] for m in drain(stack, q)] for q in stack.queue_urls}
    assert queued["FriendshipQueue"] == ["follow"]
    assert queued["MessageQueue"] == ["message"]
    assert queued["AccountLinkQueue"] == ["accountLink"]
    assert queued["DeliveryQueue"] == ["delivery"]
    assert queued["OtherEventsQueue"] == ["brandNewEventType"]


@pytest.mark.parametrize("header", ["x-line-signature", "X-Line-Signature", "X-LINE-SIGNATURE"])
def test_signature_header_name_is_case_insensitive(api, stack, account, header):
    aid, _ = account
    status, _ = post_webhook(api, aid, webhook_body(line_event("follow")), header=header)
    assert status == 200
    assert all_queued(stack) == 1


def test_base64_encoded_body_is_verified_on_its_decoded_bytes(api, stack, account):
    aid, _ = account
    body = webhook_body(line_event("message", message={"type": "text", "text": "日本語"}))
    assert post_webhook(api, aid, body, base64_body=True)[0] == 200
    assert all_queued(stack) == 1


@pytest.mark.parametrize("signature", [None, "", "AAAA", "auto-tampered"])
def test_missing_or_wrong_signature_is_401_and_nothing_is_enqueued(api, stack, account, signature):
    aid, _ = account
    body = webhook_body(line_event("follow"))
    sig = sign(SECRET, body + b" ") if signature == "auto-tampered" else signature
    status, out = post_webhook(api, aid, body, signature=sig)
    assert status == 401
    assert out["error"]["code"] == "invalid_signature"
    assert all_queued(stack) == 0


def test_empty_events_connection_check_is_200(api, stack, account):
    aid, _ = account
    assert post_webhook(api, aid, webhook_body()) == (200, {"accepted": 0})
    assert all_queued(stack) == 0


def test_valid_signature_on_a_body_that_is_not_a_webhook_is_400(api, stack, account):
    aid, _ = account
    for body in (b"{broken", b'{"hello": "world"}'):
        status, out = post_webhook(api, aid, body)
        assert status == 400
        assert out["error"]["code"] == "invalid_webhook"
    assert all_queued(stack) == 0


def test_oversize_body_is_413(api, stack, account):
    aid, _ = account
    body = b'{"destination":"U","events":[],"pad":"' + b"x" * 1_100_000 + b'"}'
    assert post_webhook(api, aid, body)[0] == 413


@pytest.mark.parametrize("account_id", ["acct_ffffffffffffffff", "nonsense", "../../etc"])
def test_unknown_account_is_404(api, stack, account_id):
    status, out = post_webhook(api, account_id, webhook_body(line_event("follow")))
    assert status == 404
    assert out["error"]["code"] == "unknown_account"


def test_account_without_channel_credentials_is_404(api, stack):
    _, body = api.call("POST", "/accounts", {"name": "x"}, {"Authorization": f"Bearer {OPERATOR_KEY}"})
    assert post_webhook(api, body["account_id"], webhook_body(line_event("follow")))[0] == 404


def sqs_event(stack, messages: list[dict[str, Any]]) -> dict[str, Any]:
    arn = stack.resolver.attrs[("FriendshipQueue", "Arn")]
    return {
        "Records": [
            {
                "messageId": f"m{i}",
                "receiptHandle": f"h{i}",
                "body": json.dumps(m),
                "attributes": {"ApproximateReceiveCount": "1"},
                "messageAttributes": {},
                "md5OfBody": "",
                "eventSource": "aws:sqs",
                "eventSourceARN": arn,
                "awsRegion": "ap-northeast-1",
            }
            for i, m in enumerate(messages)
        ]
    }


def friendship(api, stack, aid: str, *events: dict[str, Any]) -> dict[str, Any]:
    fn: LocalFunction = api.functions["FriendshipWorkerFunction"]
    return fn.invoke(sqs_event(stack, [{"accountId": aid, "receivedAt": 0, "event": e} for e in events]))


def test_same_event_twice_changes_state_once(api, stack, account):
    aid, auth = account
    follow = line_event("follow", ts=1000)
    redelivered = {**follow, "deliveryContext": {"isRedelivery": True}}
    friendship(api, stack, aid, follow)
    friendship(api, stack, aid, redelivered, follow)
    _, page = api.call("GET", f"/accounts/{aid}/friends", headers=auth)
    assert page["counts"] == {"friends": 1, "blocked": 0}
    assert [f["state"] for f in page["friends"]] == ["friend"]


def test_out_of_order_events_leave_the_newest_state(api, stack, account):
    aid, auth = account
    friendship(api, stack, aid, line_event("unfollow", ts=3000))
    friendship(api, stack, aid, line_event("follow", ts=1000))  # late, older
    friendship(api, stack, aid, line_event("follow", user=USER_B, ts=2000))
    _, a = api.call("GET", f"/accounts/{aid}/friends/{USER_A}", headers=auth)
    assert (a["state"], a["since_ms"]) == ("blocked", 3000)
    _, page = api.call("GET", f"/accounts/{aid}/friends", headers=auth)
    assert page["counts"] == {"friends": 1, "blocked": 1}


def test_block_then_unblock_moves_counts_both_ways(api, stack, account):
    aid, auth = account
    friendship(api, stack, aid, line_event("follow", ts=1000))
    friendship(api, stack, aid, line_event("unfollow", ts=2000))
    friendship(api, stack, aid, line_event("follow", ts=3000, follow={"isUnblocked": True}))
    _, page = api.call("GET", f"/accounts/{aid}/friends", headers=auth)
    assert page["counts"] == {"friends": 1, "blocked": 0}


def test_a_poison_record_fails_alone_and_the_rest_of_the_batch_succeeds(api, stack, account):
    aid, auth = account
    fn: LocalFunction = api.functions["FriendshipWorkerFunction"]
    event = sqs_event(stack, [{"accountId": aid, "receivedAt": 0, "event": line_event("follow", ts=1)}])
    event["Records"].append({**event["Records"][0], "messageId": "poison", "body": "{not json"})
    result = fn.invoke(event)
    assert result == {"batchItemFailures": [{"itemIdentifier": "poison"}]}
    _, a = api.call("GET", f"/accounts/{aid}/friends/{USER_A}", headers=auth)
    assert a["state"] == "friend"


def test_unknown_friend_is_404(api, account):
    aid, auth = account
    status, out = api.call("GET", f"/accounts/{aid}/friends/{USER_B}", headers=auth)
    assert status == 404
    assert out["error"]["code"] == "friend_not_found"


def test_friend_list_rejects_a_non_numeric_limit(api, account):
    aid, auth = account
    status, out = api.call("GET", f"/accounts/{aid}/friends?limit=lots", headers=auth)
    assert status == 422
    assert out["error"]["code"] == "validation_failed"  # a typed query parameter (issue 15)


def test_signed_bodies_no_queue_could_take_are_400(api, stack, account):
    """LINE signs them, so nothing else would send them; still a 400, never a 500 that LINE retries."""
    aid, _ = account
    deep = b'{"destination":"U","events":[{"type":"message","x":' + b"[" * 50_000 + b"]" * 50_000 + b"}]}"
    surrogate = webhook_body(line_event("message", message={"type": "text", "id": "1", "text": "\ud800"}))
    for body in (deep, surrogate):
        status, out = post_webhook(api, aid, body)
        assert (status, out["error"]["code"]) == (400, "invalid_webhook")
    assert all_queued(stack) == 0
