"""The member-facing link page (Japanese, phone-sized). Every value is HTML-escaped; the
page explains that linking can be undone (LINE's guideline) and that private browsing breaks
the flow (R-LINK-8)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from html import escape
from typing import TYPE_CHECKING

from tsunagu.pages import page_shell

if TYPE_CHECKING:
    from tsunagu.linking.service import LinkPage

JST = timezone(timedelta(hours=9))

FIELDS = {
    "member": [
        ("member_number", "組合員番号", "text", "例: 1234567", "off"),
        ("phone", "電話番号", "tel", "例: 09012345678", "tel"),
        ("birth_date", "生年月日(8ケタ)", "text", "例: 19710401", "bday"),
    ],
    "contractor": [
        ("login_id", "My-Page ログインID", "text", "", "username"),
        ("password", "パスワード", "password", "", "current-password"),
    ],
    "user": [("usage_code", "利用コード(16ケタ)", "text", "例: 1234567890123456", "off")],
}
TITLES = {
    "member": "組合員番号で連携",
    "contractor": "契約者連携",
    "user": "利用者連携(利用コード)",
    "otp": "メールアドレスと電話で確認して連携",
}
# One-time codes (R-LINK-14): the step the session is at decides the fields.
OTP_STEPS = {
    "": (
        "send_email",
        [("email", "ご登録のメールアドレス", "email", "例: taro@example.jp", "email")],
        "確認コードを送る",
    ),
    "email_sent": ("verify_email", [("code", "メールの確認コード(6ケタ)", "text", "", "one-time-code")], "確認する"),
    "phone_sent": (
        "verify_phone",
        [("code", "お電話でお知らせした確認コード(5ケタ)", "text", "", "one-time-code")],
        "連携する",
    ),
}


def link_form(
    page: LinkPage,
    error: tuple[str, str] | None = None,
    values: dict[str, str] | None = None,
    notice: str | None = None,
) -> str:
    """The page for one link session: a form per accepted way of linking (one-time codes: the
    step the session is at), with an error or a notice above them."""
    account_id, session_id, csrf, kinds = page.account_id, page.session_id, page.csrf, page.kinds
    expires_at, otp_stage = page.expires_at, page.otp_stage
    until = datetime.fromtimestamp(expires_at, UTC).astimezone(JST).strftime("%H:%M")
    parts = ["<h1>LINEアカウント連携</h1>"]
    if error:
        parts.append(f'<div class="error" role="alert" data-code="{escape(error[0])}">{escape(error[1])}</div>')
    if notice:
        parts.append(f'<div class="notice" role="status">{escape(notice)}</div>')
    parts.append(
        f'<p class="note">この画面は {until} まで有効です(開いてから10分)。'
        "連携はあとからいつでも、メニューの「連携解除」で解除できます。"
        "ブラウザのシークレット(プライベート)モードでは連携できません。</p>"
    )
    for kind in kinds:
        inputs = []
        action, button = "", "連携する"
        fields = FIELDS.get(kind, [])
        if kind == "otp":
            action, fields, button = OTP_STEPS.get(otp_stage, OTP_STEPS[""])
        for name, label, typ, placeholder, auto in fields:
            keep = escape((values or {}).get(name, "")) if typ != "password" and name != "birth_date" else ""
            mode = ' inputmode="numeric"' if name in ("phone", "birth_date", "usage_code", "code") else ""
            keep = "" if name == "code" else keep
            inputs.append(
                f'<label for="{kind}-{name}">{label}</label>'
                f'<input id="{kind}-{name}" name="{name}" type="{typ}" placeholder="{escape(placeholder)}" '
                f'autocomplete="{auto}" value="{keep}"{mode} required>'
            )
        parts.append(
            f'<section><h2>{TITLES[kind]}</h2><form method="post" action="/link/{escape(account_id)}">'
            f'<input type="hidden" name="s" value="{escape(session_id)}">'
            f'<input type="hidden" name="csrf" value="{escape(csrf)}">'
            f'<input type="hidden" name="kind" value="{kind}">'
            + (f'<input type="hidden" name="action" value="{action}">' if action else "")
            + f'{"".join(inputs)}<button type="submit">{button}</button></form></section>'
        )
    return page_shell("LINEアカウント連携", "".join(parts))
