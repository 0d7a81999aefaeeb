"""A small LINE Messaging API client on the standard library (the LINE SDK costs ~1.7 s of
imports; see docs/benchmarks.md). Its base URL is a setting: the local stack points it at the
LINE sandbox."""

from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request
from datetime import date
from typing import Any

from tsunagu.errors import LineApiError, LineRateLimited, LineRefused

__all__ = ["LineApiError", "LineClient", "LineRateLimited", "LineRefused"]


def retry_after_seconds(value: str | None) -> int | None:
    """``Retry-After`` as whole seconds (the delay form; an HTTP date or junk gives None)."""
    if value is None or not value.strip().isdigit() or len(value.strip()) > 6:
        return None
    return int(value.strip())


def _http_error(e: urllib.error.HTTPError, refusals: bool = True) -> LineApiError | LineRefused:
    """LINE's error answer as tsunagu's error: 429 -> ``LineRateLimited`` (nothing accepted,
    retry after ``Retry-After``); another 4xx -> ``LineRefused`` (final) when ``refusals``; the
    rest -> ``LineApiError`` (may succeed on retry)."""
    detail = e.read().decode(errors="replace")[:300]
    if e.code == 429:  # over the rate limit (or the month's limit)
        return LineRateLimited(detail, retry_after_seconds(e.headers.get("Retry-After")))
    if refusals and 400 <= e.code < 500:
        return LineRefused(e.code, detail)
    return LineApiError(e.code, detail)


class LineClient:
    def __init__(self, base_url: str, timeout: float = 5.0):
        if not base_url.startswith(("https://", "http://")):
            raise ValueError("LINE API base URL must be http(s)")
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout

    def _post(self, path: str, token: str, body: dict[str, Any], headers: dict[str, str] | None = None) -> Any:
        return self._request("POST", path, token, body, headers)[0]

    def _request(
        self, method: str, path: str, token: str, body: dict[str, Any], headers: dict[str, str] | None = None
    ) -> tuple[Any, dict[str, str]]:
        """LINE's JSON answer and its response headers (``x-line-request-id``)."""
        req = urllib.request.Request(  # noqa: S310 - scheme checked in __init__
            self.base_url + path,
            data=json.dumps(body, ensure_ascii=False).encode(),
            method=method,
            headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json", **(headers or {})},
        )
        try:
            with urllib.request.urlopen(req, timeout=self.timeout) as r:  # noqa: S310 - scheme checked in __init__
                raw = r.read()
                got = {k.lower(): v for k, v in r.headers.items()}
        except urllib.error.HTTPError as e:
            raise _http_error(e) from None
        except (urllib.error.URLError, TimeoutError) as e:
            raise LineApiError(0, str(e)) from None
        return (json.loads(raw) if raw else {}), got

    def reply(self, access_token: str, reply_token: str, texts: list[str]) -> list[str]:
        """Send a reply; returns the ids LINE gave the sent messages."""
        messages = [{"type": "text", "text": t} for t in texts[:5]]
        r = self._post("/v2/bot/message/reply", access_token, {"replyToken": reply_token, "messages": messages})
        return [str(m.get("id")) for m in (r or {}).get("sentMessages", []) if m.get("id")]

    def reply_messages(self, access_token: str, reply_token: str, messages: list[dict[str, Any]]) -> list[str]:
        """A reply with message objects (Flex, templates, quick replies); 1-5 messages."""
        r = self._post("/v2/bot/message/reply", access_token, {"replyToken": reply_token, "messages": messages[:5]})
        return [str(m.get("id")) for m in (r or {}).get("sentMessages", []) if m.get("id")]

    def issue_link_token(self, access_token: str, user_id: str) -> str:
        """LINE's account-link token for ``user_id`` (valid 10 minutes, single use)."""
        r = self._post(f"/v2/bot/user/{user_id}/linkToken", access_token, {})
        return str(r["linkToken"])

    def push(self, access_token: str, to: str, messages: list[dict[str, Any]], retry_key: str) -> str:
        """A push to one user with ``X-Line-Retry-Key`` (see ``send``)."""
        return self.send(access_token, "push", {"to": to, "messages": messages}, retry_key)

    def pnp_push(self, access_token: str, to_hash: str, body: dict[str, Any], delivery_tag: str) -> None:
        """A LINE notification message to one hashed phone number: flexible (``messages``) or
        LINE's premade template (``templateKey``). No retry key exists for these."""
        path = "/v2/bot/message/pnp/templated/push" if "templateKey" in body else "/bot/pnp/push"
        self._post(path, access_token, {"to": to_hash, **body}, {"X-Line-Delivery-Tag": delivery_tag})

    def send(self, access_token: str, kind: str, body: dict[str, Any], retry_key: str) -> str:
        """push / multicast / broadcast / narrowcast with ``X-Line-Retry-Key``; a 409 means LINE
        accepted this key before (nothing is sent twice). Returns "sent" or "accepted-before"."""
        try:
            self._post(f"/v2/bot/message/{kind}", access_token, body, {"X-Line-Retry-Key": retry_key})
        except LineRefused as e:
            if e.http_status == 409:
                return "accepted-before"
            raise
        return "sent"

    def create_audience(self, access_token: str, description: str, user_ids: list[str]) -> int:
        """An audience for uploading user ids (``POST /v2/bot/audienceGroup/upload``, <= 10,000)."""
        body = {"description": description[:120], "audiences": [{"id": u} for u in user_ids]}
        return int(self._post("/v2/bot/audienceGroup/upload", access_token, body)["audienceGroupId"])

    def add_to_audience(self, access_token: str, group_id: int, user_ids: list[str]) -> None:
        """More user ids for an uploaded audience (``PUT /v2/bot/audienceGroup/upload``, <= 10,000)."""
        body = {"audienceGroupId": group_id, "audiences": [{"id": u} for u in user_ids]}
        self._request("PUT", "/v2/bot/audienceGroup/upload", access_token, body)

    def narrowcast(self, access_token: str, body: dict[str, Any], retry_key: str) -> str | None:
        """A narrowcast (202, delivered later); its request id for the progress endpoint, or None
        when LINE accepted this retry key before (409)."""
        try:
            _, headers = self._request(
                "POST", "/v2/bot/message/narrowcast", access_token, body, {"X-Line-Retry-Key": retry_key}
            )
        except LineRefused as e:
            if e.http_status == 409:
                return None
            raise
        return headers.get("x-line-request-id")

    def narrowcast_progress(self, access_token: str, request_id: str) -> dict[str, Any]:
        q = urllib.parse.urlencode({"requestId": request_id})
        return dict(self._get(f"/v2/bot/message/progress/narrowcast?{q}", access_token))

    def quota_consumption(self, access_token: str) -> int:
        """Billable messages LINE counted this month (``GET /v2/bot/message/quota/consumption``)."""
        return int(self._get("/v2/bot/message/quota/consumption", access_token)["totalUsage"])

    def unit_insight(self, access_token: str, unit: str, first: date, last: date) -> dict[str, Any]:
        """LINE's per-unit statistics (``GET /v2/bot/insight/message/event/aggregation``) of
        messages sent with ``customAggregationUnits: [unit]``, JST dates ``first``..``last``
        (at most 30 days apart). LINE answers null for fewer than 20 users; kept as None."""
        q = urllib.parse.urlencode(
            {"customAggregationUnit": unit, "from": first.strftime("%Y%m%d"), "to": last.strftime("%Y%m%d")}
        )
        return dict(self._get(f"/v2/bot/insight/message/event/aggregation?{q}", access_token))

    def _get(self, path: str, token: str) -> Any:
        req = urllib.request.Request(  # noqa: S310 - scheme checked in __init__
            self.base_url + path, method="GET", headers={"Authorization": f"Bearer {token}"}
        )
        try:
            with urllib.request.urlopen(req, timeout=self.timeout) as r:  # noqa: S310 - scheme checked in __init__
                return json.loads(r.read() or b"{}")
        except urllib.error.HTTPError as e:
            raise _http_error(e, refusals=False) from None
        except (urllib.error.URLError, TimeoutError) as e:
            raise LineApiError(0, str(e)) from None
