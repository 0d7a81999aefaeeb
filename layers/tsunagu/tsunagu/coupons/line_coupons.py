"""LINE for coupons: the coupon API (line-platform.md 6: create, close) to mirror a definition so
it can be sent as a LINE coupon message, and LINE Login's token endpoint, where the coupon page
exchanges the authorization code for the member's ID token (R-CPN-6). Standard library only."""

from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

from tsunagu.infrastructure.line_api import LineApiError, LineClient, LineRefused


class LineCouponApi(LineClient):
    def create_coupon(self, access_token: str, body: dict[str, Any]) -> str:
        """``POST /v2/bot/coupon``; returns LINE's couponId."""
        return str(self._post("/v2/bot/coupon", access_token, body)["couponId"])

    def login_token(self, code: str, redirect_uri: str, channel_id: str, channel_secret: str) -> str:
        """``POST /oauth2/v2.1/token`` (authorization code grant): the ID token of the member who
        logged in. The access token LINE also returns is not kept."""
        form = urllib.parse.urlencode(
            {
                "grant_type": "authorization_code",
                "code": code,
                "redirect_uri": redirect_uri,
                "client_id": channel_id,
                "client_secret": channel_secret,
            }
        ).encode()
        req = urllib.request.Request(  # noqa: S310 - scheme checked in __init__
            self.base_url + "/oauth2/v2.1/token",
            data=form,
            method="POST",
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        )
        try:
            with urllib.request.urlopen(req, timeout=self.timeout) as r:  # noqa: S310 - scheme checked in __init__
                doc = json.loads(r.read() or b"{}")
        except urllib.error.HTTPError as e:
            # The body may echo the request; keep only the status and LINE's error code.
            try:
                err = str(json.loads(e.read() or b"{}").get("error", ""))[:50]
            except ValueError:
                err = ""
            if 400 <= e.code < 500:
                raise LineRefused(e.code, err or "token request refused") from None
            raise LineApiError(e.code, err) from None
        except (urllib.error.URLError, TimeoutError) as e:
            raise LineApiError(0, str(e)) from None
        token = doc.get("id_token")
        if not isinstance(token, str):
            raise LineApiError(200, "no id_token in LINE Login's answer (was scope=openid asked for?)")
        return token

    def login_certs(self) -> tuple[dict[str, Any], str | None]:
        """``GET /oauth2/v2.1/certs``: LINE Login's public keys (JWKS) for ES256 ID tokens (LIFF),
        with the ``Cache-Control`` header that says how long they may be kept."""
        req = urllib.request.Request(self.base_url + "/oauth2/v2.1/certs", method="GET")  # noqa: S310 - scheme checked in __init__
        try:
            with urllib.request.urlopen(req, timeout=self.timeout) as r:  # noqa: S310 - scheme checked in __init__
                doc = json.loads(r.read() or b"{}")
                cache_control = r.headers.get("Cache-Control")
        except urllib.error.HTTPError as e:
            raise LineApiError(e.code, "JWKS request refused") from None
        except (urllib.error.URLError, TimeoutError, ValueError) as e:
            raise LineApiError(0, str(e)) from None
        if not isinstance(doc, dict) or not isinstance(doc.get("keys"), list):
            raise LineApiError(200, "LINE's JWKS has no keys")
        return doc, cache_control
