"""The operator console in headless Chromium (Debian's package, no browser download) on the
local stack, on a desktop and a phone viewport: every page's main action, a refused action
(403 page in Japanese), an axe-core check on every page (no serious or critical violation), and a
screenshot of each page into docs/screenshots/. One walk per viewport keeps the run short."""

from __future__ import annotations

import json
import os
import uuid
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.conftest import OPERATOR_KEY, RunningStack
from tsunagu_local import linkflow
from tsunagu_local.client import request
from tsunagu_local.console_demo import demo_staff

pytestmark = pytest.mark.e2e
CHROMIUM, DRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"
ROOT = Path(__file__).resolve().parents[2]
AXE = (Path(__file__).parent / "vendor" / "axe.min.js").read_text(encoding="utf-8")
SHOTS = ROOT / "docs" / "screenshots"
VIEWPORTS = {"desktop": (1280, 860), "phone": (390, 844)}
MEMBER = {"member_number": "1234567", "phone": "090-1234-5678", "birth_date": "19710401"}


def new_user() -> str:
    return "U" + os.urandom(16).hex()


@pytest.fixture
def shop(local_stack: RunningStack) -> dict[str, Any]:
    """An account with friends, a chat, a linked member, a coupon, a pending template, usage,
    an admin and a cashier (pos scope) with their console logins: one per walk, so each
    viewport's walk starts from the same state and asserts exact counts."""
    api, sb = local_stack.api, local_stack.sandbox
    r = request(
        "POST",
        f"{api}/accounts",
        {"name": "生協テスト店", "plan": "light", "link_policy": {"accepted": [["member_number_phone_birthdate"]]}},
        headers={"Authorization": f"Bearer {OPERATOR_KEY}"},
    )
    aid, auth = r.json["account_id"], {"Authorization": f"Bearer {r.json['api_key']}"}
    ch = request("POST", f"{sb}/_sandbox/channels", {"webhookUrl": f"{api}/line/{aid}/webhook"}).json
    request(
        "PUT",
        f"{api}/accounts/{aid}/channel",
        {"channel_secret": ch["channelSecret"], "access_token": ch["accessToken"]},
        headers=auth,
    )
    assert request("POST", f"{api}/accounts/{aid}/members", {"members": [MEMBER]}, headers=auth).json["imported"] == 1
    users = [new_user() for _ in range(3)]
    events = [
        {"type": "follow", "source": {"type": "user", "userId": u}, "follow": {"isUnblocked": False}} for u in users
    ]
    request("POST", f"{sb}/_sandbox/channels/{ch['channelId']}/webhooks", {"events": events})
    local_stack.drain()
    linkflow.say(sb, ch["channelId"], users[0], "<b>営業時間を教えてください</b>", local_stack.drain)
    page = linkflow.open_link_page(sb, ch["channelId"], users[0], local_stack.drain)
    r = linkflow.submit_link_form(api, aid, page, "member", **{k: v for k, v in MEMBER.items()})
    assert r.status == 302, r.text
    request("GET", r.headers["location"])  # LINE's dialog (the sandbox) sends accountLink
    local_stack.drain()
    content = {"messages": [{"type": "text", "text": "{{name}}様 ご注文の商品を発送しました。"}]}
    t = request(
        "POST",
        f"{api}/accounts/{aid}/notification-templates",
        {"name": "発送のお知らせ", "kind": "flexible", "content": content},
        headers=auth,
    ).json
    coupon = {
        "title": "100円引き",
        "kind": "yen",
        "amount": 100,
        "valid_days": {"first": "2026-01-01", "last": "2027-12-31"},
    }
    assert request("POST", f"{api}/accounts/{aid}/coupons", coupon, headers=auth).status == 201
    send = {
        "kind": "multicast",
        "retry_key": str(uuid.uuid4()),
        "body": {"to": users, "messages": [{"type": "text", "text": "週末セールのお知らせ"}]},
    }
    assert request("POST", f"{api}/accounts/{aid}/messages", send, headers=auth).status == 200
    request("POST", f"{api}/_local/invoke/BillingRollupFunction", {"job": "daily", "account_ids": [aid]})
    # The help desk open all day, and one friend asking for an operator (the operator queue).
    hours = {"open": "00:00", "close": "23:59", "calendar": "every_day"}
    assert request("PUT", f"{api}/accounts/{aid}/helpdesk/settings", hours, headers=auth).status == 200
    linkflow.say(sb, ch["channelId"], users[1], "オペレーターと話したい", local_stack.drain)
    url, email, password = demo_staff(api, aid, auth)
    cashier = demo_staff(api, aid, auth, "cashier@tsunagu.example", ("pos",), "レジ担当")
    return {
        "id": aid,
        "auth": auth,
        "users": users,
        "template": t["template_id"],
        "stack": local_stack,
        "login": url,
        "admin": (email, password),
        "cashier": cashier[1:],
    }


@pytest.fixture(params=sorted(VIEWPORTS))
def browser(request, tmp_path):
    if not (os.path.exists(CHROMIUM) and os.path.exists(DRIVER)):
        if os.environ.get("CI"):
            pytest.fail("CI must install Debian's chromium and chromium-driver (make browser-deps)")
        pytest.skip("needs Debian's chromium and chromium-driver: `make browser-deps`")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for arg in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-dev-shm-usage",
        "--lang=ja-JP",
        f"--user-data-dir={tmp_path / 'profile'}",
    ):
        opts.add_argument(arg)
    width, height = VIEWPORTS[request.param]
    if request.param == "phone":
        opts.add_experimental_option(
            "mobileEmulation",
            {
                "deviceMetrics": {"width": width, "height": height, "pixelRatio": 2.0},
                "userAgent": "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) Mobile",
            },
        )
    else:
        opts.add_argument(f"--window-size={width},{height}")
    driver = webdriver.Chrome(service=Service(DRIVER), options=opts)
    driver.set_page_load_timeout(20)
    driver.viewport = request.param
    yield driver
    driver.quit()


def axe_violations(driver) -> list[dict[str, Any]]:
    """axe-core on the page as rendered; only the serious and critical violations."""
    driver.execute_script(AXE)
    result = driver.execute_async_script(
        "const done = arguments[arguments.length - 1];"
        "axe.run(document, {resultTypes: ['violations']}).then(r => done(r.violations))"
        ".catch(e => done([{id: 'axe-error', impact: 'critical', help: String(e)}]));"
    )
    return [
        {
            "id": v["id"],
            "impact": v["impact"],
            "help": v["help"],
            "nodes": [n.get("target") for n in v.get("nodes", [])][:3],
        }
        for v in result
        if v["impact"] in ("serious", "critical")
    ]


def check_page(driver, name: str) -> None:
    from selenium.webdriver.common.by import By

    assert driver.find_element(By.TAG_NAME, "html").get_attribute("lang") == "ja"
    assert driver.execute_script("return document.documentElement.scrollWidth <= window.innerWidth + 1"), name
    bad = axe_violations(driver)
    assert not bad, json.dumps(bad, ensure_ascii=False, indent=1)
    SHOTS.mkdir(parents=True, exist_ok=True)
    driver.save_screenshot(str(SHOTS / f"{name}-{driver.viewport}.png"))


def test_staff_drive_every_page_of_the_console(shop, browser, tmp_path):
    from selenium.common.exceptions import WebDriverException
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select, WebDriverWait

    d, aid = browser, shop["id"]
    base = shop["login"].rsplit("/", 1)[0]
    wait = WebDriverWait(d, 15, ignored_exceptions=(WebDriverException,))  # a page mid-navigation

    def go(path: str) -> None:
        d.get(f"{base}/{path}")

    def submit(form_css: str, navigates: bool = True) -> None:
        """Click the form's button; a form that loads a page is waited for (the old page gone)."""
        d.execute_script("window.__walk_old_page = true")
        d.find_element(By.CSS_SELECTOR, f"{form_css} button[type=submit]").click()
        if navigates:  # a new document has no mark and has finished loading
            loaded = "return window.__walk_old_page === undefined && document.readyState === 'complete'"
            wait.until(lambda x: x.execute_script(loaded))

    def notice() -> str:
        """The page's notice after an action; a refusal in its place fails with what it said."""
        found = wait.until(lambda x: x.find_elements(By.CSS_SELECTOR, "[role=status], main > [role=alert]"))
        assert found[0].get_attribute("role") == "status", (found[0].get_attribute("data-code"), found[0].text)
        return str(found[0].text)

    # Login: a wrong password first (refused, in Japanese), then the right one.
    d.get(shop["login"])
    assert d.title.startswith("ログイン")
    check_page(d, "login")
    email, password = shop["admin"]
    d.find_element(By.ID, "email").send_keys(email)
    d.find_element(By.ID, "password").send_keys("wrong-password-0000")
    submit("form")
    assert (
        wait.until(lambda x: x.find_element(By.CSS_SELECTOR, "[role=alert]")).get_attribute("data-code")
        == "login_failed"
    )
    d.find_element(By.ID, "password").send_keys(password)
    submit("form")
    wait.until(lambda x: x.current_url.endswith("/dashboard"))

    # ダッシュボード: the counts and the chart (uPlot draws a canvas).
    assert d.find_element(By.CSS_SELECTOR, "[data-stat=friends]").text.startswith("3")
    assert d.find_element(By.CSS_SELECTOR, "[data-stat=linked]").text.startswith("1")
    wait.until(lambda x: x.find_elements(By.CSS_SELECTOR, "#usage-chart canvas"))
    check_page(d, "dashboard")

    # 友だち: filter, then a friend's page with the chat, escaped.
    go("friends")
    Select(d.find_element(By.ID, "state")).select_by_value("friend")
    submit("form.filters")
    rows = d.find_elements(By.CSS_SELECTOR, "#friends tbody tr")
    assert len(rows) == 3
    check_page(d, "friends")
    go(f"friends/{shop['users'][0]}")
    chat = d.find_element(By.ID, "chat").text
    assert "<b>営業時間を教えてください</b>" in chat  # shown as text, not markup
    assert not d.find_elements(By.CSS_SELECTOR, "#chat b")
    assert "MEMBER#1234567" in d.page_source
    check_page(d, "friend")

    # 会員: a CSV with a broken row (nothing written, the rows shown), then the staff release of a link.
    go("members")
    csv = tmp_path / f"members-{d.viewport}.csv"
    csv.write_text(
        "member_number,phone,birth_date\n2345678,09011112222,19800101\n2345679,not-a-phone,19800101\n", encoding="utf-8"
    )
    d.find_element(By.ID, "csv-file").send_keys(str(csv))
    submit("#import-form", navigates=False)
    alert = wait.until(lambda x: x.find_element(By.CSS_SELECTOR, "#import-result [role=alert]"))
    assert alert.get_attribute("data-code") == "rows_rejected" and "どの行も取り込んでいません" in alert.text
    assert d.find_element(By.ID, "import-progress").get_attribute("value") == "100"
    assert "3" in d.find_element(By.CSS_SELECTOR, "#import-errors tbody tr td").text  # CSV line 3
    assert request("GET", f"{shop['stack'].api}/accounts/{aid}/members/2345678", headers=shop["auth"]).status == 404
    check_page(d, "members")
    d.find_element(By.ID, "number").send_keys("1234567")
    submit("form.filters")
    assert len(d.find_elements(By.CSS_SELECTOR, "form.unlink")) == 1
    d.find_element(By.ID, "reason-1").send_keys("店頭で運転免許証を確認")
    submit("form.unlink")
    assert "連携を解除しました" in notice()
    assert "連携はありません" in d.page_source
    assert "店頭で運転免許証を確認" in d.find_element(By.ID, "link-audit").text

    # クーポン: create one; script in the title stays text.
    go("coupons")
    title = f"<i>{d.viewport}</i>限定200円引き"
    d.find_element(By.ID, "title").send_keys(title)
    d.find_element(By.ID, "amount").send_keys("200")
    for field, value in (("first", "2026-12-01"), ("last", "2026-12-31")):
        d.execute_script("arguments[0].value = arguments[1]", d.find_element(By.ID, field), value)
    submit("#coupon-form")
    assert "作成しました" in notice()
    assert title in d.find_element(By.ID, "coupons").text and not d.find_elements(By.CSS_SELECTOR, "#coupons i")
    check_page(d, "coupons")

    # 通知メッセージ: approve the pending template.
    go("notifications")
    assert len(d.find_elements(By.CSS_SELECTOR, "#templates form button")) == 1  # the pending template
    submit("#templates form")
    assert "承認しました" in notice()
    assert not d.find_elements(By.CSS_SELECTOR, "#templates form button")
    assert "承認済み" in d.find_element(By.ID, "templates").text
    check_page(d, "notifications")

    # ヘルプデスク: the waiting friend, the conversation, a reply (sent to LINE), the hand-back.
    go("helpdesk")
    queue = d.find_elements(By.CSS_SELECTOR, "#queue tbody tr a")
    assert [a.text for a in queue] == [shop["users"][1]]
    check_page(d, "helpdesk")
    queue[0].click()
    wait.until(lambda x: x.find_elements(By.ID, "reply-form"))
    assert "オペレーターと話したい" in d.find_element(By.ID, "chat").text
    d.find_element(By.ID, "reply-text").send_keys("担当の山田です。ご用件をどうぞ。")
    submit("#reply-form")
    assert "返信を送りました" in notice()
    assert d.find_element(By.ID, "conv-state").get_attribute("data-state") == "operator"
    check_page(d, "conversation")
    # The member's reply token went to the "connecting you" answer, so the operator's is a push.
    sent = request("GET", f"{shop['stack'].sandbox}/_sandbox/calls?path=/v2/bot/message/push").json["calls"]
    assert sent[-1]["status"] == 200 and sent[-1]["body"]["to"] == shop["users"][1]
    assert sent[-1]["body"]["messages"][0]["text"] == "担当の山田です。ご用件をどうぞ。"
    submit("#handback-form")
    assert "自動応答に戻しました" in notice()
    assert "対応待ちの会話はありません" in d.find_element(By.ID, "queue").text

    # 請求: set a budget; a bad figure is refused in Japanese.
    go("billing")
    d.find_element(By.ID, "monthly_yen").send_keys("-5")
    submit("#budget-form")
    assert "0以上の整数" in wait.until(lambda x: x.find_element(By.CSS_SELECTOR, "[role=alert]")).text
    d.find_element(By.ID, "monthly_yen").clear()
    d.find_element(By.ID, "monthly_yen").send_keys("30000")
    submit("#budget-form")
    assert "保存しました" in notice()
    check_page(d, "billing")

    # 設定: invite a staff member; the link is shown once; the trail has what was done.
    go("settings")
    d.find_element(By.ID, "invite-name").send_keys("佐藤")
    d.find_element(By.ID, "invite-email").send_keys(f"sato-{d.viewport}@tsunagu.example")
    d.find_element(By.ID, "scope_members").click()
    submit("#invite-form")
    assert "/invite?t=" in wait.until(lambda x: x.find_element(By.ID, "invite-url")).text
    trail = d.find_element(By.ID, "staff-audit").text
    assert "連携解除" in trail
    assert "クーポン作成" in trail and "予算設定" in trail
    check_page(d, "settings")

    # A refused action: the cashier (pos) sees no 設定 in the menu and gets the 403 page.
    submit("form.logout")
    wait.until(lambda x: x.current_url.endswith("/login"))
    c_email, c_password = shop["cashier"]
    d.find_element(By.ID, "email").send_keys(c_email)
    d.find_element(By.ID, "password").send_keys(c_password)
    submit("form")
    wait.until(lambda x: x.current_url.endswith("/dashboard"))
    assert "設定" not in d.find_element(By.CSS_SELECTOR, "nav.menu").text
    go("settings")
    alert = d.find_element(By.CSS_SELECTOR, "[role=alert]")
    assert alert.get_attribute("data-code") == "scope_required" and "権限がありません" in d.page_source
    check_page(d, "forbidden")
    go("coupons")
    assert not d.find_elements(By.ID, "coupon-form") and d.find_elements(By.ID, "void-form")
    # The server refuses the action too, not only the page: a forged create from the cashier's
    # session (a valid CSRF token) is 403 and writes no coupon.
    refused = d.execute_async_script(
        "const done = arguments[arguments.length - 1];"
        "const csrf = document.querySelector('form.logout input[name=csrf]').value;"
        "fetch(location.pathname + '?do=create', {method: 'POST', headers: {'Accept': 'application/json',"
        " 'Content-Type': 'application/x-www-form-urlencoded'},"
        " body: new URLSearchParams({csrf: csrf, title: 'x', kind: 'yen', amount: '1',"
        " first: '2026-12-01', last: '2026-12-31'})})"
        ".then(r => r.json().then(b => done([r.status, b.error.code])))"
        ".catch(e => done([0, String(e)]));"
    )
    assert refused == [403, "scope_required"]
    titles = [
        c["title"]
        for c in request("GET", f"{shop['stack'].api}/accounts/{aid}/coupons", headers=shop["auth"]).json["coupons"]
    ]
    assert titles.count("x") == 0 and len(titles) == 2
