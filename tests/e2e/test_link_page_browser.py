"""The link page in a real browser: headless Chromium (Debian's package, no browser download)
on a phone-sized viewport, driven end to end on the local stack through the sandbox's dialog."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from tests.e2e.test_linking import MEMBER, coop, member_links, new_user, replies, say  # noqa: F401 - fixture

pytestmark = pytest.mark.e2e
CHROMIUM, DRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"
ARTIFACTS = Path(__file__).resolve().parents[2] / ".artifacts"


@pytest.fixture
def browser(tmp_path):
    if not (os.path.exists(CHROMIUM) and os.path.exists(DRIVER)):
        if os.environ.get("CI"):
            pytest.fail("CI must install Debian's chromium and chromium-driver (.ci/run does)")
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
        f"--user-data-dir={tmp_path / 'profile'}",
    ):
        opts.add_argument(arg)
    opts.add_experimental_option(
        "mobileEmulation",
        {
            "deviceMetrics": {"width": 390, "height": 844, "pixelRatio": 2.0},
            "userAgent": "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 Line/14.0.0",
        },
    )
    driver = webdriver.Chrome(service=Service(DRIVER), options=opts)
    driver.set_page_load_timeout(20)
    yield driver
    driver.quit()


def test_a_member_links_on_a_phone_sized_page_in_chromium(coop, browser):  # noqa: F811
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    user = new_user()
    say(coop, user, "連携")
    url = next(re.search(r"(http\S+/link/\S+)", t).group(1) for t in reversed(replies(coop)) if "/link/" in t)
    browser.get(url)
    assert browser.title == "LINEアカウント連携"
    # Fits the phone: no sideways scrolling, full-width inputs.
    assert browser.execute_script("return document.documentElement.scrollWidth <= window.innerWidth")
    assert "いつでも" in browser.find_element(By.CSS_SELECTOR, ".note").text  # unlinking can be undone
    browser.find_element(By.ID, "member-member_number").send_keys(MEMBER["member_number"])
    browser.find_element(By.ID, "member-phone").send_keys(MEMBER["phone"])
    browser.find_element(By.ID, "member-birth_date").send_keys("19710402")  # a wrong birth date first
    browser.find_element(By.CSS_SELECTOR, "#member-birth_date ~ button, form button").click()
    alert = WebDriverWait(browser, 15).until(lambda d: d.find_element(By.CSS_SELECTOR, "[role=alert]"))
    assert alert.get_attribute("data-code") == "birth_date_mismatch"
    ARTIFACTS.mkdir(exist_ok=True)
    browser.save_screenshot(str(ARTIFACTS / "link-page-error.png"))
    browser.find_element(By.ID, "member-birth_date").send_keys("19710401")
    browser.save_screenshot(str(ARTIFACTS / "link-page.png"))
    browser.find_element(By.CSS_SELECTOR, "form button").click()
    # The browser followed the redirect to LINE's dialog (the sandbox), which sent accountLink.
    WebDriverWait(browser, 15).until(lambda d: "/dialog/bot/accountLink" in d.current_url, browser.current_url)
    assert "accountLink sent" in browser.page_source
    coop["stack"].drain()
    assert [lk["user_id"] for lk in member_links(coop, "1234567")] == [user]
