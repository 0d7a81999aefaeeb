"""The shell of every member-facing page (link page, coupon page, refusals): one style sheet,
phone-sized, in Japanese. Capabilities render their own bodies into it."""

from __future__ import annotations

from html import escape

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


def page_shell(title: str, body: str) -> str:
    return (
        f'<!doctype html><html lang="ja"><head><meta charset="utf-8">'
        f'<meta name="viewport" content="width=device-width,initial-scale=1">'
        f"<title>{escape(title)}</title><style>{STYLE}</style></head><body><main>{body}</main></body></html>"
    )


def message_page(title: str, message: str, code: str | None = None) -> str:
    data = f' data-code="{escape(code)}"' if code else ""
    return page_shell(title, f'<h1>{escape(title)}</h1><div class="error" role="alert"{data}>{escape(message)}</div>')
