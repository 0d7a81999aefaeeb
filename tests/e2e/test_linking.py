"""Member linking end to end on the local stack: the OA menu, the link page, LINE's dialog
(played by the sandbox), the accountLink webhook, and the rules (R-LINK-1 ... R-LINK-14)."""

from __future__ import annotations

import json
import os
import re
import threading
import time
from typing import Any

import pytest

from tests.e2e.conftest import OPERATOR_KEY, RunningStack
from tsunagu.errors import UpstreamError
from tsunagu.linking.domain import new_nonce
from tsunagu.linking.store import DynamoLinkStore
from tsunagu_local import linkflow
from tsunagu_local.client import request

pytestmark = pytest.mark.e2e
MEMBER = {"member_number": "1234567", "phone": "090-1234-5678", "birth_date": "19710401"}


def new_user() -> str:
    return "U" + os.urandom(16).hex()


@pytest.fixture
def coop(local_stack: RunningStack) -> dict[str, Any]:
    api, sb = local_stack.api, local_stack.sandbox
    r = request(
        "POST",
        f"{api}/accounts",
        {
            "name": "コープ",
            "link_policy": {"accepted": [["member_number_phone_birthdate"], ["login_id_password"], ["usage_code"]]},
        },
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
    members = [
        MEMBER,
        {"member_number": "2345678", "phone": "09011112222"},  # no birth date on file
        {
            "member_number": "N0123456789",
            "login_id": "taro",
            "password": "correct horse",
            "lines": [{"line_id": "L1", "usage_code": "1111222233334444", "monthly_base_fee": 3000}],
        },
    ]
    r = request("POST", f"{api}/accounts/{aid}/members", {"members": members}, headers=auth)
    assert r.json["imported"] == 3, r.text
    return {"id": aid, "auth": auth, "channel": ch, "stack": local_stack}


def say(oa: dict[str, Any], user: str, text: str) -> None:
    linkflow.say(oa["stack"].sandbox, oa["channel"]["channelId"], user, text, oa["stack"].drain)


def replies(oa: dict[str, Any]) -> list[str]:
    return linkflow.reply_texts(oa["stack"].sandbox)


def open_page(oa: dict[str, Any], user: str) -> dict[str, str]:
    return linkflow.open_link_page(oa["stack"].sandbox, oa["channel"]["channelId"], user, oa["stack"].drain)


def submit(oa: dict[str, Any], page: dict[str, str], kind: str, cookie: str | None = "same", **fields: str):
    return linkflow.submit_link_form(oa["stack"].api, oa["id"], page, kind, cookie, **fields)


code_of = linkflow.error_code


def through_dialog(oa: dict[str, Any], location: str) -> None:
    r = request("GET", location)
    assert r.status == 200, r.text
    oa["stack"].drain()


def member_links(oa: dict[str, Any], mn: str) -> list[dict[str, Any]]:
    return request("GET", f"{oa['stack'].api}/accounts/{oa['id']}/members/{mn}", headers=oa["auth"]).json["links"]


def test_coop_member_links_end_to_end_and_a_second_line_account_is_refused(coop):
    user = new_user()
    page = open_page(coop, user)
    r = submit(coop, page, "member", member_number="1234567", phone="０９０-１２３４-５６７８", birth_date="19710401")
    assert r.status == 302, r.text
    assert "/dialog/bot/accountLink?linkToken=" in r.headers["location"]
    nonce = re.search(r"nonce=([^&]+)", r.headers["location"]).group(1)
    assert len(nonce) >= 22  # >= 128 bits, base64url
    through_dialog(coop, r.headers["location"])
    assert [lk["user_id"] for lk in member_links(coop, "1234567")] == [user]
    assert any(t.startswith("連携が完了しました") for t in replies(coop))  # R-LINK-14
    # R-LINK-3: the same member from another LINE account
    other = new_user()
    page2 = open_page(coop, other)
    r = submit(coop, page2, "member", **{k: v for k, v in MEMBER.items()})
    assert (r.status, code_of(r)) == (422, "member_already_linked")
    assert "すでに別のLINEアカウント" in r.text
    # The member's own LINE account again: told it is already linked, not that someone else is.
    r = submit(coop, open_page(coop, user), "member", **MEMBER)
    assert (r.status, code_of(r)) == (422, "already_linked")
    assert "このLINEアカウントと連携済み" in r.text
    segs = request("GET", f"{coop['stack'].api}/accounts/{coop['id']}/segments/linked", headers=coop["auth"]).json
    assert user in segs["linked"] and other not in segs["linked"]  # R-LINK-7


@pytest.mark.parametrize(
    ("fields", "code"),
    [
        ({"phone": "080-0000-0000"}, "phone_mismatch"),
        ({"birth_date": "1971-04-01"}, "birth_date_format"),
        ({"birth_date": "19710402"}, "birth_date_mismatch"),
        ({"member_number": "9999999"}, "member_not_found"),
        ({"member_number": "2345678", "phone": "09011112222"}, "birth_date_not_registered"),
        # issue 15: a number padded past 40 characters, circled digits (NFKC would read them)
        ({"phone": "090-1234-5678" + " " * 40}, "phone_format"),
        ({"phone": "⓪⑨⓪-①②③④-⑤⑥⑦⑧"}, "phone_format"),
        ({"member_number": "①②③④⑤⑥⑦"}, "member_number_format"),
    ],
)
def test_wrong_factors_are_refused_in_japanese_with_a_stable_code(coop, fields, code):
    page = open_page(coop, new_user())
    r = submit(coop, page, "member", **{**MEMBER, **fields})
    assert (r.status, code_of(r)) == (422, code)
    assert member_links(coop, "1234567") == []


def test_missing_csrf_cookie_and_expired_session_are_refused(coop):
    page = open_page(coop, new_user())
    assert submit(coop, page, "member", cookie=None, **MEMBER).status == 403
    table = next(t for t in coop["stack"].client("dynamodb").list_tables()["TableNames"] if t.endswith("-Table"))
    coop["stack"].client("dynamodb").update_item(
        TableName=table,
        Key={"PK": {"S": f"ACCOUNT#{coop['id']}"}, "SK": {"S": f"LINKSESSION#{page['s']}"}},
        UpdateExpression="SET expires_at = :past",
        ExpressionAttributeValues={":past": {"N": str(int(time.time()) - 1)}},
    )
    r = submit(coop, page, "member", **MEMBER)
    assert (r.status, code_of(r)) == (410, "session_expired")  # R-LINK-4


def test_brute_force_birth_dates_lock_the_member_out_and_link_nothing(coop):
    codes = []
    for i in range(7):
        page = open_page(coop, new_user())  # a new LINE user each time: the member's own limit holds
        codes.append(code_of(submit(coop, page, "member", **{**MEMBER, "birth_date": f"1971040{i + 2}"})))
    assert codes[:5] == ["birth_date_mismatch"] * 5 and codes[5:] == ["locked_out"] * 2
    page = open_page(coop, new_user())
    r = submit(coop, page, "member", **MEMBER)  # even the right answer, while locked out
    assert (r.status, code_of(r)) == (429, "locked_out")
    assert member_links(coop, "1234567") == []


def test_parallel_wrong_guesses_cannot_beat_the_lockout(coop):
    """Each attempt takes its slot with an atomic ADD before anything is verified: 12 wrong birth
    dates at once from 12 LINE users still get at most 5 answers (R-LINK lockout, 5 per member)."""
    from concurrent.futures import ThreadPoolExecutor

    pages = [open_page(coop, new_user()) for _ in range(12)]

    def guess(i: int) -> str:
        return code_of(submit(coop, pages[i], "member", **{**MEMBER, "birth_date": f"19700{i % 9 + 1}01"}))

    with ThreadPoolExecutor(12) as pool:
        codes = list(pool.map(guess, range(12)))
    assert codes.count("birth_date_mismatch") <= 5 and codes.count("locked_out") >= 7, codes
    assert set(codes) <= {"birth_date_mismatch", "locked_out"}


def test_replayed_nonce_failed_result_and_redelivery_link_nothing_more(coop):
    user = new_user()
    page = open_page(coop, user)
    loc = submit(coop, page, "member", **MEMBER).headers["location"]
    nonce = re.search(r"nonce=([^&]+)", loc).group(1)
    sb, ch = coop["stack"].sandbox, coop["channel"]["channelId"]
    failed = request("GET", loc + "&result=failed")  # LINE could not verify the user
    assert failed.status == 200
    coop["stack"].drain()
    assert member_links(coop, "1234567") == []
    # A forged / replayed accountLink with the nonce for another user links nothing either.
    request(
        "POST",
        f"{sb}/_sandbox/channels/{ch}/webhooks",
        {
            "events": [
                {
                    "type": "accountLink",
                    "source": {"type": "user", "userId": new_user()},
                    "link": {"result": "ok", "nonce": nonce},
                }
            ]
        },
    )
    coop["stack"].drain()
    assert member_links(coop, "1234567") == []
    # The genuine event, then its redelivery: one link.
    ev = {
        "type": "accountLink",
        "source": {"type": "user", "userId": user},
        "link": {"result": "ok", "nonce": nonce},
        "webhookEventId": "01HLINKREDELIVERY" + user[-9:].upper(),
    }
    request("POST", f"{sb}/_sandbox/channels/{ch}/webhooks", {"events": [ev]})
    request("POST", f"{sb}/_sandbox/channels/{ch}/webhooks", {"events": [ev], "redelivery": True})
    coop["stack"].drain()
    assert [lk["user_id"] for lk in member_links(coop, "1234567")] == [user]
    audit = request("GET", f"{coop['stack'].api}/accounts/{coop['id']}/link-audit", headers=coop["auth"]).json
    assert [e["action"] for e in audit["entries"]].count("link") == 1


def test_contractor_then_user_link_and_one_usage_code_per_line_account(coop):
    user = new_user()
    page = open_page(coop, user)
    r = submit(coop, page, "user", usage_code="1111-2222-3333-4444")
    assert code_of(r) == "contractor_link_required"  # R-LINK-10
    r = submit(coop, page, "contractor", login_id="taro", password="wrong password")
    assert code_of(r) == "login_failed"
    r = submit(coop, page, "contractor", login_id="taro", password="correct horse")
    assert r.status == 302
    through_dialog(coop, r.headers["location"])
    page = open_page(coop, user)
    r = submit(coop, page, "user", usage_code="1111222233334444")
    assert r.status == 302, r.text
    through_dialog(coop, r.headers["location"])
    targets = sorted(lk["target"] for lk in member_links(coop, "N0123456789"))
    assert targets == ["CONTRACTOR#N0123456789", "LINE#N0123456789#L1"]
    # Self-service unlink from the OA menu releases the user link, not the contractor link (R-LINK-13).
    say(coop, user, "連携解除")
    assert [lk["target"] for lk in member_links(coop, "N0123456789")] == ["CONTRACTOR#N0123456789"]
    # Staff release the contractor link with a reason (R-LINK-6).
    r = request(
        "POST",
        f"{coop['stack'].api}/accounts/{coop['id']}/members/N0123456789/unlink",
        {"kind": "contractor", "reason": "本人確認済み: 機種変更"},
        headers=coop["auth"],
    )
    assert r.status == 200, r.text
    assert member_links(coop, "N0123456789") == []
    audit = request("GET", f"{coop['stack'].api}/accounts/{coop['id']}/link-audit", headers=coop["auth"]).json
    assert audit["entries"][0]["actor"] == "staff" and audit["entries"][0]["reason"] == "本人確認済み: 機種変更"


def race(store: DynamoLinkStore, account_id: str, member_number: str, racers: int = 20) -> list[str | None]:
    """``racers`` LINE users, each with a valid nonce for the same member, link at once."""
    target = f"MEMBER#{member_number}"
    users = [new_user() for _ in range(racers)]
    nonces = [new_nonce() for _ in users]
    for u, n in zip(users, nonces, strict=True):
        store.put_nonce(account_id, n, u, target, member_number, int(time.time()) + 600)
    results: list[str | None] = []
    conflicts: list[tuple[str, str]] = []
    barrier = threading.Barrier(racers)

    def go(u: str, n: str) -> None:
        barrier.wait()
        try:
            results.append(store.link(account_id, n, u, target, member_number, None))
        except UpstreamError:  # a transaction conflict: retried, as the worker's SQS record would be
            conflicts.append((u, n))

    threads = [threading.Thread(target=go, args=(u, n)) for u, n in zip(users, nonces, strict=True)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for u, n in conflicts:  # the retry decides them against the winner
        results.append(store.link(account_id, n, u, target, member_number, None))
    return results


def test_twenty_racing_links_for_one_member_have_exactly_one_winner(coop):
    ddb = coop["stack"].client("dynamodb")
    table = next(t for t in ddb.list_tables()["TableNames"] if t.endswith("-Table"))

    class Store(DynamoLinkStore):
        @property
        def db(self):  # the stack's moto server: real conditional writes over HTTP
            return ddb

    store = Store(table)
    for trial in range(5):
        member_number = "1234567" if trial == 0 else f"88{trial:05d}"
        results = race(store, coop["id"], member_number)
        assert len(results) == 20
        assert results.count(None) == 1, (trial, results)
        assert set(results) - {None} == {"member_already_linked"}
    assert len(member_links(coop, "1234567")) == 1


def test_no_raw_factor_at_rest_or_in_logs(coop):
    user = new_user()
    page = open_page(coop, user)
    submit(coop, page, "member", **MEMBER)
    ddb = coop["stack"].client("dynamodb")
    dump = "".join(json.dumps(ddb.scan(TableName=t)["Items"]) for t in ddb.list_tables()["TableNames"])
    logs = coop["stack"].logs()
    for raw in (
        "09012345678",
        "090-1234-5678",
        "19710401",
        "correct horse",
        "1111222233334444",
        "taro",
        "hanako@example.jp",
    ):
        assert raw not in dump, raw
        assert raw not in logs, raw


def test_cli_imports_a_large_csv_in_batches_and_reports_bad_lines(coop, tmp_path):
    import subprocess
    import sys

    # Kept small (moto slows down as a table grows); --batch 500 still makes three requests.
    lines = ["member_number,phone,birth_date"] + [f"{5000000 + i},090{i:08d},19800101" for i in range(1200)]
    lines[1001] = "5001000,not-a-phone,19800101"  # CSV line 1002
    f = tmp_path / "register.csv"
    f.write_bytes(("\r\n".join(lines) + "\r\n").encode("cp932"))
    key = coop["auth"]["Authorization"][7:]
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "tsunagu_local.cli",
            "members-import",
            str(f),
            "--api",
            coop["stack"].api,
            "--account",
            coop["id"],
            "--key",
            key,
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert out.returncode == 1, out.stderr
    report = json.loads(out.stdout)
    assert (report["imported"], report["rejected"]) == (1199, 1)
    assert report["errors"][0]["csv_line"] == 1002 and report["errors"][0]["code"] == "phone_format"
    assert "1200/1200" in out.stderr  # the progress bar reached the end


def otp_codes(oa: dict[str, Any], channel: str) -> list[str]:
    sent = request("GET", f"{oa['stack'].sandbox}/_sandbox/otp").json["sent"]
    return [o["code"] for o in sent if o["account_id"] == oa["id"] and o["channel"] == channel]


def test_isp_customer_links_with_an_email_code_then_a_phone_code(coop):
    api = coop["stack"].api
    r = request(
        "PATCH",
        f"{api}/accounts/{coop['id']}",
        {"link_policy": {"accepted": [["email_otp", "phone_otp"]]}},
        headers=coop["auth"],
    )
    assert r.status == 200, r.text
    request(
        "POST",
        f"{api}/accounts/{coop['id']}/members",
        {"members": [{"member_number": "N9876543210", "email": "Hanako@Example.jp"}]},
        headers=coop["auth"],
    )
    user = new_user()
    page = open_page(coop, user)
    r = submit(coop, page, "otp", action="send_email", email="hanako@example.jp")
    assert r.status == 200 and 'name="action" value="verify_email"' in r.text
    email_code = otp_codes(coop, "email")[-1]
    assert re.fullmatch(r"\d{6}", email_code)
    wrong = "000000" if email_code != "000000" else "111111"
    r = submit(coop, page, "otp", action="verify_email", code=wrong)
    assert (r.status, code_of(r)) == (422, "otp_invalid")
    r = submit(coop, page, "otp", action="verify_email", code=email_code)
    assert r.status == 200 and 'name="action" value="verify_phone"' in r.text
    phone = request("GET", f"{coop['stack'].sandbox}/_sandbox/otp").json["sent"][-1]
    assert phone["destination"] == {"member_number": "N9876543210"}  # the business's system dials the number
    assert re.fullmatch(r"\d{5}", phone["code"])
    r = submit(coop, page, "otp", action="verify_email", code=email_code)  # a used code, out of order
    assert code_of(r) in ("csrf", "otp_invalid")
    r = submit(coop, page, "otp", action="verify_phone", code=phone["code"])
    assert r.status == 302, r.text
    through_dialog(coop, r.headers["location"])
    assert [lk["user_id"] for lk in member_links(coop, "N9876543210")] == [user]


def test_an_unregistered_email_gets_the_same_answer_and_no_code(coop):
    request(
        "PATCH",
        f"{coop['stack'].api}/accounts/{coop['id']}",
        {"link_policy": {"accepted": [["email_otp", "phone_otp"]]}},
        headers=coop["auth"],
    )
    before = len(otp_codes(coop, "email"))
    page = open_page(coop, new_user())
    r = submit(coop, page, "otp", action="send_email", email="nobody@example.jp")
    assert r.status == 200 and 'name="action" value="verify_email"' in r.text  # nothing revealed
    assert len(otp_codes(coop, "email")) == before  # and nothing sent
    r = submit(coop, page, "otp", action="verify_email", code="123456")
    assert code_of(r) == "otp_invalid"
