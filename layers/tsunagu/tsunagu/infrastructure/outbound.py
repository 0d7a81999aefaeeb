"""HTTP relay for webhook forwarding (standard library: no extra cold-start cost)."""

from __future__ import annotations

import json
import socket
import urllib.error
import urllib.request


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    """A 3xx is the answer, never followed: the SSRF guard checked only the first URL's host."""

    def redirect_request(self, req, fp, code, msg, headers, newurl):  # type: ignore[no-untyped-def]
        return None


_OPENER = urllib.request.build_opener(_NoRedirects)


class UrllibRelay:
    def __init__(self, timeout: float = 5.0):
        self.timeout = timeout

    def post(self, url: str, body: bytes, signature: str) -> int:
        req = urllib.request.Request(  # noqa: S310 - scheme and address checked by the service
            url,
            data=body,
            method="POST",
            headers={
                "Content-Type": "application/json; charset=utf-8",
                "X-Line-Signature": signature,
                "User-Agent": "tsunagu-webhook-forwarder/1",
            },
        )
        try:
            with _OPENER.open(req, timeout=self.timeout) as r:
                return int(r.status)
        except urllib.error.HTTPError as e:
            return int(e.code)
        except (urllib.error.URLError, TimeoutError, OSError):
            return 0


def resolve(host: str) -> list[str]:
    try:
        return sorted({str(info[4][0]) for info in socket.getaddrinfo(host, None)})
    except OSError:
        return []


class HttpOtpSender:
    """Hands a one-time code to the business's own delivery system (mail, SMS, voice call),
    which knows the member's contact details - tsunagu keeps no raw phone number. The local
    stack points it at the LINE sandbox, which records the codes for the demo and tests."""

    def __init__(self, url: str, timeout: float = 5.0):
        self.url = url
        self.timeout = timeout

    def send(self, account_id: str, channel: str, destination: dict[str, str], code: str) -> bool:
        if not self.url.startswith(("https://", "http://")):
            return False
        body = json.dumps(
            {"account_id": account_id, "channel": channel, "destination": destination, "code": code}
        ).encode()
        req = urllib.request.Request(  # noqa: S310 - http(s) checked above
            self.url,
            data=body,
            method="POST",
            headers={"Content-Type": "application/json"},
        )
        try:
            with _OPENER.open(req, timeout=self.timeout) as r:
                return 200 <= int(r.status) < 300
        except (urllib.error.URLError, TimeoutError, OSError):
            return False
