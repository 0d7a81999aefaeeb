"""The LINE sandbox: a stand-in for LINE's servers on localhost.

It answers the Messaging API calls tsunagu makes (reply, push, multicast, notification
message push, link token, quota) the way LINE does - status codes, error messages, the
``x-line-request-id`` header, ``409`` with ``x-line-accepted-request-id`` on a repeated retry
key - records every call, and sends signed webhooks to tsunagu like the LINE Platform.

Control API (not LINE's): ``/_sandbox/...``
- ``POST /_sandbox/channels`` -> a new channel {channelId, channelSecret, accessToken, botUserId};
  body may set ``webhookUrl``.
- ``PUT /_sandbox/channels/{channelId}`` {webhookUrl}
- ``POST /_sandbox/channels/{channelId}/webhooks`` {events:[...], redelivery?, signature?} - fills in
  webhookEventId, timestamp, mode, deliveryContext and a fresh replyToken where missing, signs,
  posts, and returns {status, body, events}.
- ``GET /_sandbox/calls?path=/v2/bot/message/reply`` and ``DELETE /_sandbox/calls``.
- ``POST /_sandbox/otp`` (tsunagu's one-time-code sender locally) and ``GET`` to read the codes.
- ``GET /dialog/bot/accountLink?linkToken=&nonce=[&result=failed]`` - LINE's account-link dialog:
  sends the ``accountLink`` webhook for a valid link token.
- ``PUT /_sandbox/pnp`` {reachable?: [sha256...], undelivered?: [sha256...], fail_next?: N} - which
  hashed numbers have a LINE user (others get 422); which of those accept the message but never see
  it (blocked, no consent: no ``delivery`` event, as on LINE); the next N push / notification calls
  fail with 500. Every other accepted notification message gets its ``delivery`` webhook event
  (``delivery.data`` = the ``X-Line-Delivery-Tag``) shortly after the call.
- ``POST /_sandbox/sinks/{name}`` - a downstream webhook receiver (another LINE tool) that records
  body and signature; ``PUT`` {fail: N} makes its next N deliveries fail with 503; ``GET`` lists.
- ``/_sandbox/mypage/{name}`` - a company's My Page as a sample verifier of tsunagu's login
  tickets: ``PUT`` {apiBase, accountId, apiKey}; ``GET ?ticket=…`` redeems it server to server
  and logs the member in (or answers 401 with tsunagu's code); ``GET …/sessions`` lists logins.
- LINE Login: ``POST /_sandbox/login-channels`` {userId?, tokenSeconds?} -> {channelId, channelSecret};
  ``PUT /_sandbox/login-channels/{channelId}`` {userId, tokenSeconds?} sets who is logged in to LINE
  (the in-app browser's single sign-on). ``GET /oauth2/v2.1/authorize`` redirects straight back
  with a one-time ``code`` (or ``error=access_denied`` when no user is set); ``POST
  /oauth2/v2.1/token`` exchanges it (client secret, redirect_uri checked) for an HS256 ID token
  signed with the channel secret (``iss``, ``sub``, ``aud``, ``exp``, ``nonce``).
- LIFF (ES256 ID tokens): ``GET /oauth2/v2.1/certs`` serves LINE Login's JWK Set with
  ``Cache-Control: max-age``; ``POST /_sandbox/liff/id-token`` {channelId, userId?, expSeconds?,
  nonce?} -> {idToken, kid} (what ``liff.getIDToken()`` gives, signed with the current key);
  ``POST /_sandbox/liff/rotate`` {dropOld?} makes a new current key; ``PUT /_sandbox/liff``
  {maxAge}; ``GET /_sandbox/liff`` -> {kids, certsFetches, maxAge}.
- ``PUT /_sandbox/insight`` {impression?, click?, media?} - the rates (0-1) of the users sent to
  under a customAggregationUnit that the per-unit insight endpoint reports (null below 20).
- ``PUT /_sandbox/rate-limits`` {path, limit?, windowSeconds?, next?, retryAfter?} - LINE's rate
  limit for one API path: more than ``limit`` calls in ``windowSeconds`` (default 1), or the next
  ``next`` calls, answer ``429`` "The API rate limit has been exceeded. Try again later." with
  ``Retry-After: retryAfter`` (default 1). ``DELETE`` lifts every limit; ``GET`` lists them.
- Request bodies are checked against LINE's own models (the ``line-bot-sdk`` package's, generated
  from LINE's OpenAPI documents): a missing field, an unknown message type (``{"type":"bogus"}``)
  or a malformed object answers ``400`` "The request body has N error(s)" with ``details``, and is
  recorded but has no effect. Narrowcast and the audience uploads answer ``202`` with
  ``X-Line-Request-Id``, as LINE does; ``GET /v2/bot/message/progress/narrowcast`` reports them.
- Every LINE call is recorded with its ``authorization``, ``content-type`` and ``x-line-*``
  headers (``GET /_sandbox/calls``).
- LINE's coupon API (line-platform.md 6): ``POST /v2/bot/coupon`` (required fields checked),
  ``GET /v2/bot/coupon``, ``GET /v2/bot/coupon/{couponId}``, ``PUT /v2/bot/coupon/{couponId}/close``.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import secrets
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

ULID_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
REPLY_TOKEN_TTL_S = 60
RETRY_KEY_TTL_S = 24 * 3600
UUID_RE = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$", re.I)


def ulid() -> str:
    ms = int(time.time() * 1000)
    head = "".join(ULID_ALPHABET[(ms >> (5 * i)) & 31] for i in reversed(range(10)))
    return head + "".join(secrets.choice(ULID_ALPHABET) for _ in range(16))


def sign(secret: str, body: bytes) -> str:
    return base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha256).digest()).decode()


@dataclass
class Channel:
    channel_id: str
    secret: str
    token: str
    bot_user_id: str
    webhook_url: str | None = None


@dataclass
class LoginChannel:
    channel_id: str
    secret: str
    user_id: str | None = None  # who is logged in to LINE on this "phone"
    token_seconds: int = 3600


@dataclass
class RateLimit:
    limit: int | None = None  # calls per window; None: only ``next`` applies
    window_s: float = 1.0
    next: int = 0  # the next N calls are refused whatever the count
    retry_after: int = 1
    hits: list[float] = field(default_factory=list)

    def refuse(self, now: float) -> bool:
        if self.next > 0:
            self.next -= 1
            return True
        self.hits = [t for t in self.hits if now - t < self.window_s]
        if self.limit is not None and len(self.hits) >= self.limit:
            return True
        self.hits.append(now)
        return False


# LINE's request models (line-bot-sdk, generated from LINE's OpenAPI documents) by API path.
_MODELS = {
    ("POST", "/v2/bot/message/reply"): ("messaging", "ReplyMessageRequest"),
    ("POST", "/v2/bot/message/push"): ("messaging", "PushMessageRequest"),
    ("POST", "/v2/bot/message/multicast"): ("messaging", "MulticastRequest"),
    ("POST", "/v2/bot/message/broadcast"): ("messaging", "BroadcastRequest"),
    ("POST", "/v2/bot/message/narrowcast"): ("messaging", "NarrowcastRequest"),
    ("POST", "/bot/pnp/push"): ("messaging", "PnpMessagesRequest"),
    ("POST", "/v2/bot/message/pnp/templated/push"): ("messaging", "PnpTemplatedMessageRequest"),
    ("POST", "/v2/bot/audienceGroup/upload"): ("audience", "CreateAudienceGroupRequest"),
    ("PUT", "/v2/bot/audienceGroup/upload"): ("audience", "AddAudienceToAudienceGroupRequest"),
    ("POST", "/v2/bot/audienceGroup/click"): ("audience", "CreateClickBasedAudienceGroupRequest"),
    ("POST", "/v2/bot/audienceGroup/imp"): ("audience", "CreateImpBasedAudienceGroupRequest"),
}


def line_model_problems(method: str, path: str, doc: Any) -> list[dict[str, str]] | None:
    """What LINE's model for this call says is wrong with ``doc`` (None: no model for it)."""
    import importlib

    entry = _MODELS.get((method, path))
    if entry is None:
        return None
    model = getattr(importlib.import_module(f"linebot.v3.{entry[0]}"), entry[1])
    if not isinstance(doc, dict):
        return [{"message": "The request body must be a JSON object", "property": ""}]
    try:
        model.from_dict(doc)
    except ValueError as e:  # pydantic's ValidationError, or the SDK's unknown discriminator
        errors = getattr(e, "errors", None)
        if callable(errors):
            return [
                {"message": str(err.get("msg", "")), "property": ".".join(str(x) for x in err.get("loc", ()))}
                for err in errors()
            ]
        text = str(e)
        prop = "messages[].type" if "discriminator" in text else ""
        return [{"message": text.split(". Discriminator", 1)[0][:200], "property": prop}]
    return []


@dataclass
class SandboxState:
    channels: dict[str, Channel] = field(default_factory=dict)
    reply_tokens: dict[str, tuple[str, float]] = field(default_factory=dict)  # token -> (channel, issued)
    used_reply_tokens: set[str] = field(default_factory=set)
    retry_keys: dict[tuple[str, str], tuple[str, float, dict[str, Any]]] = field(default_factory=dict)
    calls: list[dict[str, Any]] = field(default_factory=list)
    pnp_reachable: set[str] | None = None  # None: every well-formed hash is reachable
    pnp_undelivered: set[str] = field(default_factory=set)  # accepted (200) but never delivered
    fail_next: int = 0  # the next N push / notification-message calls answer 500
    link_tokens: dict[str, tuple[str, str, float]] = field(default_factory=dict)  # token -> channel, user, issued
    used_link_tokens: set[str] = field(default_factory=set)
    sinks: dict[str, list[dict[str, Any]]] = field(default_factory=dict)  # stand-ins for other LINE tools
    sink_failures: dict[str, int] = field(default_factory=dict)
    otps: list[dict[str, Any]] = field(default_factory=list)  # one-time codes "delivered" by mail / voice
    consumption: dict[str, int] = field(default_factory=dict)
    login_channels: dict[str, LoginChannel] = field(default_factory=dict)
    login_codes: dict[str, tuple[str, str, str, str, float]] = field(
        default_factory=dict
    )  # code -> ch, user, uri, nonce
    coupons: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)  # channel -> couponId -> coupon
    rate_limits: dict[str, RateLimit] = field(default_factory=dict)  # API path -> its limit
    narrowcasts: dict[str, dict[str, Any]] = field(default_factory=dict)  # request id -> progress
    audiences: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)  # channel -> id -> group
    # customAggregationUnit -> users sent to (multicast / push / narrowcast carrying the unit), per
    # channel; the insight endpoint answers statistics from it at the configured rates.
    unit_recipients: dict[tuple[str, str], int] = field(default_factory=dict)
    insight_rates: dict[str, float] = field(default_factory=lambda: {"impression": 0.6, "click": 0.2, "media": 0.0})
    mypages: dict[str, dict[str, Any]] = field(default_factory=dict)  # a company's My Page: config, sessions
    liff_keys: list[Any] = field(default_factory=list)  # LINE Login's ES256 keys (joserfc ECKey), newest last
    liff_max_age: int = 3600  # Cache-Control max-age of GET /oauth2/v2.1/certs
    certs_fetches: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def channel_by_token(self, token: str) -> Channel | None:
        return next((c for c in self.channels.values() if c.token == token), None)


def _err(status: int, message: str, extra: dict[str, Any] | None = None) -> tuple[int, dict[str, Any], dict[str, str]]:
    return status, {"message": message, **(extra or {})}, {}


def _load_line_models() -> None:
    import linebot.v3.audience
    import linebot.v3.messaging  # noqa: F401 - seconds to import: done once, off the request path


class LineSandbox:
    def __init__(self) -> None:
        self.state = SandboxState()
        # LINE's models take seconds to import: load them while the rest of the stack starts.
        self._models_loaded = threading.Thread(target=_load_line_models, daemon=True)
        self._models_loaded.start()

    # ------------------------------------------------------------------ LINE Messaging API
    def api(
        self,
        method: str,
        path: str,
        headers: dict[str, str],
        body: bytes,
        query: dict[str, list[str]] | None = None,
    ) -> tuple[int, dict[str, Any], dict[str, str]]:
        auth = headers.get("authorization", "")
        ch = self.state.channel_by_token(auth[7:]) if auth.lower().startswith("bearer ") else None
        if ch is None:
            return _err(
                401, "Authentication failed. Confirm that the access token in the authorization header is valid."
            )
        limited = self._rate_limited(path)
        if limited:
            return limited
        try:
            doc = json.loads(body) if body else {}
        except ValueError:
            return _err(400, "The request body has 1 error(s)", {"details": [{"message": "invalid JSON"}]})
        problems = line_model_problems(method, path, doc)
        if problems:
            return _err(400, f"The request body has {len(problems)} error(s)", {"details": problems})
        if path.startswith("/v2/bot/audienceGroup/"):
            return self._audience(ch, method, path, doc)
        if method == "GET" and path == "/v2/bot/insight/message/event/aggregation":
            return self._unit_insight(ch, query or {})
        if method == "GET" and path == "/v2/bot/message/progress/narrowcast":
            return _err(400, "requestId is required")  # answered with the query in serve()
        if method == "POST" and path == "/v2/bot/message/reply":
            return self._reply(ch, doc, headers)
        if method == "POST" and path in (
            "/v2/bot/message/push",
            "/v2/bot/message/multicast",
            "/v2/bot/message/broadcast",
            "/v2/bot/message/narrowcast",
        ):
            return self._send(ch, path.rsplit("/", 1)[1], doc, headers)
        if method == "POST" and path in ("/bot/pnp/push", "/v2/bot/message/pnp/templated/push"):
            return self._pnp(ch, path, doc, headers)
        m = re.fullmatch(r"/v2/bot/user/(U[0-9a-f]{32})/linkToken", path)
        if method == "POST" and m:
            token = secrets.token_urlsafe(24)
            with self.state.lock:
                self.state.link_tokens[token] = (ch.channel_id, m.group(1), time.time())
            return 200, {"linkToken": token}, {}
        if path.startswith("/v2/bot/coupon"):
            return self._coupon(ch, method, path, doc)
        if method == "GET" and path == "/v2/bot/message/quota":
            return 200, {"type": "limited", "value": 200}, {}
        if method == "GET" and path == "/v2/bot/message/quota/consumption":
            return 200, {"totalUsage": self.state.consumption.get(ch.channel_id, 0)}, {}
        return _err(404, "Not found")

    def _rate_limited(self, path: str) -> tuple[int, dict[str, Any], dict[str, str]] | None:
        with self.state.lock:
            rule = self.state.rate_limits.get(path)
            if rule is None or not rule.refuse(time.monotonic()):
                return None
            retry_after = rule.retry_after
        return (
            429,
            {"message": "The API rate limit has been exceeded. Try again later."},
            {"retry-after": str(retry_after)},
        )

    def narrowcast_progress(self, request_id: str) -> tuple[int, dict[str, Any]]:
        with self.state.lock:
            progress = self.state.narrowcasts.get(request_id)
        if progress is None:
            return 404, {"message": "Not found"}
        return 200, progress

    # ------------------------------------------------------------------ LINE's insight API
    def _unit_insight(self, ch: Channel, query: dict[str, list[str]]) -> tuple[int, dict[str, Any], dict[str, str]]:
        """``getStatisticsPerUnit`` (insight.yml): the unit matches ^[a-zA-Z0-9_]{1,30}$, from/to are
        yyyyMMdd (UTC+9) at most 30 days apart; figures below 20 users are null, as LINE's are."""
        unit = (query.get("customAggregationUnit") or [""])[0]
        first, last = (query.get("from") or [""])[0], (query.get("to") or [""])[0]
        if not re.fullmatch(r"[a-zA-Z0-9_]{1,30}", unit):
            return _err(400, "customAggregationUnit: must match ^[a-zA-Z0-9_]{1,30}$")
        try:
            d0, d1 = (datetime.strptime(x, "%Y%m%d") for x in (first, last))
        except ValueError:
            return _err(400, "from and to: yyyyMMdd")
        if not timedelta(0) <= d1 - d0 <= timedelta(days=30):
            return _err(400, "The aggregation period exceeds the allowed maximum")
        with self.state.lock:
            users = self.state.unit_recipients.get((ch.channel_id, unit), 0)
            rates = dict(self.state.insight_rates)

        def figure(rate: float) -> int | None:
            n = round(users * rate)
            return n if n >= 20 else None

        overview = {
            "uniqueImpression": figure(rates["impression"]),
            "uniqueClick": figure(rates["click"]),
            "uniqueMediaPlayed": figure(rates["media"]),
            "uniqueMediaPlayed100Percent": figure(rates["media"] / 2),
        }
        return 200, {"overview": overview, "messages": [], "clicks": []}, {}

    # ------------------------------------------------------------------ LINE's audience API
    def _audience(
        self, ch: Channel, method: str, path: str, doc: dict[str, Any]
    ) -> tuple[int, dict[str, Any], dict[str, str]]:
        mine = self.state.audiences.setdefault(ch.channel_id, {})
        kind = path.rsplit("/", 1)[1]
        if kind == "upload" and len(doc.get("audiences") or []) > 10_000:  # manage-audience.yml maxItems
            return _err(400, "The request body has 1 error(s)", {"details": [{"message": "audiences: max 10000"}]})
        if method == "PUT" and kind == "upload":
            with self.state.lock:
                group = mine.get(str(doc.get("audienceGroupId")))
                if group is None:
                    return _err(400, "The audience group does not exist")
                group["audienceCount"] += len(doc.get("audiences") or [])
            return 202, {}, {}
        if method == "POST" and kind in ("upload", "click", "imp"):
            group_id = secrets.randbelow(10**13)
            now = int(time.time())
            group = {
                "audienceGroupId": group_id,
                "type": {"upload": "UPLOAD", "click": "CLICK", "imp": "IMP"}[kind],
                "description": doc.get("description"),
                "created": now,
                "permission": "READ_WRITE",
                "expireTimestamp": now + 180 * 86400,
                "isIfaAudience": bool(doc.get("isIfaAudience", False)),
                "createRoute": "MESSAGING_API",
                "audienceCount": len(doc.get("audiences") or []),
            }
            with self.state.lock:
                mine[str(group_id)] = group
            return 202, {k: v for k, v in group.items() if k != "audienceCount"}, {}
        return _err(404, "Not found")

    # ------------------------------------------------------------------ LINE's coupon API
    def _coupon(
        self, ch: Channel, method: str, path: str, doc: dict[str, Any]
    ) -> tuple[int, dict[str, Any], dict[str, str]]:
        mine = self.state.coupons.setdefault(ch.channel_id, {})
        parts = path.strip("/").split("/")[3:]  # after v2/bot/coupon
        if method == "POST" and not parts:
            missing = [
                k
                for k in (
                    "title",
                    "acquisitionCondition",
                    "maxUseCountPerTicket",
                    "startTimestamp",
                    "endTimestamp",
                    "timezone",
                    "reward",
                    "visibility",
                )
                if k not in doc
            ]
            problems = [f"{k}: required" for k in missing]
            if not problems:
                if not 1 <= len(str(doc["title"])) <= 60:
                    problems.append("title: 1-60 characters")
                if int(doc["endTimestamp"]) < max(int(doc["startTimestamp"]), int(time.time())):
                    problems.append("endTimestamp: must be after startTimestamp and not in the past")
                acq = doc["acquisitionCondition"]
                if acq.get("type") == "lottery" and not 1 <= int(acq.get("lotteryProbability", 0)) <= 99:
                    problems.append("acquisitionCondition.lotteryProbability: 1-99")
                price = (doc["reward"] or {}).get("priceInfo") or {}
                if price.get("type") == "percentage" and not 1 <= int(price.get("percentage", 0)) <= 99:
                    problems.append("reward.priceInfo.percentage: 1-99")
            if problems:
                return _err(400, "The request body has errors", {"details": [{"message": p} for p in problems]})
            coupon_id = ulid()
            now = int(time.time())
            status = "RUNNING"
            with self.state.lock:
                mine[coupon_id] = {
                    **doc,
                    "couponId": coupon_id,
                    "status": status,
                    "createdTimestamp": now,
                    "maxTicketPerUser": 1,
                }
            return 200, {"couponId": coupon_id}, {}
        if method == "GET" and not parts:
            items = [{"couponId": k, "title": v["title"]} for k, v in mine.items()]
            return 200, {"items": items}, {}
        if parts and parts[0] in mine:
            if method == "GET" and len(parts) == 1:
                return 200, mine[parts[0]], {}
            if method == "PUT" and parts[1:] == ["close"]:
                mine[parts[0]]["status"] = "CLOSED"
                return 200, {}, {}
        return _err(404, "Not found")

    # ------------------------------------------------------------------ LINE Login
    def new_login_channel(self, user_id: str | None = None, token_seconds: int = 3600) -> LoginChannel:
        ch = LoginChannel(str(1_600_000_000 + secrets.randbelow(10**8)), secrets.token_hex(16), user_id, token_seconds)
        self.state.login_channels[ch.channel_id] = ch
        return ch

    def authorize(self, query: dict[str, list[str]]) -> tuple[int, str, str | None]:
        """LINE Login's authorization endpoint, played as the LINE app's single sign-on: no
        consent screen, straight back to redirect_uri with a code (10 minutes, single use)."""
        q = {k: v[0] for k, v in query.items()}
        ch = self.state.login_channels.get(q.get("client_id", ""))
        uri = q.get("redirect_uri", "")
        if ch is None or q.get("response_type") != "code" or not uri.startswith(("http://", "https://")):
            return 400, "<p>invalid_request</p>", None
        sep = "&" if "?" in uri else "?"
        state = urllib.parse.quote(q.get("state", ""))
        if ch.user_id is None:
            return 302, "", f"{uri}{sep}error=access_denied&state={state}"
        code = secrets.token_urlsafe(16)
        with self.state.lock:
            self.state.login_codes[code] = (ch.channel_id, ch.user_id, uri, q.get("nonce", ""), time.time())
        return 302, "", f"{uri}{sep}code={code}&state={state}"

    def token(self, body: bytes) -> tuple[int, dict[str, Any]]:
        """LINE Login's token endpoint (authorization_code): an ID token signed HS256 with the
        channel secret, as LINE does for web login."""
        from tsunagu.coupons.domain import LINE_ISSUER, sign_id_token

        form = {k: v[0] for k, v in parse_qs(body.decode()).items()}
        with self.state.lock:
            issued = self.state.login_codes.pop(form.get("code", ""), None)
        ch = self.state.login_channels.get(form.get("client_id", ""))
        if ch is None or not hmac.compare_digest(ch.secret, form.get("client_secret", "")):
            return 401, {"error": "invalid_client"}
        if (
            issued is None
            or issued[0] != ch.channel_id
            or issued[2] != form.get("redirect_uri")
            or time.time() - issued[4] > 600
        ):
            return 400, {"error": "invalid_grant"}
        now = int(time.time())
        claims = {
            "iss": LINE_ISSUER,
            "sub": issued[1],
            "aud": ch.channel_id,
            "exp": now + ch.token_seconds,
            "iat": now,
            "amr": ["linesso"],
        }
        if issued[3]:
            claims["nonce"] = issued[3]
        return 200, {
            "access_token": secrets.token_urlsafe(32),
            "expires_in": 2592000,
            "id_token": sign_id_token(claims, ch.secret),
            "refresh_token": secrets.token_urlsafe(16),
            "scope": "openid",
            "token_type": "Bearer",
        }

    # ------------------------------------------------------------------ LIFF (ES256 ID tokens)
    def _liff_key(self, rotate: bool = False, drop_old: bool = False) -> Any:
        """The key LINE signs LIFF ID tokens with now (a new one on ``rotate``; the old ones stay
        published, as LINE keeps a retiring key in its JWKS, unless ``drop_old``)."""
        from joserfc.jwk import ECKey

        with self.state.lock:
            if rotate or not self.state.liff_keys:
                key = ECKey.generate_key(
                    "P-256", parameters={"kid": secrets.token_hex(16), "use": "sig", "alg": "ES256"}
                )
                self.state.liff_keys = [*([] if drop_old else self.state.liff_keys), key]
            return self.state.liff_keys[-1]

    def certs(self) -> tuple[int, dict[str, Any], dict[str, str]]:
        """``GET /oauth2/v2.1/certs``: LINE Login's public keys (JWK Set) for ES256 ID tokens."""
        self._liff_key()
        with self.state.lock:
            self.state.certs_fetches += 1
            keys = [k.as_dict(private=False) for k in self.state.liff_keys]
            age = self.state.liff_max_age
        return 200, {"keys": keys}, {"cache-control": f"max-age={age}"}

    def liff_id_token(self, doc: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        """What ``liff.getIDToken()`` returns in a LIFF app of a LINE Login channel: an ES256 JWT
        signed with LINE's current key (``iss``, ``sub``, ``aud`` = the channel ID, ``exp``,
        ``iat``, ``amr``; ``nonce`` when given)."""
        from joserfc import jwt

        from tsunagu.coupons.domain import LINE_ISSUER

        ch = self.state.login_channels.get(str(doc.get("channelId", "")))
        if ch is None:
            return 404, {"message": "no such LINE Login channel"}
        user = doc.get("userId") or ch.user_id
        if not user:
            return 400, {"message": "no LINE user is logged in"}
        now = int(time.time())
        claims: dict[str, Any] = {
            "iss": LINE_ISSUER,
            "sub": user,
            "aud": ch.channel_id,
            "exp": now + int(doc.get("expSeconds", ch.token_seconds)),
            "iat": now,
            "amr": ["linesso"],
        }
        if doc.get("nonce"):
            claims["nonce"] = str(doc["nonce"])
        key = self._liff_key()
        token = jwt.encode({"typ": "JWT", "alg": "ES256", "kid": key.kid}, claims, key)
        return 200, {"idToken": token, "kid": key.kid}

    def liff_control(self, method: str, parts: list[str], doc: dict[str, Any]) -> tuple[int, Any]:
        if parts == ["liff", "id-token"] and method == "POST":
            return self.liff_id_token(doc)
        if parts == ["liff", "rotate"] and method == "POST":
            return 200, {"kid": self._liff_key(rotate=True, drop_old=bool(doc.get("dropOld"))).kid}
        if parts == ["liff"] and method == "PUT":
            with self.state.lock:
                self.state.liff_max_age = int(doc.get("maxAge", self.state.liff_max_age))
        if parts == ["liff"]:
            self._liff_key()
            with self.state.lock:
                kids = [k.kid for k in self.state.liff_keys]
                return 200, {"kids": kids, "certsFetches": self.state.certs_fetches, "maxAge": self.state.liff_max_age}
        return 404, {"message": "unknown sandbox control"}

    def _messages_ok(self, doc: dict[str, Any]) -> str | None:
        msgs = doc.get("messages")
        if not isinstance(msgs, list) or not 1 <= len(msgs) <= 5:
            return "messages must hold 1 to 5 message objects"
        for mobj in msgs:
            if not isinstance(mobj, dict) or "type" not in mobj:
                return "each message needs a type"
            if mobj["type"] == "text" and not (1 <= len(str(mobj.get("text", ""))) <= 5000):
                return "text must be 1 to 5000 characters"
        return None

    def _reply(
        self, ch: Channel, doc: dict[str, Any], headers: dict[str, str]
    ) -> tuple[int, dict[str, Any], dict[str, str]]:
        if "x-line-retry-key" in headers:
            return _err(400, "The retry key is not supported for this API")
        problem = self._messages_ok(doc)
        if problem:
            return _err(400, "The request body has 1 error(s)", {"details": [{"message": problem}]})
        token = doc.get("replyToken", "")
        with self.state.lock:
            issued = self.state.reply_tokens.get(token)
            if (
                issued is None
                or issued[0] != ch.channel_id
                or token in self.state.used_reply_tokens
                or time.time() - issued[1] > REPLY_TOKEN_TTL_S
            ):
                return _err(400, "Invalid reply token")
            self.state.used_reply_tokens.add(token)
        return (
            200,
            {
                "sentMessages": [
                    {"id": str(secrets.randbelow(10**18)), "quoteToken": secrets.token_urlsafe(16)}
                    for _ in doc["messages"]
                ]
            },
            {},
        )

    def _injected_failure(self) -> tuple[int, dict[str, Any], dict[str, str]] | None:
        with self.state.lock:
            if self.state.fail_next > 0:
                self.state.fail_next -= 1
                return _err(500, "Internal server error (sandbox: told to fail)")
        return None

    def _send(
        self, ch: Channel, kind: str, doc: dict[str, Any], headers: dict[str, str]
    ) -> tuple[int, dict[str, Any], dict[str, str]]:
        failure = self._injected_failure()
        if failure:
            return failure
        problem = self._messages_ok(doc)
        if problem:
            return _err(400, "The request body has 1 error(s)", {"details": [{"message": problem}]})
        if kind == "multicast":
            to = doc.get("to")
            if not isinstance(to, list) or not 1 <= len(to) <= 500:
                return _err(400, "The request body has 1 error(s)", {"details": [{"message": "to: 1 to 500 user IDs"}]})
            recipients = len(to)
        elif kind == "push":
            if not isinstance(doc.get("to"), str):
                return _err(400, "The request body has 1 error(s)", {"details": [{"message": "to is required"}]})
            recipients = 1
        else:
            recipients = 0
        key = headers.get("x-line-retry-key")
        if key is not None and not UUID_RE.match(key):
            return _err(400, "The retry key must be a UUID")
        request_id = str(uuid.uuid4())
        sent = (
            {"sentMessages": [{"id": str(secrets.randbelow(10**18))} for _ in doc["messages"]]}
            if kind == "push"
            else {}
        )
        with self.state.lock:
            if key is not None:
                prev = self.state.retry_keys.get((ch.channel_id, key))
                if prev and time.time() - prev[1] < RETRY_KEY_TTL_S:
                    return (
                        409,
                        {"message": "The retry key is already accepted", **prev[2]},
                        {"x-line-accepted-request-id": prev[0]},
                    )
                self.state.retry_keys[(ch.channel_id, key)] = (request_id, time.time(), sent)
            self.state.consumption[ch.channel_id] = self.state.consumption.get(ch.channel_id, 0) + recipients
            for unit in doc.get("customAggregationUnits") or []:
                k = (ch.channel_id, str(unit))
                self.state.unit_recipients[k] = self.state.unit_recipients.get(k, 0) + recipients
            if kind == "narrowcast":
                recipient = doc.get("recipient") or {}
                if recipient.get("type") == "audience":
                    group = self.state.audiences.get(ch.channel_id, {}).get(str(recipient.get("audienceGroupId")))
                    if group is None:
                        return _err(400, "The audience group does not exist")
                    reach = int(group["audienceCount"])
                    limit = int((doc.get("limit") or {}).get("max") or reach)
                    for unit in doc.get("customAggregationUnits") or []:
                        k = (ch.channel_id, str(unit))
                        self.state.unit_recipients[k] = self.state.unit_recipients.get(k, 0) + min(reach, limit)
                self.state.narrowcasts[request_id] = {
                    "phase": "succeeded",
                    "successCount": int((doc.get("limit") or {}).get("max") or 0),
                    "failureCount": 0,
                    "targetCount": int((doc.get("limit") or {}).get("max") or 0),
                    "acceptedTime": datetime.now(UTC).isoformat(timespec="milliseconds"),
                    "completedTime": datetime.now(UTC).isoformat(timespec="milliseconds"),
                }
        # LINE accepts a narrowcast for later delivery: 202, its progress by the request id.
        return (202 if kind == "narrowcast" else 200), sent, {"x-line-request-id": request_id}

    def _pnp(
        self, ch: Channel, path: str, doc: dict[str, Any], headers: dict[str, str]
    ) -> tuple[int, dict[str, Any], dict[str, str]]:
        if "x-line-retry-key" in headers:
            return _err(400, "The retry key is not supported for this API")
        to = doc.get("to", "")
        if not isinstance(to, str) or not re.fullmatch(r"[0-9a-f]{64}", to):
            # LINE's reference (line-platform.md 4.2) names this answer: 400 with this message.
            # LINE's OpenAPI document (messaging-api.yml) lists only 200 and 422 for /bot/pnp/push;
            # it omits 400 rather than saying a bad hash is 422, so the reference is followed.
            return _err(400, "The value must be a valid SHA-256 digest.")
        tag = headers.get("x-line-delivery-tag")
        if tag is not None and not 16 <= len(tag) <= 100:
            return _err(400, "X-Line-Delivery-Tag must be 16 to 100 characters")
        if path == "/bot/pnp/push":
            problem = self._messages_ok(doc)
            if problem:
                return _err(400, "The request body has 1 error(s)", {"details": [{"message": problem}]})
        elif not doc.get("templateKey"):
            return _err(400, "templateKey is required")
        failure = self._injected_failure()
        if failure:
            return failure
        reachable = self.state.pnp_reachable
        if reachable is not None and to not in reachable:
            return _err(422, "Failed to send messages")
        if to not in self.state.pnp_undelivered and ch.webhook_url:
            # The user sees the message: LINE sends the delivery-completion event.
            ev = {"type": "delivery", "delivery": {"data": tag or to}}
            threading.Timer(0.05, self._deliver_quietly, args=(ch.channel_id, ev)).start()
        return (200 if path == "/bot/pnp/push" else 202), {}, {}

    def _deliver_quietly(self, channel_id: str, ev: dict[str, Any]) -> None:
        try:
            self.send_webhook(channel_id, {"events": [ev]})
        except OSError:
            pass  # tsunagu not listening (a test without the stack): LINE would retry later

    # ------------------------------------------------------------------ control + webhooks
    def new_channel(self, webhook_url: str | None = None) -> Channel:
        ch = Channel(
            channel_id=str(2_000_000_000 + secrets.randbelow(10**8)),
            secret=secrets.token_hex(16),
            token=base64.b64encode(secrets.token_bytes(96)).decode().replace("/", "_"),
            bot_user_id="U" + secrets.token_hex(16),
            webhook_url=webhook_url,
        )
        self.state.channels[ch.channel_id] = ch
        return ch

    def complete_event(self, ch: Channel, ev: dict[str, Any], redelivery: bool) -> dict[str, Any]:
        ev = dict(ev)
        ev.setdefault("timestamp", int(time.time() * 1000))
        ev.setdefault("mode", "active")
        ev.setdefault("webhookEventId", ulid())
        ev["deliveryContext"] = {"isRedelivery": redelivery}
        replyable = ev["type"] in (
            "message",
            "follow",
            "join",
            "memberJoined",
            "postback",
            "beacon",
            "videoPlayComplete",
            "membership",
        ) or (ev["type"] == "accountLink" and ev.get("link", {}).get("result") == "ok")
        if replyable and ev["mode"] == "active" and "replyToken" not in ev:
            ev["replyToken"] = secrets.token_hex(16)
        if "replyToken" in ev:
            with self.state.lock:
                self.state.reply_tokens.setdefault(ev["replyToken"], (ch.channel_id, time.time()))
        if ev["type"] == "message":
            msg = dict(ev.get("message", {}))
            msg.setdefault("id", str(secrets.randbelow(10**18)))
            msg.setdefault("quoteToken", secrets.token_urlsafe(16))
            ev["message"] = msg
        return ev

    def send_webhook(self, channel_id: str, doc: dict[str, Any]) -> dict[str, Any]:
        ch = self.state.channels[channel_id]
        if not ch.webhook_url:
            raise KeyError("webhookUrl")
        events = [self.complete_event(ch, e, bool(doc.get("redelivery"))) for e in doc.get("events", [])]
        body = json.dumps(
            {"destination": ch.bot_user_id, "events": events}, ensure_ascii=False, separators=(",", ":")
        ).encode()
        sig = doc.get("signature") or sign(ch.secret, body)
        req = urllib.request.Request(
            ch.webhook_url,
            data=body,
            method="POST",
            headers={
                "Content-Type": "application/json; charset=utf-8",
                "X-Line-Signature": sig,
                "User-Agent": "LineBotWebhook/2.0",
            },
        )
        try:
            with urllib.request.urlopen(req, timeout=2) as r:  # LINE's 2-second webhook timeout
                status, text = r.status, r.read().decode()
        except urllib.error.HTTPError as e:
            status, text = e.code, e.read().decode()
        return {"status": status, "body": text, "events": events}

    def sink(self, method: str, name: str, headers: dict[str, str], body: bytes) -> tuple[int, Any]:
        """A downstream webhook receiver (another LINE tool): records what it is sent and can
        be told to fail its next N deliveries with 503."""
        with self.state.lock:
            if method == "POST":
                if self.state.sink_failures.get(name, 0) > 0:
                    self.state.sink_failures[name] -= 1
                    return 503, {"message": "sink told to fail"}
                self.state.sinks.setdefault(name, []).append(
                    {"body": body.decode(errors="replace"), "signature": headers.get("x-line-signature")}
                )
                return 200, {"ok": True}
            if method == "PUT":
                self.state.sink_failures[name] = int(json.loads(body or b"{}").get("fail", 0))
                return 200, {"ok": True}
            return 200, {"received": list(self.state.sinks.get(name, []))}

    def mypage(
        self, method: str, name: str, rest: list[str], query: dict[str, list[str]], body: bytes
    ) -> tuple[int, Any]:
        """A sample verifier: the company's My Page, which redeems tsunagu's login ticket server to
        server with its API key (docs/lines.md) and starts its own session for the member.
        ``PUT /_sandbox/mypage/{name}`` {apiBase, accountId, apiKey}; ``GET /_sandbox/mypage/{name}
        ?ticket=…`` is the page the member opens from LINE; ``GET …/{name}/sessions`` lists logins."""
        with self.state.lock:
            site = self.state.mypages.setdefault(name, {"sessions": []})
            if method == "PUT":
                site.update(json.loads(body or b"{}"))
                return 200, {"ok": True}
            if rest == ["sessions"]:
                return 200, {"sessions": list(site["sessions"])}
            config = dict(site)
        ticket = (query.get("ticket") or [""])[0]
        req = urllib.request.Request(
            f"{config['apiBase']}/accounts/{config['accountId']}/mypage/tickets/redeem",
            data=json.dumps({"ticket": ticket}).encode(),
            method="POST",
            headers={"Authorization": f"Bearer {config['apiKey']}", "Content-Type": "application/json"},
        )
        try:
            with urllib.request.urlopen(req, timeout=5) as r:
                redeemed = json.loads(r.read())
        except urllib.error.HTTPError as e:
            error = json.loads(e.read() or b"{}").get("error", {})
            return 401, {"loggedIn": False, "status": e.code, "code": error.get("code")}
        session = {"memberNumber": redeemed["member_number"], "at": time.time()}
        with self.state.lock:
            site["sessions"].append(session)
        return 200, {"loggedIn": True, "memberNumber": redeemed["member_number"]}

    def dialog(self, query: dict[str, list[str]]) -> tuple[int, str]:
        """LINE's account-link dialog, played: a valid, unused link token (10 minutes) sends the
        ``accountLink`` webhook - ``ok`` with the nonce, or ``failed`` (no source, no reply token)
        when ``result=failed`` is asked for. An expired or used token sends nothing, as on LINE."""
        token = query.get("linkToken", [""])[0]
        nonce = query.get("nonce", [""])[0]
        with self.state.lock:
            issued = self.state.link_tokens.get(token)
            if issued is None or token in self.state.used_link_tokens or time.time() - issued[2] > 600:
                return 400, "<p>このリンクは無効です(期限切れまたは使用済み)。</p>"
            self.state.used_link_tokens.add(token)
        channel_id, user_id, _ = issued
        ev: dict[str, Any]
        if query.get("result", ["ok"])[0] == "failed":
            ev = {"type": "accountLink", "link": {"result": "failed", "nonce": nonce}}
        else:
            ev = {
                "type": "accountLink",
                "source": {"type": "user", "userId": user_id},
                "link": {"result": "ok", "nonce": nonce},
            }
        out = self.send_webhook(channel_id, {"events": [ev]})
        return 200, f"<p>LINE sandbox: accountLink sent (tsunagu answered {out['status']}).</p>"

    def control(
        self, method: str, path: str, query: dict[str, list[str]], body: bytes, headers: dict[str, str] | None = None
    ) -> tuple[int, Any]:
        parts = path.strip("/").split("/")[1:]
        if len(parts) == 2 and parts[0] == "sinks":
            return self.sink(method, parts[1], headers or {}, body)
        if len(parts) >= 2 and parts[0] == "mypage":
            return self.mypage(method, parts[1], parts[2:], query, body)
        if parts == ["otp"]:
            # The business's mail / SMS / voice-call system, recorded so the demo and tests can
            # read the codes a member would receive.
            with self.state.lock:
                if method == "POST":
                    self.state.otps.append(json.loads(body))
                    return 200, {"ok": True}
                return 200, {"sent": list(self.state.otps)}
        doc = json.loads(body) if body else {}
        if parts == ["channels"] and method == "POST":
            ch = self.new_channel(doc.get("webhookUrl"))
            return 201, {
                "channelId": ch.channel_id,
                "channelSecret": ch.secret,
                "accessToken": ch.token,
                "botUserId": ch.bot_user_id,
                "webhookUrl": ch.webhook_url,
            }
        if len(parts) == 2 and parts[0] == "channels" and method == "PUT":
            self.state.channels[parts[1]].webhook_url = doc["webhookUrl"]
            return 200, {"ok": True}
        if len(parts) == 3 and parts[0] == "channels" and parts[2] == "webhooks" and method == "POST":
            return 200, self.send_webhook(parts[1], doc)
        if parts and parts[0] == "liff":
            return self.liff_control(method, parts, doc)
        if parts == ["login-channels"] and method == "POST":
            lc = self.new_login_channel(doc.get("userId"), int(doc.get("tokenSeconds", 3600)))
            return 201, {"channelId": lc.channel_id, "channelSecret": lc.secret, "userId": lc.user_id}
        if len(parts) == 2 and parts[0] == "login-channels" and method == "PUT":
            lc = self.state.login_channels[parts[1]]
            lc.user_id = doc.get("userId")
            lc.token_seconds = int(doc.get("tokenSeconds", lc.token_seconds))
            return 200, {"ok": True}
        if parts == ["calls"] and method == "GET":
            want = query.get("path", [None])[0]
            with self.state.lock:
                calls = [c for c in self.state.calls if want is None or c["path"] == want]
            return 200, {"calls": calls}
        if parts == ["calls"] and method == "DELETE":
            with self.state.lock:
                self.state.calls.clear()
            return 200, {"ok": True}
        if parts == ["rate-limits"]:
            with self.state.lock:
                if method == "PUT":
                    self.state.rate_limits[doc["path"]] = RateLimit(
                        limit=int(doc["limit"]) if doc.get("limit") is not None else None,
                        window_s=float(doc.get("windowSeconds", 1)),
                        next=int(doc.get("next", 0)),
                        retry_after=int(doc.get("retryAfter", 1)),
                    )
                elif method == "DELETE":
                    self.state.rate_limits.clear()
                rules = {
                    p: {"limit": r.limit, "windowSeconds": r.window_s, "next": r.next, "retryAfter": r.retry_after}
                    for p, r in self.state.rate_limits.items()
                }
            return 200, {"rateLimits": rules}
        if parts == ["insight"] and method == "PUT":
            with self.state.lock:
                for k in ("impression", "click", "media"):
                    if k in doc:
                        self.state.insight_rates[k] = float(doc[k])
                return 200, {"rates": dict(self.state.insight_rates)}
        if parts == ["pnp"] and method == "PUT":
            with self.state.lock:
                if "reachable" in doc:
                    self.state.pnp_reachable = set(doc["reachable"])
                if "undelivered" in doc:
                    self.state.pnp_undelivered = set(doc["undelivered"])
                if "fail_next" in doc:
                    self.state.fail_next = int(doc["fail_next"])
            return 200, {"ok": True}
        return 404, {"message": "unknown sandbox control"}

    def serve(self, host: str, port: int) -> ThreadingHTTPServer:
        sb = self
        self._models_loaded.join()

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, fmt: str, *args: Any) -> None:
                return

            def _handle(self) -> None:
                url = urlsplit(self.path)
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                headers = {k.lower(): v for k, v in self.headers.items()}
                extra: dict[str, str] = {}
                if url.path == "/dialog/bot/accountLink":
                    status, html = sb.dialog(parse_qs(url.query))
                    out = html.encode()
                    self.send_response(status)
                    self.send_header("Content-Type", "text/html; charset=utf-8")
                    self.send_header("Content-Length", str(len(out)))
                    self.end_headers()
                    self.wfile.write(out)
                    return
                if url.path == "/oauth2/v2.1/authorize":
                    status, html, location = sb.authorize(parse_qs(url.query))
                    out = html.encode()
                    self.send_response(status)
                    if location:
                        self.send_header("Location", location)
                    self.send_header("Content-Type", "text/html; charset=utf-8")
                    self.send_header("Content-Length", str(len(out)))
                    self.end_headers()
                    self.wfile.write(out)
                    return
                try:
                    if url.path == "/oauth2/v2.1/token" and self.command == "POST":
                        status, payload = sb.token(body)
                    elif url.path == "/oauth2/v2.1/certs" and self.command == "GET":
                        status, payload, extra = sb.certs()
                    elif url.path.startswith("/_sandbox/"):
                        status, payload = sb.control(self.command, url.path, parse_qs(url.query), body, headers)
                    elif url.path == "/v2/bot/message/progress/narrowcast" and self.command == "GET":
                        status, payload = sb.narrowcast_progress(parse_qs(url.query).get("requestId", [""])[0])
                    else:
                        status, payload, extra = sb.api(self.command, url.path, headers, body, parse_qs(url.query))
                        extra.setdefault("x-line-request-id", str(uuid.uuid4()))
                        with sb.state.lock:
                            sb.state.calls.append(
                                {
                                    "at": time.time(),
                                    "method": self.command,
                                    "path": url.path,
                                    "status": status,
                                    "headers": {
                                        k: v
                                        for k, v in headers.items()
                                        if k.startswith("x-line-") or k in ("authorization", "content-type")
                                    },
                                    "body": json.loads(body) if body else None,
                                }
                            )
                except (KeyError, ValueError) as e:
                    status, payload = 400, {"message": f"bad sandbox request: {e}"}
                out = json.dumps(payload, ensure_ascii=False).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                for k, v in extra.items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(out)))
                self.end_headers()
                self.wfile.write(out)

            do_GET = do_POST = do_PUT = do_DELETE = _handle

        server = ThreadingHTTPServer((host, port), Handler)
        server.daemon_threads = True
        return server
