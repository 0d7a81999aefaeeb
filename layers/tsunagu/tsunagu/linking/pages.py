"""The member-facing link page (Japanese, phone-sized). Every value is HTML-escaped; the
page explains that linking can be undone (LINE's guideline) and that private browsing breaks
the flow (R-LINK-8)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from html import escape
from typing import TYPE_CHECKING

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

STYLE = """
body{font-family:-apple-system,'Hiragino Sans','Noto Sans JP',sans-serif;margin:0;background:#f5f5f5;color:#222}
main{max-width:480px;margin:0 auto;padding:16px}
h1{font-size:20px;margin:8px 0 12px}h2{font-size:17px;margin:0 0 8px}
section{background:#fff;border-radius:12px;padding:16px;margin:12px 0;box-shadow:0 1px 3px rgba(0,0,0,.08)}
label{display:block;font-size:14px;margin:12px 0 4px}
input{width:100%;box-sizing:border-box;font-size:18px;padding:12px;border:1px solid #bbb;border-radius:8px}
button{width:100%;margin-top:16px;padding:14px;font-size:18px;font-weight:bold;color:#fff;background:#06c755;
border:0;border-radius:8px}
.note{font-size:13px;color:#555;line-height:1.6}.notice{background:#e8f7ee;color:#05612b;border-radius:8px;
padding:12px;font-size:15px;line-height:1.6}.error{background:#fdecea;color:#b00020;border-radius:8px;padding:12px;
font-size:15px;line-height:1.6}
"""


def _page(title: str, body: str) -> str:
    return (
        f'<!doctype html><html lang="ja"><head><meta charset="utf-8">'
        f'<meta name="viewport" content="width=device-width,initial-scale=1">'
        f"<title>{escape(title)}</title><style>{STYLE}</style></head><body><main>{body}</main></body></html>"
    )


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
    return _page("LINEアカウント連携", "".join(parts))


def message_page(title: str, message: str, code: str | None = None) -> str:
    data = f' data-code="{escape(code)}"' if code else ""
    return _page(title, f'<h1>{escape(title)}</h1><div class="error" role="alert"{data}>{escape(message)}</div>')
