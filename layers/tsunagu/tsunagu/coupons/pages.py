"""The member's coupon page (R-CPN-6), Japanese and phone-sized: the coupon, its rules
(R-CPN-3/4/5) and the redemption code as a QR code and a 16-digit number, which a small inline
script replaces with the next code every rotation (the page polls ``/coupon/{id}/code``).

The QR code is drawn here as SVG from ``qrcode``'s module matrix (pure Python, ~10 ms to import;
no image library): the payload is ``TSNG1:`` + 16 digits, alphanumeric mode, version 2."""

from __future__ import annotations

import json
from html import escape
from typing import Any

from tsunagu.pages import STYLE

QUIET_ZONE = 4  # modules of white border scanners need

COUPON_STYLE = """
.coupon{text-align:center}.discount{font-size:34px;font-weight:bold;color:#c8102e;margin:4px 0}
.qr{width:240px;height:240px;margin:12px auto;background:#fff}.qr svg{width:100%;height:100%}
.number{font-family:ui-monospace,'Menlo','Consolas',monospace;font-size:24px;letter-spacing:1px;margin:8px 0}
.timer{font-size:14px;color:#555}.timer b{font-size:18px;color:#06c755}
"""

SCRIPT = """
(function(){
  var cfg = JSON.parse(document.getElementById('cfg').textContent);
  var left = cfg.rotates_in, busy = false;
  function $(id){ return document.getElementById(id); }
  function refused(code, message){
    var box = $('code');
    box.setAttribute('data-state', 'refused');
    box.innerHTML = '';
    var div = document.createElement('div');
    div.className = 'error'; div.setAttribute('role', 'alert'); div.setAttribute('data-code', code);
    div.textContent = message;
    box.appendChild(div);
  }
  function next(){
    busy = true;
    fetch(cfg.code_url, {credentials: 'same-origin', cache: 'no-store'}).then(function(r){
      return r.json().then(function(d){ return [r.status, d]; });
    }).then(function(x){
      busy = false;
      var d = x[1];
      var again = 'もう一度LINEでクーポンを開いてください。';
      if (x[0] !== 200) { refused((d.error || {}).code || 'error', again); return; }
      if (d.refusal) { refused(d.refusal, d.message); return; }
      $('qr').innerHTML = d.qr_svg;
      $('number').textContent = d.display;
      $('number').setAttribute('data-code', d.code);
      left = d.rotates_in;
      $('left').textContent = left;
    }).catch(function(){ busy = false; left = 3; });
  }
  setInterval(function(){
    if (busy || $('code').getAttribute('data-state') !== 'ok') return;
    left -= 1;
    if (left <= 0) { next(); } else { $('left').textContent = left; }
  }, 1000);
})();
"""


def qr_svg(payload: str) -> str:
    """An SVG QR code of ``payload`` (error correction M), one path, crisp at any size."""
    from qrcode import constants  # type: ignore[import-untyped]
    from qrcode.main import QRCode  # type: ignore[import-untyped]

    qr = QRCode(border=0, error_correction=constants.ERROR_CORRECT_M)
    qr.add_data(payload)
    qr.make(fit=True)
    matrix = qr.get_matrix()
    size = len(matrix) + 2 * QUIET_ZONE
    path = "".join(
        f"M{x + QUIET_ZONE} {y + QUIET_ZONE}h1v1h-1z"
        for y, row in enumerate(matrix)
        for x, dark in enumerate(row)
        if dark
    )
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {size} {size}" shape-rendering="crispEdges" '
        f'role="img" aria-label="QR"><rect width="{size}" height="{size}" fill="#fff"/>'
        f'<path d="{path}" fill="#000"/></svg>'
    )


def _doc(title: str, body: str, script_nonce: str | None = None, script: str = "") -> str:
    tail = f'<script nonce="{escape(script_nonce)}">{script}</script>' if script_nonce and script else ""
    return (
        '<!doctype html><html lang="ja"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width,initial-scale=1">'
        f"<title>{escape(title)}</title><style>{STYLE}{COUPON_STYLE}</style></head>"
        f"<body><main>{body}</main>{tail}</body></html>"
    )


def coupon_page(view: dict[str, Any], code_url: str, script_nonce: str) -> str:
    """The page for one coupon and one logged-in member: the code, or why it cannot be used."""
    rules = "1点のみ割引"
    if view.get("excludes_marked_down"):
        rules += "・値引きシール商品は対象外"
    rules += "・お一人様1回限り"
    parts = [
        f"<h1>{escape(view['title'])}</h1>",
        '<section class="coupon">',
        f'<div class="discount">{escape(view["discount"])}</div>',
        f'<p class="note">{escape(view["valid_until"])} まで有効 / {rules}</p>',
    ]
    if view.get("refusal"):
        parts.append(
            f'<div id="code" data-state="refused"><div class="error" role="alert" '
            f'data-code="{escape(view["refusal"])}">{escape(view["message"])}</div></div>'
        )
    else:
        parts.append(
            '<div id="code" data-state="ok">'
            f'<div class="qr" id="qr">{qr_svg(view["qr_payload"])}</div>'
            f'<div class="number" id="number" data-code="{escape(view["code"])}">{escape(view["display"])}</div>'
            f'<div class="timer"><b id="left">{int(view["rotates_in"])}</b> 秒後に新しいコードに変わります</div>'
            "</div>"
        )
    parts.append(
        '</section><p class="note">レジでこの画面をお見せください。コードは30秒ごとに変わるため、'
        "スクリーンショットや転送された画像ではご利用いただけません。</p>"
    )
    # JSON in a script element: '<' escaped so no value can close the element.
    cfg = json.dumps({"code_url": code_url, "rotates_in": int(view.get("rotates_in") or 0)}).replace("<", "\\u003c")
    parts.append(f'<script type="application/json" id="cfg">{cfg}</script>')
    return _doc(view["title"], "".join(parts), script_nonce, SCRIPT)
