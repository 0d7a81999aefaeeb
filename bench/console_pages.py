"""Server time per console page on the local stack at a realistic size (issue 20): an account
seeded with 10,000 friends, 100,000 chat lines and 10,000 members, a tag on a tenth of the
friends, one staff admin signed in. Every page is fetched ``--rounds`` times, round-robin (so the
machine's noise falls on every page alike), and the median / p95 of the answer time and the
HTML weight are printed, with two baselines from the same run: ``GET /health`` (the local
gateway's floor) and the login page (a template render without a session or a table read).

    python bench/console_pages.py [--friends 10000] [--chats 100000] [--members 10000] [--rounds 15]

The times include the local stack's moto server, which answers DynamoDB requests far slower than
DynamoDB does (docs/benchmarks.md, "Transactions at a realistic size"): read them as an upper
bound and as ratios between pages."""

from __future__ import annotations

import argparse
import http.cookiejar
import re
import statistics
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.common import bench_account, pct, start_stack, stop_stack  # noqa: E402
from tsunagu_local.client import request  # noqa: E402


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


class Browser:
    """Cookies kept as a browser keeps them; redirects not followed (the bench times one answer)."""

    def __init__(self, base: str):
        self.base = base
        self.opener = urllib.request.build_opener(
            urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()), _NoRedirect()
        )

    def fetch(self, path: str, form: dict[str, str] | None = None) -> tuple[int, bytes, float]:
        data = urlencode(form).encode() if form is not None else None
        req = urllib.request.Request(self.base + path, data=data)
        if data is not None:
            req.add_header("content-type", "application/x-www-form-urlencoded")
            req.add_header("origin", self.base)
        t = time.perf_counter()
        try:
            with self.opener.open(req, timeout=120) as r:
                body, status = r.read(), r.status
        except urllib.error.HTTPError as e:
            body, status = e.read(), e.code
        return status, body, (time.perf_counter() - t) * 1000


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--friends", type=int, default=10_000)
    ap.add_argument("--chats", type=int, default=100_000)
    ap.add_argument("--members", type=int, default=10_000)
    ap.add_argument("--rounds", type=int, default=15)
    a = ap.parse_args()
    proc, ports = start_stack()
    try:
        run(a, ports)
    finally:
        stop_stack(proc)


def run(a: argparse.Namespace, ports: Any) -> None:
    from tsunagu_local import seed
    from tsunagu_local.console_demo import demo_staff

    acct = bench_account(ports)
    api, aid, auth = acct.api, acct.account_id, acct.auth
    t0 = time.perf_counter()
    seed.run(acct.seeder(), a.friends, a.chats, a.members, say=lambda _: None)
    users = [seed.friend_user_id(aid, i) for i in range(a.friends)]
    request("PUT", f"{api}/accounts/{aid}/tags/vip", None, headers=auth)
    tagged = users[::10]
    for i in range(0, len(tagged), 500):
        request(
            "POST", f"{api}/accounts/{aid}/friend-tags", {"user_ids": tagged[i : i + 500], "add": ["vip"]}, headers=auth
        )
    print(
        f"seeded {a.friends:,} friends, {a.chats:,} chat lines, {a.members:,} members "
        f"({len(tagged):,} tagged) in {time.perf_counter() - t0:.0f} s"
    )

    _, email, password = demo_staff(api, aid, auth)
    b = Browser(api)
    status, html, _ = b.fetch(f"/console/{aid}/login")
    csrf = re.search(rb'name="csrf" value="([^"]+)"', html).group(1).decode()  # type: ignore[union-attr]
    status, _, _ = b.fetch(f"/console/{aid}/login", {"csrf": csrf, "email": email, "password": password})
    assert status == 303, status
    chatty = users[0]  # the seeder spreads the chat lines over the friends
    pages = {
        "(baseline) GET /health": "/health",
        "(baseline) login page": f"/console/{aid}/login",
        "ダッシュボード": f"/console/{aid}/dashboard",
        "友だち": f"/console/{aid}/friends",
        "友だち: tag filter": f"/console/{aid}/friends?tag=vip",
        "友だち: link filter": f"/console/{aid}/friends?link=unlinked",
        "友だちの詳細 (chat)": f"/console/{aid}/friends/{chatty}",
        "会員": f"/console/{aid}/members",
        "クーポン": f"/console/{aid}/coupons",
        "通知メッセージ": f"/console/{aid}/notifications",
        "ヘルプデスク": f"/console/{aid}/helpdesk",
        "請求": f"/console/{aid}/billing",
        "設定": f"/console/{aid}/settings",
    }
    times: dict[str, list[float]] = {k: [] for k in pages}
    weight: dict[str, int] = {}
    anon = Browser(api)  # the login page without a session
    for _ in range(a.rounds):
        for name, path in pages.items():
            status, body, ms = (anon if "login" in name else b).fetch(path)
            assert status == 200, (name, status, body[:300])
            times[name].append(ms)
            weight[name] = len(body)
    assets = sorted(set(re.findall(rb'(?:src|href)="(/console/assets/[^"]+)"', body)))
    asset_bytes = sum(len(b.fetch(p.decode())[1]) for p in assets)
    floor = statistics.median(times["(baseline) GET /health"])
    print(f"\n{'page':<26} {'median ms':>10} {'p95 ms':>8} {'× /health':>10} {'HTML KB':>8}")
    for name in pages:
        xs = times[name]
        med = statistics.median(xs)
        print(f"{name:<26} {med:>10.1f} {pct(xs, 95):>8.1f} {med / floor:>10.1f} {weight[name] / 1024:>8.1f}")
    slowest = max((n for n in pages if not n.startswith("(")), key=lambda n: pct(times[n], 95))
    print(f"\nslowest page (p95): {slowest}, {pct(times[slowest], 95):.0f} ms")
    print(f"assets on every page (versioned, cached a year): {len(assets)} files, {asset_bytes / 1024:.1f} KB")


if __name__ == "__main__":
    main()
