"""The walk-through: tsunagu's main job on the local stack, step by step, over real HTTP.

Each feature issue adds its own steps here."""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

from tsunagu.notifications.phone import line_hash
from tsunagu_local.client import request
from tsunagu_local.console_demo import demo_staff
from tsunagu_local.linkflow import error_code, open_link_page, submit_link_form
from tsunagu_local.stack import LocalStack

USER = "U" + "4af4980629" + "0" * 22  # a LINE user id (U + 32 hex)


def step(n: int, text: str) -> None:
    print(f"\n\033[1m[{n}] {text}\033[0m", flush=True)


def show(label: str, value: Any) -> None:
    body = json.dumps(value, ensure_ascii=False, indent=2) if not isinstance(value, str) else value
    print(f"    {label}: " + body.replace("\n", "\n    "), flush=True)


def wait_for(fn: Any, timeout: float = 15.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        v = fn()
        if v:
            return v
        time.sleep(0.1)
    raise SystemExit("timed out waiting for the workers")


def run(stack: LocalStack) -> None:
    api, sb = stack.api_url, stack.sandbox_url
    print(f"tsunagu local stack: API {api} · LINE sandbox {sb} · moto {stack.moto_url}")

    step(1, "Platform operator creates an account (one LINE Official Account)")
    r = request(
        "POST",
        f"{api}/accounts",
        {"name": "生協テスト店", "plan": "light"},
        headers={"Authorization": f"Bearer {stack.operator_key}"},
    )
    assert r.status == 201, r.text
    acct = r.json
    aid, key = acct["account_id"], acct["api_key"]
    auth = {"Authorization": f"Bearer {key}"}
    show("POST /accounts", f"{r.status} account_id={aid} api_key={key[:18]}… (shown once; only its hash is stored)")

    step(2, "The LINE sandbox creates the channel; tsunagu stores its secret and token in Secrets Manager")
    ch = request("POST", f"{sb}/_sandbox/channels", {"webhookUrl": f"{api}/line/{aid}/webhook"}).json
    r = request(
        "PUT",
        f"{api}/accounts/{aid}/channel",
        {"channel_secret": ch["channelSecret"], "access_token": ch["accessToken"]},
        headers=auth,
    )
    show("PUT /accounts/{id}/channel", f"{r.status} {r.json}")

    step(3, "The business sets its greeting and a keyword auto-response")
    r = request(
        "PATCH",
        f"{api}/accounts/{aid}",
        {
            "greeting": "友だち追加ありがとうございます！「営業時間」と送ると営業時間をお知らせします。",
            "auto_responses": [{"keywords": ["営業時間"], "match": "exact", "reply": "営業時間は 9:00〜21:00 です。"}],
        },
        headers=auth,
    )
    show("PATCH /accounts/{id}", f"{r.status} greeting set, {len(r.json['settings']['auto_responses'])} auto-response")

    step(4, "A LINE user adds the OA as a friend: the sandbox sends a signed follow webhook")
    w = request(
        "POST",
        f"{sb}/_sandbox/channels/{ch['channelId']}/webhooks",
        {"events": [{"type": "follow", "source": {"type": "user", "userId": USER}, "follow": {"isUnblocked": False}}]},
    ).json
    show("webhook answered", f"{w['status']} {w['body']}")

    step(5, "The friendship worker (SQS) records the friend")
    friend = wait_for(
        lambda: (lambda r: r.json if r.status == 200 else None)(
            request("GET", f"{api}/accounts/{aid}/friends/{USER}", headers=auth)
        )
    )
    show("GET /accounts/{id}/friends/{userId}", friend)

    step(6, "The worker greeted the new friend through LINE's free reply API (R-MSG-2)")
    calls = wait_for(lambda: request("GET", f"{sb}/_sandbox/calls?path=/v2/bot/message/reply").json["calls"])
    show(
        "sandbox received",
        {"path": calls[-1]["path"], "status": calls[-1]["status"], "text": calls[-1]["body"]["messages"][0]["text"]},
    )

    step(7, "The user sends 「営業時間」: the keyword auto-response replies")
    request(
        "POST",
        f"{sb}/_sandbox/channels/{ch['channelId']}/webhooks",
        {
            "events": [
                {
                    "type": "message",
                    "source": {"type": "user", "userId": USER},
                    "message": {"type": "text", "text": "営業時間"},
                }
            ]
        },
    )
    calls = wait_for(
        lambda: (lambda c: c if len(c) >= 2 else None)(
            request("GET", f"{sb}/_sandbox/calls?path=/v2/bot/message/reply").json["calls"]
        )
    )
    show("sandbox received", calls[-1]["body"]["messages"][0]["text"])

    step(8, "The business exports the 1:1 chat history as CSV (R-HIST-1: it does not survive a device change)")
    r = request("GET", f"{api}/accounts/{aid}/chats/{USER}", headers=auth)
    show(
        f"GET /accounts/{{id}}/chats/{{userId}} → {r.status} {r.headers['content-type']}",
        r.body.decode("utf-8").lstrip("\ufeff").rstrip(),
    )

    link_member(stack, aid, auth, ch)

    step(13, "A forged webhook (wrong signature) is refused and nothing is enqueued")
    w = request(
        "POST",
        f"{sb}/_sandbox/channels/{ch['channelId']}/webhooks",
        {
            "events": [{"type": "unfollow", "source": {"type": "user", "userId": USER}}],
            "signature": "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
        },
    ).json
    show("webhook answered", f"{w['status']} {w['body']}")

    step(14, "The daily friend-stats schedule, triggered on demand by name")
    r = request("POST", f"{api}/_local/invoke/FriendStatsFunction")
    show("schedule FriendStatsFunction", r.json)
    r = request("GET", f"{api}/accounts/{aid}/friends", headers=auth)
    show("friend counts", r.json["counts"])
    notify_batch(stack, aid, auth)
    coupons(stack, aid, auth)
    billing(stack, aid, auth)
    mobile_lines(stack)
    help_desk(stack, aid, auth, ch)
    campaigns(stack, aid, auth, ch)
    console(stack, aid, auth)
    print("\nDone. `make serve` keeps the stack running for your own requests.")


def console(stack: LocalStack, aid: str, auth: dict[str, str]) -> None:
    step(40, "The operator console: an admin is invited with the API key and sets a password")
    url, email, password = demo_staff(stack.api_url, aid, auth)
    login = request("GET", url)
    show(
        "GET /console/{id}/login", f"{login.status} {login.headers['content-type']} (Japanese, CSP: script-src 'self')"
    )
    show("console", url)
    show("demo staff login", f"{email} / {password}")
    print("  (this stack stops with the walk-through; `make serve` prints a console login that stays up)")


def notify_batch(stack: LocalStack, aid: str, auth: dict[str, str]) -> None:
    api, sb = stack.api_url, stack.sandbox_url
    step(15, "Notification messages by phone number: an approved template, then a batch (R-PNP-1..4)")
    request("PATCH", f"{api}/accounts/{aid}", {"account_type": "verified", "certified_provider": True}, headers=auth)
    content = {"messages": [{"type": "text", "text": "{{name}}様、ご注文{{order}}を発送しました。"}]}
    t = request(
        "POST",
        f"{api}/accounts/{aid}/notification-templates",
        {"name": "発送のお知らせ", "kind": "flexible", "content": content},
        headers=auth,
    ).json
    show("template", f"{t['template_id']} status={t['status']} (LINE's UX review happens outside tsunagu)")
    t = request(
        "POST", f"{api}/accounts/{aid}/notification-templates/{t['template_id']}/approve", {"version": 1}, headers=auth
    ).json
    show("after the review", f"status={t['status']}")
    # The sandbox knows LINE users for the first three numbers; the third never sees the message.
    reachable = ["+819012345678", "+818033334444", "+817055556666"]
    request(
        "PUT",
        f"{sb}/_sandbox/pnp",
        {"reachable": [line_hash(p) for p in reachable], "undelivered": [line_hash(reachable[2])]},
    )
    items = [
        ("A-1001", "090-1234-5678"),  # the linked member from step 11, a friend: an ordinary push
        ("A-1002", "080-3333-4444"),
        ("A-1003", "070-5555-6666"),
        ("A-1004", "080-7777-8888"),  # no LINE user with this number: LINE answers 422
        ("A-1005", "+1 202 555 0143"),  # not a notification-message country: refused up front
    ]
    r = request(
        "POST",
        f"{api}/accounts/{aid}/notifications",
        {
            "template_id": t["template_id"],
            "items": [
                {"reference": ref, "phone": ph, "parameters": {"name": "お客", "order": ref}} for ref, ph in items
            ],
        },
        headers=auth,
    )
    show("POST /accounts/{id}/notifications", r.json)
    batch_id = r.json["batch_id"]

    step(
        16, "The sender pushes to the linked friend, sends the rest as notification messages; delivery events come back"
    )

    def settled() -> Any:
        rep = request("GET", f"{api}/accounts/{aid}/notifications/{batch_id}", headers=auth).json
        c = rep["counts"]
        return rep if c["accepted"] == c["sending"] == 0 and c["delivered"] >= 1 else None

    stack.drain()
    rep = wait_for(settled)
    show("batch counts", rep["counts"])
    for n in rep["notifications"]:
        print(f"    {n['reference']}: {n['state']:<9} route={n['route']} {n['reason'] or ''}")
    r = request("GET", f"{api}/accounts/{aid}/notifications/{batch_id}/undelivered", headers=auth)
    show("undelivered CSV (for an SMS fallback)", r.body.decode("utf-8").lstrip("\ufeff").rstrip())
    print("    (A-1003 waits for its delivery event; the hourly sweep marks it undelivered after 24 hours)")


def _get_cookies(url: str, cookie: str = "") -> tuple[str, dict[str, str]]:
    """GET without following the redirect: (Location, every Set-Cookie as name -> value)."""
    import urllib.error
    import urllib.request

    from tsunagu_local.client import _opener

    req = urllib.request.Request(url, headers={"Cookie": cookie} if cookie else {})
    try:
        r: Any = _opener.open(req, timeout=10)
    except urllib.error.HTTPError as e:  # the 303 / 302 arrive here (redirects are not followed)
        r = e
    found = [c.split(";", 1)[0].split("=", 1) for c in r.headers.get_all("set-cookie") or [] if "=" in c]
    return r.headers.get("location", ""), dict(found)


def coupons(stack: LocalStack, aid: str, auth: dict[str, str]) -> None:
    """Issue 6: a members-only coupon, granted to the linked members, opened through LINE Login,
    redeemed at a register with one unit discounted, and a second use refused."""
    api, sb = stack.api_url, stack.sandbox_url
    step(17, "The co-op sets its LINE Login channel and creates 「牛乳30円引き」, members only, one per person")
    login = request("POST", f"{sb}/_sandbox/login-channels", {"userId": USER}).json
    body = {"channel_id": login["channelId"], "channel_secret": login["channelSecret"]}
    show(
        "PUT /accounts/{id}/login-channel",
        request("PUT", f"{api}/accounts/{aid}/login-channel", body, headers=auth).json,
    )
    coupon = {
        "title": "牛乳30円引き(組合員限定)",
        "kind": "yen",
        "amount": 30,
        "valid_days": {"first": "2020-01-01", "last": "2099-12-31"},
        "eligible_items": ["4901234567890", "4901234567891"],
        "members_only": True,
        "voidable": True,
        "void_within_minutes": 30,
    }
    r = request("POST", f"{api}/accounts/{aid}/coupons", coupon, headers=auth)
    cid = r.json["coupon_id"]
    show("POST /accounts/{id}/coupons", f"{r.status} coupon_id={cid}")

    step(18, "Granted to the linked-member segment (R-LINK-7, R-CPN-7)")
    r = request("POST", f"{api}/accounts/{aid}/coupons/{cid}/grants", {"segment": "linked_members"}, headers=auth)
    show("POST …/grants", r.json["summary"])

    step(19, "The member opens the coupon page from LINE: LINE Login (the sandbox), then the rotating code")
    to_login, state_cookie = _get_cookies(f"{api}/coupon/{aid}?c={cid}")
    show("GET /coupon/{id}", f"303 → {to_login.split('?')[0]}")
    back = request("GET", to_login).headers["location"]  # LINE Login (single sign-on in the LINE app)
    page, cookies = _get_cookies(back, "; ".join(f"{k}={v}" for k, v in state_cookie.items()))
    session = cookies["tsunagu_coupon"]
    show("callback", f"303 → {page} (ID token checked; kept only in an HttpOnly cookie)")
    code = request("GET", f"{api}/coupon/{aid}/code?c={cid}", headers={"Cookie": f"tsunagu_coupon={session}"}).json
    show("code on the page", f"{code['display']} (QR: {code['qr_payload'][:6]}…, rotates in {code['rotates_in']} s)")

    step(20, "At the register: two cartons of milk, a yogurt and a marked-down carton; one unit is discounted")
    basket = {
        "store_id": "S001",
        "register_id": "R01",
        "code": code["code"],
        "idempotency_key": "pos-S001-R01-000042",
        "lines": [
            {"item_code": "4901234567890", "quantity": 2, "unit_price": 198},
            {"item_code": "4909999999999", "quantity": 1, "unit_price": 128},
            {"item_code": "4901234567891", "quantity": 1, "unit_price": 150, "marked_down": True},
        ],
    }
    r = request("POST", f"{api}/accounts/{aid}/redemptions", basket, headers=auth)
    show("POST /accounts/{id}/redemptions", f"{r.status} {r.json['discount']}")
    r = request("POST", f"{api}/accounts/{aid}/redemptions", basket, headers=auth)
    show("the POS retries (same idempotency key)", f"{r.status} same redemption, replayed={r.json['replayed']}")

    step(21, "The same code at another register: refused, one use per person (R-CPN-5)")
    r = request(
        "POST",
        f"{api}/accounts/{aid}/redemptions",
        {**basket, "store_id": "S002", "register_id": "R07", "idempotency_key": "pos-S002-R07-000001"},
        headers=auth,
    )
    show("POST /accounts/{id}/redemptions", f"{r.status} {r.json['error']['code']}: {r.json['error']['message']}")

    step(22, "The day's report per coupon and store (CSV)")
    r = request("GET", f"{api}/accounts/{aid}/redemptions/report?format=csv", headers=auth)
    show("GET …/redemptions/report?format=csv", r.body.decode("utf-8").lstrip("\ufeff").rstrip())


def billing(stack: LocalStack, aid: str, auth: dict[str, str]) -> None:
    api = stack.api_url
    step(23, "A multicast through tsunagu: quota reserved first, then LINE with the retry key (R-MSG-2)")
    key = str(uuid.uuid4())
    body = {
        "kind": "multicast",
        "retry_key": key,
        "body": {
            "to": [USER, "U" + "b" * 32, "U" + "c" * 32],
            "messages": [{"type": "text", "text": "週末セールのお知らせ"}],
        },
    }
    show("POST /accounts/{id}/messages", request("POST", f"{api}/accounts/{aid}/messages", body, headers=auth).json)
    again = request("POST", f"{api}/accounts/{aid}/messages", body, headers=auth).json
    show("the same retry key again (a client retry)", again["status"])

    step(24, "Live usage this month: every message tsunagu sent, by kind (not yesterday's figure)")
    u = request("GET", f"{api}/accounts/{aid}/usage", headers=auth).json
    keep = ("plan", "by_kind", "billable_messages", "free_messages", "remaining_free", "cap", "cost_so_far")
    show("GET /accounts/{id}/usage", {k: u[k] for k in keep})
    r = request("POST", f"{api}/_local/invoke/BillingRollupFunction", {"job": "daily"})
    mine = {k: v.get(aid, 0) if isinstance(v, dict) else v for k, v in r.json["result"].items()}
    show("the daily schedule: rollup, LINE's quota count vs tsunagu's, stale reservations given back", mine)

    step(25, "Forecast of a 6,000-recipient broadcast: Light stops at its free messages; after an upgrade it costs")
    f = request("POST", f"{api}/accounts/{aid}/forecast", {"messages": 6000}, headers=auth).json
    show("on Light", {k: f[k] for k in ("plan", "sendable", "blocked", "additional_cost_yen")})
    plan = request("POST", f"{api}/accounts/{aid}/plan", {"plan": "standard"}, headers=auth).json
    show("POST /accounts/{id}/plan (an upgrade applies today, R-PLAN-3)", plan["plan"])
    f = request("POST", f"{api}/accounts/{aid}/forecast", {"messages": 30_000}, headers=auth).json
    show("30,000 more on Standard", {k: f[k] for k in ("plan", "free", "additional", "additional_cost_yen")})

    step(26, "The monthly close (the schedule of the 1st, triggered by name for this month): the invoice")
    month = u["month"]
    r = request("POST", f"{api}/_local/invoke/BillingRollupFunction", {"job": "close", "month": month})
    show("close", r.json)
    r = request("POST", f"{api}/_local/invoke/BillingRollupFunction", {"job": "close", "month": month})
    show("closed again (nothing changes)", r.json)
    r = request("GET", f"{api}/accounts/{aid}/invoices/{month}?format=csv", headers=auth)
    show(f"GET /accounts/{{id}}/invoices/{month}?format=csv", r.body.decode("utf-8").lstrip("\ufeff").rstrip())
    q = "product=notification&submitted_at=2026-11-20T18:00:00%2B09:00&calendar=jp_holidays"
    r = request("GET", f"{api}/calendar/earliest-start?{q}")
    show("earliest start of notification messages applied Fri 18:00 JST (R-BIZ-1)", r.json["earliest_start"])


def campaigns(stack: LocalStack, aid: str, auth: dict[str, str], ch: dict[str, Any]) -> None:
    api, sb = stack.api_url, stack.sandbox_url
    step(35, "Audiences: 60 more friends follow; tags defined and applied from a CSV; the register gains stores")
    fans = [f"U{0xC0FFEE:08x}{i:024x}" for i in range(60)]
    for start in range(0, len(fans), 20):
        events = [{"type": "follow", "source": {"type": "user", "userId": u}} for u in fans[start : start + 20]]
        request("POST", f"{sb}/_sandbox/channels/{ch['channelId']}/webhooks", {"events": events}, timeout=30)
    stack.drain(60)
    request("PUT", f"{api}/accounts/{aid}/tags/winter", headers=auth)
    csv_rows = "user_id,tag\n" + "".join(f"{u},winter\n" for u in [USER, *fans])
    r = request(
        "POST",
        f"{api}/accounts/{aid}/friend-tags/import",
        headers={**auth, "Content-Type": "text/csv"},
        data=csv_rows.encode(),
    )
    show("POST /accounts/{id}/friend-tags/import", r.json)
    r = request(
        "POST",
        f"{api}/accounts/{aid}/members/import",
        headers={**auth, "Content-Type": "text/csv"},
        data=b"member_number,phone,birth_date,store,prefecture\n1234567,090-1234-5678,19710401,S01,\xe9\xb9\xbf\xe5\x85\x90\xe5\xb3\xb6\xe7\x9c\x8c\n",
    )
    show("register row 1234567 with its store (the age band is kept, never the birth date)", r.json)

    step(36, "A segment: linked members of store S01 (R-LINK-7) - preview counts in one pass over the friends")
    rule = {"all": [{"linked": True}, {"attribute": "store", "eq": "S01"}]}
    r = request("POST", f"{api}/accounts/{aid}/segments/preview", {"rule": rule}, headers=auth)
    show("POST /accounts/{id}/segments/preview", r.json)
    r = request("POST", f"{api}/accounts/{aid}/segments/preview", {"rule": {"tag": "nope"}}, headers=auth)
    show("an unknown tag", f"{r.status} {r.json['error']['code']}")

    step(37, "An A/B campaign to the 'winter' tag with a 20 % hold-out and tracked links; its forecast")
    button = {
        "type": "template",
        "altText": "冬のセール",
        "template": {
            "type": "buttons",
            "text": "冬のセール開催中",
            "actions": [{"type": "uri", "label": "見る", "uri": "https://shop.example/winter"}],
        },
    }
    body = {
        "name": "冬のセール A/B",
        "rule": {"tag": "winter"},
        "variants": [
            {"name": "A", "ratio": 50, "messages": [{"type": "text", "text": "本日限り！"}, button]},
            {"name": "B", "ratio": 50, "messages": [{"type": "text", "text": "週末まで"}, button]},
        ],
        "holdout_percent": 20,
        "track_links": True,
    }
    camp = request("POST", f"{api}/accounts/{aid}/campaigns", body, headers=auth).json
    cid = camp["campaign_id"]
    show("POST /accounts/{id}/campaigns", {k: camp[k] for k in ("campaign_id", "state", "holdout_percent")})
    show("tracked links", camp["tracked_links"])
    f = request("POST", f"{api}/accounts/{aid}/campaigns/{cid}/forecast", {}, headers=auth).json
    show(
        "forecast",
        {k: f[k] for k in ("audience", "recipients", "groups", "fits")} | {"cost": f["billing"]["additional_cost_yen"]},
    )

    step(38, "Scheduled for tomorrow 10:00 JST (a one-off EventBridge Scheduler entry), fired by the local invoke")
    from datetime import UTC, datetime, timedelta, timezone

    jst = timezone(timedelta(hours=9))
    at = (datetime.now(UTC).astimezone(jst) + timedelta(days=1)).replace(hour=10, minute=0, second=0, microsecond=0)
    r = request("POST", f"{api}/accounts/{aid}/campaigns/{cid}/schedule", {"at": at.isoformat()}, headers=auth)
    show("POST /campaigns/{id}/schedule", f"{r.status} {r.json['state']} at {r.json['schedule_at']}")
    r = request("POST", f"{api}/_local/fire-schedules", {})
    show("python -m tsunagu_local fire-schedules", r.json["result"])
    stack.drain(60)
    view = request("GET", f"{api}/accounts/{aid}/campaigns/{cid}", headers=auth).json
    show("the campaign", {k: view[k] for k in ("state", "snapshot", "progress")})
    calls = request("GET", f"{sb}/_sandbox/calls?path=/v2/bot/message/multicast").json["calls"]
    mine = [c for c in calls if c["body"].get("customAggregationUnits")]
    show(
        "LINE multicasts (one retry key each)",
        [
            {
                "to": len(c["body"]["to"]),
                "unit": c["body"]["customAggregationUnits"],
                "retry_key": c["headers"]["x-line-retry-key"],
            }
            for c in mine
        ],
    )

    step(39, "Clicks on the tracked links, LINE's statistics from the sandbox, and the report against the hold-out")
    tokens = {link["variant"]: link["token"] for link in camp["tracked_links"]}
    for variant, clicks in (("A", 12), ("B", 3)):
        for _ in range(clicks):
            request("GET", f"{api}/r/{tokens[variant]}")
    r = request("GET", f"{api}/r/{tokens['A']}")
    show("GET /r/{token}", f"{r.status} → {r.headers['location']}")
    request("PUT", f"{sb}/_sandbox/insight", {"impression": 0.8, "click": 0.3})
    request("POST", f"{api}/accounts/{aid}/campaigns/{cid}/insight", headers=auth)
    rep = request("GET", f"{api}/accounts/{aid}/campaigns/{cid}/report", headers=auth).json
    show("report", {k: rep[k] for k in ("groups", "comparisons", "test", "winner", "line_statistics_note")})
    r = request("GET", f"{api}/accounts/{aid}/campaigns/{cid}/report?format=csv", headers=auth)
    show("report.csv", r.body.decode("utf-8").lstrip("\ufeff").rstrip())


def link_member(stack: LocalStack, aid: str, auth: dict[str, str], ch: dict[str, Any]) -> None:
    api = stack.api_url
    step(9, "The co-op imports its member register (factors are stored only as keyed hashes)")
    request(
        "PATCH",
        f"{api}/accounts/{aid}",
        {"link_policy": {"accepted": [["member_number_phone_birthdate"]]}},
        headers=auth,
    )
    r = request(
        "POST",
        f"{api}/accounts/{aid}/members/import",
        headers={**auth, "Content-Type": "text/csv"},
        data=b"member_number,phone,birth_date\n1234567,090-1234-5678,19710401\n7654321,080-0000,1971-4-1\n",
    )
    show("POST /accounts/{id}/members/import", r.json)

    step(10, "The member taps 「連携」: tsunagu issues a LINE link token and replies with the link page")
    page = open_link_page(stack.sandbox_url, ch["channelId"], USER, stack.drain)
    show("reply", page["reply"])

    step(11, "On the page: member number, phone, birth date → LINE's account-link dialog → accountLink webhook")
    r = submit_link_form(
        api, aid, page, "member", member_number="1234567", phone="090-1234-5678", birth_date="19710401"
    )
    show("POST /link/{id}", f"{r.status} → {r.headers['location'].split('?')[0]}?linkToken=…&nonce=…")
    request("GET", r.headers["location"])  # the sandbox plays LINE's dialog
    stack.drain()
    show("member 1234567", request("GET", f"{api}/accounts/{aid}/members/1234567", headers=auth).json["links"])
    calls = request("GET", f"{stack.sandbox_url}/_sandbox/calls?path=/v2/bot/message/reply").json["calls"]
    show("confirmation in the chat (R-LINK-14)", calls[-1]["body"]["messages"][0]["text"])

    step(12, "Another LINE account tries to link the same member: refused (R-LINK-3)")
    other = "U" + "b" * 32
    page = open_link_page(stack.sandbox_url, ch["channelId"], other, stack.drain)
    r = submit_link_form(
        api, aid, page, "member", member_number="1234567", phone="090-1234-5678", birth_date="19710401"
    )
    show("POST /link/{id}", f"{r.status} {error_code(r)}")


def _event(stack: LocalStack, ch: dict[str, Any], user: str, event: dict[str, Any]) -> None:
    events = [{"source": {"type": "user", "userId": user}, **event}]
    request("POST", f"{stack.sandbox_url}/_sandbox/channels/{ch['channelId']}/webhooks", {"events": events})
    stack.drain()


def _say(stack: LocalStack, ch: dict[str, Any], user: str, text: str) -> None:
    _event(stack, ch, user, {"type": "message", "message": {"type": "text", "text": text}})


def _last_reply(stack: LocalStack) -> dict[str, Any]:
    calls = request("GET", f"{stack.sandbox_url}/_sandbox/calls?path=/v2/bot/message/reply").json["calls"]
    return dict(calls[-1]["body"]["messages"][0])


def mobile_lines(stack: LocalStack) -> None:
    api, sb = stack.api_url, stack.sandbox_url
    step(27, "A mobile carrier's OA: its register (My Page login, usage codes) and its lines by CSV; L2 is at 0 MB")
    r = request(
        "POST",
        f"{api}/accounts",
        {
            "name": "つなぐモバイル",
            "plan": "light",
            "link_policy": {"accepted": [["login_id_password"], ["usage_code"]]},
        },
        headers={"Authorization": f"Bearer {stack.operator_key}"},
    )
    aid, auth = r.json["account_id"], {"Authorization": f"Bearer {r.json['api_key']}"}
    ch = request("POST", f"{sb}/_sandbox/channels", {"webhookUrl": f"{api}/line/{aid}/webhook"}).json
    creds = {"channel_secret": ch["channelSecret"], "access_token": ch["accessToken"]}
    request("PUT", f"{api}/accounts/{aid}/channel", creds, headers=auth)
    member = {
        "member_number": "N0000000001",
        "login_id": "hanako",
        "password": "correct horse",
        "lines": [
            {"line_id": "L1", "usage_code": "1111222233334444"},
            {"line_id": "L2", "usage_code": "5555666677778888"},
        ],
    }
    request("POST", f"{api}/accounts/{aid}/members", {"members": [member]}, headers=auth)
    rows = "line_id,member_number,allowance_mb,remaining_mb\nL1,N0000000001,3000,1000\nL2,N0000000001,3000,0\n"
    r = request(
        "POST", f"{api}/accounts/{aid}/lines/import", data=rows.encode(), headers={**auth, "Content-Type": "text/csv"}
    )
    show("POST /accounts/{id}/lines/import", f"{r.status} {r.json}")
    sink = f"{sb}/_sandbox/sinks/carrier-{aid}"
    request("PUT", f"{api}/accounts/{aid}/lines-settings", {"carrier_webhook_url": sink}, headers=auth)
    show("carrier webhook", sink)

    step(28, "A friend links as contractor (My Page login) and as the user of L1 (16-digit usage code)")
    user = "U" + "c" * 32
    for kind, fields in (
        ("contractor", {"login_id": "hanako", "password": "correct horse"}),
        ("user", {"usage_code": "1111222233334444"}),
    ):
        page = open_link_page(sb, ch["channelId"], user, stack.drain)
        r = submit_link_form(api, aid, page, kind, **fields)
        request("GET", r.headers["location"])
        stack.drain()
    show(
        "links",
        [
            lk["target"]
            for lk in request("GET", f"{api}/accounts/{aid}/members/N0000000001", headers=auth).json["links"]
        ],
    )

    step(29, "The friend sends 「残量」: a free reply with a Flex bubble of every line of the contract (R-LINK-12)")
    _say(stack, ch, user, "残量")
    show("reply (Flex altText)", _last_reply(stack)["altText"])
    stranger = "U" + "d" * 32
    _say(stack, ch, stranger, "残量")
    show("an unlinked friend gets the hint instead", _last_reply(stack)["text"])

    step(
        30, "The friend gives 500 MB to the throttled L2: rich-menu postback, confirm step, one transaction (R-GIFT-1)"
    )
    show("L2 before", request("GET", f"{api}/accounts/{aid}/lines/L2", headers=auth).json["speed"])
    _event(stack, ch, user, {"type": "postback", "postback": {"data": "action=gift&to=L2&mb=500"}})
    confirm = _last_reply(stack)
    show("confirm template", confirm["template"]["text"])
    yes = confirm["template"]["actions"][0]["data"]
    _event(stack, ch, user, {"type": "postback", "postback": {"data": yes}})
    show("reply", _last_reply(stack)["text"])
    for lid in ("L1", "L2"):
        ln = request("GET", f"{api}/accounts/{aid}/lines/{lid}", headers=auth).json
        show(lid, f"{ln['remaining_mb']} MB, {ln['speed']}")
    _event(stack, ch, user, {"type": "postback", "postback": {"data": yes}})
    show("the same confirmation again", _last_reply(stack)["text"])
    stack.drain()
    received = request("GET", sink).json["received"]
    show(
        "the carrier's webhook (signed, via the forward queue)",
        f"{len(received)} delivery: {received[-1]['body'][:120]}…",
    )

    step(31, "「マイページ」: a signed, single-use login ticket; the company's site redeems it server to server")
    site = f"{sb}/_sandbox/mypage/site-{aid}"
    request("PUT", site, {"apiBase": api, "accountId": aid, "apiKey": auth["Authorization"].split(" ", 1)[1]})
    settings = {"carrier_webhook_url": sink, "mypage_url": site}
    request("PUT", f"{api}/accounts/{aid}/lines-settings", settings, headers=auth)
    _say(stack, ch, user, "マイページ")
    uri = _last_reply(stack)["template"]["actions"][0]["uri"]
    show("button opens", uri.split("?")[0] + "?ticket=v1.…")
    show("My Page (sample verifier)", request("GET", uri).json)
    show("the same link again", request("GET", uri).json)


def help_desk(stack: LocalStack, aid: str, auth: dict[str, str], ch: dict[str, Any]) -> None:
    from datetime import UTC, datetime, timedelta
    from pathlib import Path

    api = stack.api_url
    step(32, "The co-op loads its FAQ (seed 004, as question/answer pairs) and a member asks in the chat")
    faq = (Path(__file__).parent / "data" / "coop_faq.csv").read_bytes()
    r = request("POST", f"{api}/accounts/{aid}/faq/import", data=faq, headers={**auth, "Content-Type": "text/csv"})
    show("POST /accounts/{id}/faq/import", f"{r.status} {r.json}")
    member = "U" + "e" * 32
    _say(stack, ch, member, "値引きシールが貼ってある商品にクーポンは使えますか")
    show("the answer (embedded n-gram retrieval)", _last_reply(stack)["text"])

    step(33, "Inside operator hours: 「オペレーター」 queues the chat, the bot goes quiet, an operator answers")
    request(
        "PUT",
        f"{api}/accounts/{aid}/helpdesk/settings",
        {"open": "00:00", "close": "23:59", "calendar": "every_day"},
        headers=auth,
    )
    _say(stack, ch, member, "オペレーターと話したい")
    show("told", _last_reply(stack)["text"])
    _say(stack, ch, member, "クーポンの使い方を詳しく知りたいです")
    q = request("GET", f"{api}/accounts/{aid}/helpdesk/queue", headers=auth).json
    show("operator queue", [w["user_id"][:9] + "…" for w in q["waiting"]])
    r = request(
        "POST",
        f"{api}/accounts/{aid}/helpdesk/conversations/{member}/replies",
        {"text": "担当の山田です。ご案内します。"},
        headers=auth,
    )
    show("operator reply", r.json)
    request("POST", f"{api}/accounts/{aid}/helpdesk/conversations/{member}/handback", headers=auth)

    step(34, "Outside operator hours: the member is told when operators are back; the question waits")
    hour = (datetime.now(UTC) + timedelta(hours=9)).hour
    start = hour + 1 if hour <= 21 else 1
    closed = {"open": f"{start:02d}:00", "close": f"{start + 1:02d}:00", "calendar": "every_day"}
    request("PUT", f"{api}/accounts/{aid}/helpdesk/settings", closed, headers=auth)
    night = "U" + "f" * 32
    _say(stack, ch, night, "オペレーターをお願いします")
    show("told", _last_reply(stack)["text"])
    q = request("GET", f"{api}/accounts/{aid}/helpdesk/queue", headers=auth).json
    show("queued for opening", [w["user_id"][:9] + "…" for w in q["queued_for_opening"]])
    show("metrics", q["metrics"])


def main() -> None:
    stack = LocalStack(log_level="ERROR", metrics=False).start()
    try:
        run(stack)
    finally:
        stack.stop()
