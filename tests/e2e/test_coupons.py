"""Coupons end to end on the local stack (moto server as AWS, the LINE sandbox as LINE): the
redemption race (32 registers scan the same member's code at once: exactly one discount), a
lottery grant storm against its winner cap, the mirror to LINE's coupon API, and the coupon page
in headless Chromium through the sandbox's LINE Login, its code rotating."""

from __future__ import annotations

import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.conftest import OPERATOR_KEY, RunningStack
from tests.e2e.test_link_page_browser import browser  # noqa: F401 - fixture
from tsunagu.coupons import domain as c
from tsunagu_local.client import request

pytestmark = pytest.mark.e2e
SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"
MILK = "4901234567890"


def setup_account(stack: RunningStack, user: str | None = None) -> dict[str, Any]:
    api, sb = stack.api, stack.sandbox
    r = request("POST", f"{api}/accounts", {"name": "生協"}, headers={"Authorization": f"Bearer {OPERATOR_KEY}"})
    aid, auth = r.json["account_id"], {"Authorization": f"Bearer {r.json['api_key']}"}
    ch = request("POST", f"{sb}/_sandbox/channels", {}).json
    creds = {"channel_secret": ch["channelSecret"], "access_token": ch["accessToken"]}
    assert request("PUT", f"{api}/accounts/{aid}/channel", creds, headers=auth).status == 200
    login = request("POST", f"{sb}/_sandbox/login-channels", {"userId": user}).json
    body = {"channel_id": login["channelId"], "channel_secret": login["channelSecret"]}
    assert request("PUT", f"{api}/accounts/{aid}/login-channel", body, headers=auth).status == 200
    return {"aid": aid, "auth": auth, "login": login, "channel": ch}


def new_coupon(stack: RunningStack, acct: dict[str, Any], **over: Any) -> str:
    body = {
        "title": "牛乳30円引き",
        "kind": "yen",
        "amount": 30,
        "valid_days": {"first": "2020-01-01", "last": "2099-12-31"},
        "eligible_items": [MILK],
        **over,
    }
    r = request("POST", f"{stack.api}/accounts/{acct['aid']}/coupons", body, headers=acct["auth"])
    assert r.status == 201, r.text
    return str(r.json["coupon_id"])


def grant(stack: RunningStack, acct: dict[str, Any], cid: str, user: str) -> dict[str, Any]:
    r = request(
        "POST", f"{stack.api}/accounts/{acct['aid']}/coupons/{cid}/grants", {"user_ids": [user]}, headers=acct["auth"]
    )
    assert r.status == 200, r.text
    return r.json["grants"][0]  # type: ignore[no-any-return]


def page_code(stack: RunningStack, acct: dict[str, Any], cid: str, user: str) -> dict[str, Any]:
    """What the member's page fetches, with an ID token as LINE Login would issue it."""
    now = int(time.time())
    claims = {"iss": c.LINE_ISSUER, "sub": user, "aud": acct["login"]["channelId"], "exp": now + 600, "iat": now}
    token = c.sign_id_token(claims, acct["login"]["channelSecret"])
    r = request("GET", f"{stack.api}/coupon/{acct['aid']}/code?c={cid}", headers={"Cookie": f"tsunagu_coupon={token}"})
    assert r.status == 200, r.text
    return r.json  # type: ignore[no-any-return]


def redeem(stack: RunningStack, acct: dict[str, Any], code: str, register: str, key: str | None = None) -> Any:
    body = {
        "store_id": f"S{register[-1]}",
        "register_id": register,
        "code": code,
        "idempotency_key": key or str(uuid.uuid4()),
        "lines": [
            {"item_code": MILK, "quantity": 2, "unit_price": 198},
            {"item_code": MILK, "quantity": 1, "unit_price": 150, "marked_down": True},
        ],
    }
    return request("POST", f"{stack.api}/accounts/{acct['aid']}/redemptions", body, headers=acct["auth"], timeout=60)


@pytest.fixture
def services(in_process: str) -> Any:
    """tsunagu's services in this process on the local stack's moto server (32 threads through
    the local HTTP gateway would overflow its listen backlog)."""
    from tsunagu import wiring

    return wiring


def basket_doc(code: str, register: str, key: str | None = None) -> dict[str, Any]:
    return {
        "store_id": f"S{register[-1]}",
        "register_id": register,
        "code": code,
        "idempotency_key": key or str(uuid.uuid4()),
        "lines": [
            {"item_code": MILK, "quantity": 2, "unit_price": 198},
            {"item_code": MILK, "quantity": 1, "unit_price": 150, "marked_down": True},
        ],
    }


def outcome(fn: Any) -> tuple[int, str | None]:
    try:
        fn()
    except c.CouponRefused as e:
        return 422, e.code
    return 201, None


def test_32_registers_racing_on_one_code_give_exactly_one_discount(local_stack: RunningStack, services: Any) -> None:
    acct = setup_account(local_stack)
    cid = new_coupon(local_stack, acct)
    redemptions = services.redemptions()
    for trial in range(5):
        user = "U" + uuid.uuid4().hex
        grant(local_stack, acct, cid, user)
        code = page_code(local_stack, acct, cid, user)["code"]

        def one(i: int, code: str = code) -> tuple[int, str | None]:
            return outcome(lambda: redemptions.redeem(acct["aid"], basket_doc(code, f"R{i:02d}")))

        with ThreadPoolExecutor(32) as pool:
            outcomes = list(pool.map(one, range(32)))
        assert outcomes.count((201, None)) == 1, (trial, outcomes)
        assert set(outcomes) == {(201, None), (422, "already_used")}, outcomes
    counts = request("GET", f"{local_stack.api}/accounts/{acct['aid']}/coupons/{cid}", headers=acct["auth"]).json
    assert counts["counts"]["redeemed"] == 5


def test_a_retry_after_a_dropped_reply_gets_the_same_answer(local_stack: RunningStack, services: Any) -> None:
    acct = setup_account(local_stack)
    cid = new_coupon(local_stack, acct)
    user = "U" + uuid.uuid4().hex
    grant(local_stack, acct, cid, user)
    code, key = page_code(local_stack, acct, cid, user)["code"], str(uuid.uuid4())
    redemptions = services.redemptions()
    with ThreadPoolExecutor(8) as pool:  # the POS retries while the first call is still running
        results = list(pool.map(lambda _: redemptions.redeem(acct["aid"], basket_doc(code, "R01", key)), range(8)))
    assert len({r["redemption_id"] for r in results}) == 1
    assert sum(not r["replayed"] for r in results) == 1
    # Over HTTP too, after the code rotated: the stored answer, not a refusal.
    r = redeem(local_stack, acct, "0" * 16, "R01", key)
    assert (r.status, r.json["redemption_id"], r.json["replayed"]) == (201, results[0]["redemption_id"], True)


def test_lottery_cap_holds_under_a_grant_storm(local_stack: RunningStack, services: Any) -> None:
    acct = setup_account(local_stack)
    cid = new_coupon(local_stack, acct, lottery={"probability_percent": 90, "max_winners": 5})
    users = ["U" + uuid.uuid4().hex for _ in range(48)]
    grants = services.coupon_grants()
    with ThreadPoolExecutor(48) as pool:
        statuses = list(pool.map(lambda u: grants.grant(acct["aid"], cid, u)["status"], users))
    assert statuses.count("won") == 5, statuses  # 48 draws at 90 %: the cap, not luck, decides
    assert set(statuses) <= {"won", "lost", "cap_reached"}
    got = request("GET", f"{local_stack.api}/accounts/{acct['aid']}/coupons/{cid}", headers=acct["auth"]).json
    assert got["counts"]["won"] == 5
    # Drawn once: asking again returns each person's stored outcome.
    again = [grant(local_stack, acct, cid, u) for u in users[:10]]
    assert [g["status"] for g in again] == statuses[:10] and not any(g["new"] for g in again)


def test_coupon_is_mirrored_to_lines_coupon_api(local_stack: RunningStack) -> None:
    acct = setup_account(local_stack)
    cid = new_coupon(local_stack, acct, mirror_to_line=True, lottery={"probability_percent": 30, "max_winners": 100})
    got = request("GET", f"{local_stack.api}/accounts/{acct['aid']}/coupons/{cid}", headers=acct["auth"]).json
    calls = request("GET", f"{local_stack.sandbox}/_sandbox/calls?path=/v2/bot/coupon").json["calls"]
    mine = [x for x in calls if x["status"] == 200 and x["body"]["title"] == "牛乳30円引き"]
    assert got["line_coupon_id"] and mine
    body = mine[-1]["body"]
    assert body["acquisitionCondition"] == {"type": "lottery", "lotteryProbability": 30, "maxAcquireCount": 100}
    assert body["reward"] == {"type": "discount", "priceInfo": {"type": "fixed", "fixedAmount": 30}}
    assert body["timezone"] == "ASIA_TOKYO" and body["maxUseCountPerTicket"] == 1


def test_member_logs_in_with_line_and_sees_a_rotating_code_in_chromium(local_stack: RunningStack, browser) -> None:  # noqa: F811
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    user = "U" + uuid.uuid4().hex
    acct = setup_account(local_stack, user)
    cid = new_coupon(local_stack, acct, title="牛乳 30円引き(組合員限定)")
    grant(local_stack, acct, cid, user)
    browser.get(f"{local_stack.api}/coupon/{acct['aid']}?c={cid}")
    # To LINE Login (the sandbox) and back: the page is shown only after the ID token checked out.
    number = WebDriverWait(browser, 20).until(lambda d: d.find_element(By.ID, "number"))
    assert browser.current_url.endswith(f"/coupon/{acct['aid']}?c={cid}")  # no code or token left in the URL
    assert browser.execute_script("return document.documentElement.scrollWidth <= window.innerWidth")
    assert browser.find_element(By.CSS_SELECTOR, ".qr svg").size["width"] >= 200
    first = number.get_attribute("data-code")
    assert first and len(first) == 16 and number.text.replace(" ", "") == first
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    browser.save_screenshot(str(SCREENSHOTS / "coupon-page.png"))
    # The code rotates on the page without a reload (every 30 s).
    WebDriverWait(browser, 40).until(lambda d: d.find_element(By.ID, "number").get_attribute("data-code") != first)
    second = browser.find_element(By.ID, "number").get_attribute("data-code")
    assert second[:8] == first[:8] and second != first  # same grant, new MAC
    # Redeemed at the register: on its next refresh the page says the coupon has been used.
    assert redeem(local_stack, acct, second, "R01").status == 201
    WebDriverWait(browser, 40).until(lambda d: d.find_element(By.ID, "code").get_attribute("data-state") == "refused")
    assert browser.find_element(By.CSS_SELECTOR, "[role=alert]").get_attribute("data-code") == "already_used"
