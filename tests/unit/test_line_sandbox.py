"""The LINE sandbox refuses what LINE refuses: bodies checked against LINE's own models
(line-bot-sdk), narrowcast and audience uploads accepted with 202, configured rate limits with
429 and Retry-After, and every call recorded with its authorization and content type."""

from __future__ import annotations

import json
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest

from tsunagu_local.sandbox import LineSandbox
from tsunagu_local.stack import free_port

USER = "U" + "a" * 32


@pytest.fixture
def sandbox() -> Iterator[tuple[LineSandbox, str, str]]:
    sb = LineSandbox()
    port = free_port()
    server = sb.serve("127.0.0.1", port)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    ch = sb.new_channel()
    try:
        yield sb, f"http://127.0.0.1:{port}", ch.token
    finally:
        server.shutdown()
        server.server_close()


def call(base: str, method: str, path: str, token: str | None, body: Any = None) -> tuple[int, dict[str, str], Any]:
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(base + path, data=data, method=method, headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=5) as r:
            return r.status, {k.lower(): v for k, v in r.headers.items()}, json.loads(r.read() or b"null")
    except urllib.error.HTTPError as e:
        return e.code, {k.lower(): v for k, v in e.headers.items()}, json.loads(e.read() or b"null")


TEXT = {"type": "text", "text": "hello"}


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/v2/bot/message/push", {"to": USER, "messages": [{"type": "bogus"}]}),
        ("/v2/bot/message/push", {"to": USER, "messages": [{"type": "text"}]}),
        ("/v2/bot/message/push", {"to": USER, "messages": []}),
        ("/v2/bot/message/push", {"messages": [TEXT]}),
        ("/v2/bot/message/multicast", {"to": [USER], "messages": [{"type": "image"}]}),
        ("/v2/bot/message/broadcast", {"messages": [{"type": "sticker", "packageId": "1"}]}),
        ("/v2/bot/message/narrowcast", {"messages": [{"type": "nope"}]}),
        ("/v2/bot/message/reply", {"replyToken": "x", "messages": [{"type": "bogus"}]}),
        ("/bot/pnp/push", {"to": "a" * 64, "messages": [{"type": "bogus"}]}),
        ("/v2/bot/message/pnp/templated/push", {"to": "a" * 64}),
        ("/v2/bot/audienceGroup/upload", {"description": "x", "audiences": [{"id": 5}]}),
    ],
)
def test_bodies_lines_models_refuse_are_a_400_and_send_nothing(sandbox, path, body):
    sb, base, token = sandbox
    status, _, out = call(base, "POST", path, token, body)
    assert status == 400, out
    assert out["message"].startswith("The request body has") and out["details"], out
    assert sb.state.consumption.get(next(iter(sb.state.channels)), 0) == 0


def test_valid_messages_of_every_kind_are_accepted(sandbox):
    _, base, token = sandbox
    flex = {
        "type": "flex",
        "altText": "a",
        "contents": {"type": "bubble", "body": {"type": "box", "layout": "vertical", "contents": [TEXT]}},
    }
    image = {"type": "image", "originalContentUrl": "https://x/a.jpg", "previewImageUrl": "https://x/b.jpg"}
    status, headers, out = call(
        base, "POST", "/v2/bot/message/push", token, {"to": USER, "messages": [TEXT, flex, image]}
    )
    assert status == 200 and len(out["sentMessages"]) == 3 and headers["x-line-request-id"]


def test_narrowcast_and_audience_uploads_are_accepted_with_202(sandbox):
    _, base, token = sandbox
    status, headers, out = call(
        base, "POST", "/v2/bot/message/narrowcast", token, {"messages": [TEXT], "limit": {"max": 10}}
    )
    assert (status, out) == (202, {})
    request_id = headers["x-line-request-id"]
    status, _, progress = call(base, "GET", f"/v2/bot/message/progress/narrowcast?requestId={request_id}", token)
    assert (status, progress["phase"], progress["successCount"]) == (200, "succeeded", 10)
    status, headers, group = call(
        base, "POST", "/v2/bot/audienceGroup/upload", token, {"description": "vip", "audiences": [{"id": USER}]}
    )
    assert status == 202 and group["type"] == "UPLOAD" and headers["x-line-request-id"]
    body = {"audienceGroupId": group["audienceGroupId"], "audiences": [{"id": "U" + "b" * 32}]}
    assert call(base, "PUT", "/v2/bot/audienceGroup/upload", token, body)[0] == 202


def test_a_configured_rate_limit_answers_429_with_retry_after(sandbox):
    _, base, token = sandbox
    rule = {"path": "/v2/bot/message/push", "limit": 2, "windowSeconds": 60, "retryAfter": 7}
    assert call(base, "PUT", "/_sandbox/rate-limits", None, rule)[0] == 200
    push = {"to": USER, "messages": [TEXT]}
    answers = [call(base, "POST", "/v2/bot/message/push", token, push) for _ in range(3)]
    assert [a[0] for a in answers] == [200, 200, 429]
    assert answers[2][1]["retry-after"] == "7"
    assert answers[2][2]["message"] == "The API rate limit has been exceeded. Try again later."
    # Other paths are not limited; "next" refuses the next N whatever the count.
    assert call(base, "POST", "/v2/bot/message/multicast", token, {"to": [USER], "messages": [TEXT]})[0] == 200
    assert call(base, "PUT", "/_sandbox/rate-limits", None, {"path": "/bot/pnp/push", "next": 1})[0] == 200
    pnp = {"to": "a" * 64, "messages": [TEXT]}
    assert [call(base, "POST", "/bot/pnp/push", token, pnp)[0] for _ in range(2)] == [429, 200]
    assert call(base, "DELETE", "/_sandbox/rate-limits", None)[0] == 200
    assert call(base, "POST", "/v2/bot/message/push", token, push)[0] == 200


def test_pnp_errors_as_line_documents_them(sandbox):
    sb, base, token = sandbox
    # A malformed hash: line-platform.md 4.2 (LINE's docs) - 400 "The value must be a valid SHA-256 digest."
    status, _, out = call(base, "POST", "/bot/pnp/push", token, {"to": "090-1234-5678", "messages": [TEXT]})
    assert (status, out["message"]) == (400, "The value must be a valid SHA-256 digest.")
    # Nobody reachable at a well-formed hash: 422 "Failed to send messages".
    sb.state.pnp_reachable = set()
    status, _, out = call(base, "POST", "/bot/pnp/push", token, {"to": "b" * 64, "messages": [TEXT]})
    assert (status, out["message"]) == (422, "Failed to send messages")


def test_every_call_is_recorded_with_authorization_and_content_type(sandbox):
    _, base, token = sandbox
    call(base, "POST", "/v2/bot/message/push", token, {"to": USER, "messages": [TEXT]})
    call(base, "POST", "/v2/bot/message/push", None, {"to": USER, "messages": [TEXT]})
    status, _, out = call(base, "GET", "/_sandbox/calls?path=/v2/bot/message/push", None)
    assert status == 200
    first, second = out["calls"]
    assert first["headers"]["authorization"] == f"Bearer {token}"
    assert first["headers"]["content-type"] == "application/json"
    assert first["status"] == 200
    assert "authorization" not in second["headers"] and second["status"] == 401


def test_the_lines_and_helpdesk_replies_pass_lines_models_and_a_broken_bubble_does_not(sandbox):
    from tsunagu.lines import domain as d
    from tsunagu.lines import mypage

    sb, base, token = sandbox
    bubble = d.remaining_bubble([d.MobileLine("L1", "100001", 3000, 0, "2026-12")])
    confirm = d.confirm_gift("gft_" + "0" * 20, "L1", "L2", 500)
    quick = d.quick_reply_text("何MB?", [(f"{mb}MB", f"action=gift&to=L2&mb={mb}") for mb in d.GIFT_SIZES_MB])
    button = mypage.login_button("https://mypage.example/login", "v1.a.b")
    for messages in ([bubble, confirm, quick], [button]):
        token_ = "rt" + str(len(sb.state.reply_tokens))
        sb.state.reply_tokens[token_] = (next(iter(sb.state.channels)), time.time())
        status, headers, body = call(
            base, "POST", "/v2/bot/message/reply", token, {"replyToken": token_, "messages": messages}
        )
        assert status == 200 and len(body["sentMessages"]) == len(messages) and "x-line-request-id" in headers
    broken = d.remaining_bubble([d.MobileLine("L1", "100001", 3000, 0, "2026-12")])
    broken["contents"]["body"]["layout"] = "diagonal"
    sb.state.reply_tokens["rt-broken"] = (next(iter(sb.state.channels)), time.time())
    status, _, body = call(
        base, "POST", "/v2/bot/message/reply", token, {"replyToken": "rt-broken", "messages": [broken]}
    )
    assert status == 400 and body["message"].startswith("The request body has")
    assert "rt-broken" not in sb.state.used_reply_tokens  # a refused body spends no token


def test_the_line_client_reads_the_sandboxs_429_and_retry_after(sandbox):
    """Issue 15: tsunagu's client turns LINE's 429 into LineRateLimited with Retry-After's seconds."""
    from tsunagu.errors import LineRateLimited, LineRefused
    from tsunagu.infrastructure.line_api import LineClient, retry_after_seconds

    _, base, token = sandbox
    client = LineClient(base)
    rule = {"path": "/v2/bot/message/push", "next": 1, "retryAfter": 7}
    assert call(base, "PUT", "/_sandbox/rate-limits", None, rule)[0] == 200
    with pytest.raises(LineRateLimited) as e:
        client.push(token, USER, [TEXT], "123e4567-e89b-12d3-a456-426614174000")
    assert (e.value.http_status, e.value.retry_after, e.value.monthly) == (429, 7, False)
    assert client.push(token, USER, [TEXT], "123e4567-e89b-12d3-a456-426614174000") == "sent"
    with pytest.raises(LineRefused) as refused:  # a malformed hash: final, never retried
        client.pnp_push(token, "not-a-hash", {"messages": [TEXT]}, "t" * 32)
    assert refused.value.http_status == 400
    assert [retry_after_seconds(v) for v in ("3", " 12 ", "Wed, 21 Oct 2026 07:28:00 GMT", "-1", None)] == [
        3,
        12,
        None,
        None,
        None,
    ]


def test_the_sandbox_serves_a_jwks_at_lines_path_and_issues_es256_tokens_it_verifies(sandbox):
    """issue 16: GET /oauth2/v2.1/certs (no bearer token, as LINE), Cache-Control max-age; LIFF
    ID tokens only for a known LINE Login channel; a rotation publishes the new key."""
    from tsunagu.coupons.es256 import verify_es256

    sb, base, _ = sandbox
    lc = sb.new_login_channel("U" + "b" * 32)
    status, headers, jwks = call(base, "GET", "/oauth2/v2.1/certs", None)
    assert status == 200 and headers["cache-control"] == "max-age=3600"
    assert [k["kty"] for k in jwks["keys"]] == ["EC"] and "d" not in jwks["keys"][0]  # public only
    status, _, doc = call(base, "POST", "/_sandbox/liff/id-token", None, {"channelId": lc.channel_id})
    assert status == 200 and verify_es256(doc["idToken"], jwks["keys"][0])
    assert call(base, "POST", "/_sandbox/liff/id-token", None, {"channelId": "0"})[0] == 404
    _, _, rotated = call(base, "POST", "/_sandbox/liff/rotate", None, {"dropOld": True})
    _, _, jwks2 = call(base, "GET", "/oauth2/v2.1/certs", None)
    assert [k["kid"] for k in jwks2["keys"]] == [rotated["kid"]]
