"""Coupons (R-CPN-1 ... R-CPN-7, R-LINK-7): definitions, grants and lotteries, the member's
coupon page (LINE Login, rotating code), redemption at the register, voids and reports.

- ``CouponCatalog``: definitions (the rules live in ``domain.coupons``), optionally mirrored to
  LINE's coupon API so they can be sent as LINE coupon messages.
- ``CouponGrants``: a grant per LINE user - by API, to the linked-member segment (R-LINK-7), or
  on follow. A lottery is drawn once per person and stored; the winner cap is a conditional ADD
  in the grant's transaction.
- ``CouponPage``: LINE Login (code exchange, ID token checks) and the code the page shows.
- ``Redemptions``: the POS call - exactly one unit discounted (R-CPN-3/4), one use per person
  across every store and register (R-CPN-5), the same answer for a retried idempotency key.

No pydantic here: the redemption function and the coupon page import this module (cold start).
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import random
import re
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

from tsunagu.accounts.access import AccountKeys, check_api_key
from tsunagu.coupons import domain as c
from tsunagu.errors import Conflict, NotFound, ValidationFailed

if TYPE_CHECKING:
    from tsunagu.coupons.ports import CouponStore, LoginChannels, LoginTokens
    from tsunagu.linking.ports import FactTagger, KeyRing, LinkedMembers

ACTIVE, CLOSED = "active", "closed"
GRANTED, WON, LOST, CAP = "granted", "won", "lost", "cap_reached"
GRANT_REFUSALS = {LOST: c.LOTTERY_LOST, CAP: c.CAP_REACHED}
MAX_LINES = 200
_ID_RE = re.compile(r"^[A-Za-z0-9_.:-]{1,64}$")
_IDEM_RE = re.compile(r"^[\x21-\x7e]{8,128}$")


def _now() -> datetime:
    return datetime.now(UTC)


def _ms(d: datetime) -> int:
    return int(d.timestamp() * 1000)


def _iso(ms: Any) -> str | None:
    return datetime.fromtimestamp(int(ms) / 1000, UTC).astimezone(c.JST).isoformat(timespec="seconds") if ms else None


def _sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def jst_day(d: datetime) -> str:
    return d.astimezone(c.JST).date().isoformat()


# ----------------------------------------------------------------------------- definitions
@dataclass
class CouponCatalog:
    store: CouponStore
    line: Any = None  # LineCouponApi, for the mirror
    channel_secrets: Any = None  # SecretsManagerChannelSecrets (the mirror's access token)

    @staticmethod
    def view(record: dict[str, Any], counts: dict[str, int] | None = None) -> dict[str, Any]:
        out = {
            **record["definition"],
            "status": record["status"],
            "grant_on_follow": bool(record.get("grant_on_follow")),
            "line_coupon_id": record.get("line_coupon_id"),
            "version": int(record["version"]),
            "created_at": _iso(record["created_at"]),
            "updated_at": _iso(record["updated_at"]),
        }
        out["amount"] = int(out["amount"])
        for k in ("per_person_limit", "total_cap", "void_within_seconds"):
            if out.get(k) is not None:
                out[k] = int(out[k])
        if out.get("lottery"):
            lot = out["lottery"]
            out["lottery"] = {
                "probability_percent": int(lot["probability_percent"]),
                "max_winners": None if lot.get("max_winners") is None else int(lot["max_winners"]),
            }
        if counts is not None:
            out["counts"] = {k: counts.get(k, 0) for k in (GRANTED, WON, LOST, CAP, "redeemed", "voided")}
        return out

    @staticmethod
    def _definition(data: dict[str, Any]) -> c.CouponDefinition:
        try:
            return c.CouponDefinition.from_dict(data)
        except (ValueError, KeyError, TypeError) as e:
            raise ValidationFailed(f"invalid coupon: {e}", code="invalid_coupon") from None

    def create(self, account_id: str, data: dict[str, Any], grant_on_follow: bool, mirror: bool) -> dict[str, Any]:
        """A new coupon; with ``mirror`` it is created on LINE first (nothing is stored if LINE
        refuses it), so the business can send it as a LINE coupon message."""
        defn = self._definition({**data, "coupon_id": f"cpn_{secrets.token_hex(8)}"})
        line_coupon_id = None
        if mirror:
            token = self.channel_secrets.access_token(account_id) if self.channel_secrets else None
            if not token:
                raise Conflict("set the channel first (PUT /accounts/{id}/channel)", code="channel_not_configured")
            line_coupon_id = self.line.create_coupon(token, c.line_coupon_body(defn))
        now = _ms(_now())
        record = {
            "coupon_id": defn.coupon_id,
            "definition": defn.to_dict(),
            "status": ACTIVE,
            "grant_on_follow": grant_on_follow,
            "line_coupon_id": line_coupon_id,
            "version": 1,
            "created_at": now,
            "updated_at": now,
        }
        if not self.store.put_coupon(account_id, record):
            raise Conflict("coupon id collision; retry", code="coupon_exists")
        return self.view(record, {})

    def record(self, account_id: str, coupon_id: str) -> dict[str, Any]:
        r = self.store.coupon(account_id, coupon_id)
        if r is None:
            raise NotFound("no such coupon", code="coupon_not_found")
        return r

    def definition(self, account_id: str, coupon_id: str) -> tuple[dict[str, Any], c.CouponDefinition]:
        r = self.record(account_id, coupon_id)
        return r, c.CouponDefinition.from_dict(r["definition"])

    def get(self, account_id: str, coupon_id: str) -> dict[str, Any]:
        return self.view(self.record(account_id, coupon_id), self.store.counts(account_id, coupon_id))

    def list(self, account_id: str) -> list[dict[str, Any]]:
        return [self.view(r) for r in self.store.coupons(account_id)]

    def update(self, account_id: str, coupon_id: str, changes: dict[str, Any]) -> dict[str, Any]:
        """Change the fields the API allows (title, validity, cap, void policy, grant on follow,
        status); the discount, eligibility and lottery are fixed once granted. A lost race on the
        version is a 409."""
        r = self.record(account_id, coupon_id)
        extra: dict[str, Any] = {k: changes.pop(k) for k in ("grant_on_follow", "status") if k in changes}
        defn = self._definition({**r["definition"], **changes})
        updated: dict[str, Any] = {
            **{k: v for k, v in r.items() if k not in ("PK", "SK", "entity")},
            **extra,
            "definition": defn.to_dict(),
            "version": int(r["version"]) + 1,
            "updated_at": _ms(_now()),
        }
        if not self.store.put_coupon(account_id, updated, expected_version=int(r["version"])):
            raise Conflict("the coupon changed meanwhile; read it again", code="version_conflict")
        return self.view(updated, self.store.counts(account_id, coupon_id))


# ----------------------------------------------------------------------------- grants
def grant_view(g: dict[str, Any], new: bool) -> dict[str, Any]:
    return {
        "coupon_id": g["coupon_id"],
        "user_id": g["user_id"],
        "status": g["status"],
        "granted_at": _iso(g["granted_at"]),
        "via": g.get("via"),
        "uses": int(g.get("uses", 0)),
        "new": new,
    }


@dataclass
class CouponGrants:
    store: CouponStore
    catalog: CouponCatalog
    links: LinkedMembers  # DynamoLinkStore (R-LINK-7: linked users are members)
    rng: c.RandomSource = field(default_factory=random.SystemRandom)
    tagger: FactTagger | None = None  # automatic tags on grant / redemption (campaigns room)

    def tag(self, account_id: str, user_id: str, on: str, coupon_id: str) -> None:
        if self.tagger is not None:
            self.tagger.on_fact(account_id, user_id, on, coupon_id)

    def is_member(self, account_id: str, user_id: str) -> bool:
        return bool(self.links.user_links(account_id, user_id))

    def grant(self, account_id: str, coupon_id: str, user_id: str, via: str = "api") -> dict[str, Any]:
        """Grant once per person. A lottery is drawn here, once: the outcome is stored with the
        grant and a later grant of the same coupon returns it, never a new draw. The winner takes
        a slot under ``max_winners`` in the same transaction; losing that race is ``cap_reached``."""
        record, defn = self.catalog.definition(account_id, coupon_id)
        existing = self.store.grant(account_id, coupon_id, user_id)
        if existing is not None:
            return grant_view(existing, new=False)
        now = _now()
        if record["status"] != ACTIVE or now >= defn.valid_until:
            raise c.refuse(c.EXPIRED)
        if defn.members_only and not self.is_member(account_id, user_id):
            raise c.refuse(c.NOT_A_MEMBER)  # R-CPN-7: member coupons go to linked members only
        status, cap = GRANTED, None
        if defn.lottery is not None:
            cap = defn.lottery.max_winners
            winners = self.store.counts(account_id, coupon_id).get(WON, 0)
            outcome = c.lottery_refusal(defn.lottery, self.rng, winners)
            status = {None: WON, c.LOTTERY_LOST: LOST, c.CAP_REACHED: CAP}[outcome]
        g: dict[str, Any] = {
            "coupon_id": coupon_id,
            "user_id": user_id,
            "status": status,
            "uses": 0,
            "granted_at": _ms(now),
            "via": via,
        }
        if status in (GRANTED, WON):
            g["ref"] = c.grant_ref_for(self.store.next_serial(account_id) % 10**c.GRANT_DIGITS)
        if self.store.add_grant(account_id, g, winner_cap=cap):
            if status in (GRANTED, WON):
                self.tag(account_id, user_id, "coupon_granted", coupon_id)
            return grant_view(g, new=True)
        existing = self.store.grant(account_id, coupon_id, user_id)
        if existing is not None:  # a concurrent grant of the same person won
            return grant_view(existing, new=False)
        if status == WON:  # the cap filled between the read and the write
            g = {**g, "status": CAP}
            g.pop("ref", None)
            if self.store.add_grant(account_id, g):
                return grant_view(g, new=True)
            existing = self.store.grant(account_id, coupon_id, user_id)
            if existing is not None:
                return grant_view(existing, new=False)
        raise Conflict("the grant changed meanwhile; retry", code="grant_conflict")

    def grant_users(self, account_id: str, coupon_id: str, user_ids: list[str], via: str = "api") -> dict[str, Any]:
        """Grant to each user on its own: a refusal (not a member, expired) is reported per user."""
        self.catalog.record(account_id, coupon_id)  # 404 before any work
        results: list[dict[str, Any]] = []
        for user in dict.fromkeys(user_ids):
            try:
                results.append(self.grant(account_id, coupon_id, user, via))
            except c.CouponRefused as e:
                results.append({"user_id": user, "refused": e.code, "message": e.message})
        summary: dict[str, int] = {}
        for r in results:
            key = r.get("refused") or (r["status"] if r["new"] else "already_granted")
            summary[key] = summary.get(key, 0) + 1
        return {"coupon_id": coupon_id, "summary": summary, "grants": results}

    def grant_segment(self, account_id: str, coupon_id: str, segment: str) -> dict[str, Any]:
        """``linked_members``: every LINE user linked to a member (R-LINK-7). Synchronous: fine
        for a few thousand members; a larger register would go through a queue."""
        if segment != "linked_members":
            raise ValidationFailed("segment must be linked_members", code="unknown_segment")
        users: list[str] = []
        cursor = None
        while True:
            page, cursor = self.links.linked_users(account_id, 500, cursor)
            users += page
            if not cursor:
                break
        return self.grant_users(account_id, coupon_id, users, via="segment")

    def on_follow(self, account_id: str, user_id: str) -> list[dict[str, Any]]:
        """Grant every active coupon marked ``grant_on_follow`` to a new friend (a members-only
        coupon is skipped: a new friend is not linked yet). Safe to repeat: grants are once."""
        out = []
        for r in self.catalog.store.coupons(account_id):
            if r.get("status") == ACTIVE and r.get("grant_on_follow"):
                try:
                    out.append(self.grant(account_id, r["coupon_id"], user_id, via="follow"))
                except c.CouponRefused:
                    continue
        return out


# ----------------------------------------------------------------------------- coupon page
@dataclass
class CouponPage:
    """The member's page (R-CPN-6): LINE Login, then a code that rotates every ``step_seconds``."""

    grants: CouponGrants
    login_channels: LoginChannels
    code_keys: KeyRing
    line: LoginTokens
    access_base_url: str
    step_seconds: int = c.DEFAULT_STEP_SECONDS
    jwks: Callable[[str], dict[str, Any] | None] | None = None  # LINE's keys for LIFF (ES256) tokens

    def _login(self, account_id: str) -> tuple[str, str]:
        login = self.login_channels.login(account_id)
        if login is None:
            raise Conflict("this account has no LINE Login channel", code="login_not_configured")
        return login

    def authorize_url(self, account_id: str, redirect_uri: str, state: str, nonce: str) -> str:
        channel_id, _ = self._login(account_id)
        query = urlencode(
            {
                "response_type": "code",
                "client_id": channel_id,
                "redirect_uri": redirect_uri,
                "state": state,
                "scope": "openid",
                "nonce": nonce,
                "bot_prompt": "normal",
            }
        )
        return f"{self.access_base_url}/oauth2/v2.1/authorize?{query}"

    def sign_in(self, account_id: str, code: str, redirect_uri: str, nonce: str, now: datetime) -> tuple[str, int]:
        """Exchange LINE Login's code for the ID token and check it (signature, audience = the
        login channel, expiry, nonce). Returns the token and its expiry (Unix seconds)."""
        channel_id, secret = self._login(account_id)
        token = self.line.login_token(code, redirect_uri, channel_id, secret)
        claims = c.verify_id_token(token, channel_id, secret, now, nonce, jwks=self.jwks)
        return token, int(claims["exp"])

    def member(self, account_id: str, id_token: str, now: datetime) -> str:
        """The LINE user an ID token proves: HS256 from web login, or ES256 from a LIFF app
        (``liff.getIDToken()``, verified against LINE's JWKS); c.IdTokenError, 401, otherwise."""
        channel_id, secret = self._login(account_id)
        return str(c.verify_id_token(id_token, channel_id, secret, now, jwks=self.jwks)["sub"])

    def show(self, account_id: str, coupon_id: str, user_id: str, now: datetime) -> dict[str, Any]:
        """What the page shows: the coupon, and either the current code or why it can't be used."""
        record, defn = self.grants.catalog.definition(account_id, coupon_id)
        out: dict[str, Any] = {
            "coupon_id": coupon_id,
            "title": defn.title,
            "discount": c.describe_discount(defn),
            "valid_until": (defn.valid_until - timedelta(seconds=1)).astimezone(c.JST).strftime("%Y/%m/%d %H:%M"),
            "excludes_marked_down": defn.excludes_marked_down,
            "refusal": None,
        }
        g = self.grants.store.grant(account_id, coupon_id, user_id)
        refusal = None
        if g is None:
            refusal = c.NOT_GRANTED
        elif g["status"] in GRANT_REFUSALS:
            refusal = GRANT_REFUSALS[g["status"]]
        elif record["status"] != ACTIVE:
            refusal = c.EXPIRED
        else:
            member = not defn.members_only or self.grants.is_member(account_id, user_id)
            refusal = c.precheck(defn, now, is_member=member, used_by_person=int(g.get("uses", 0)), used_in_total=0)
        if refusal is not None:
            out.update(refusal=refusal, message=c.REFUSALS[refusal].ja)
            return out
        assert g is not None
        issued = c.issue_code(self.code_keys.key(account_id), g["ref"], now, self.step_seconds)
        out.update(
            code=issued.code,
            display=issued.display,
            qr_payload=issued.qr_payload,
            rotates_at=issued.rotates_at.isoformat(),
            rotates_in=max(1, int((issued.rotates_at - now).total_seconds())),
        )
        return out


# ----------------------------------------------------------------------------- redemption
@dataclass(frozen=True)
class RedemptionRequest:
    store_id: str
    register_id: str
    code: str
    idempotency_key: str
    lines: tuple[c.BasketLine, ...]
    other_coupons: int = 0

    def fingerprint(self) -> str:
        """What makes a retry 'the same request' (the code may be re-scanned: not included)."""
        lines = [[ln.item_code, ln.quantity, ln.unit_price, ln.category, ln.marked_down] for ln in self.lines]
        doc = [self.store_id, self.register_id, self.other_coupons, lines]
        return _sha(json.dumps(doc, ensure_ascii=False, separators=(",", ":")))


def _bad(message: str, code: str = "invalid_redemption") -> ValidationFailed:
    return ValidationFailed(message, code=code)


def parse_redemption(doc: Any) -> RedemptionRequest:
    """Validate the POS's JSON by hand (no pydantic on this path); every problem is a 422 with a
    stable code, before anything is read or written."""
    if not isinstance(doc, dict):
        raise _bad("the body must be a JSON object")
    unknown = set(doc) - {"store_id", "register_id", "code", "idempotency_key", "lines", "other_coupons"}
    if unknown:
        raise _bad(f"unknown fields: {', '.join(sorted(unknown))}")
    for name in ("store_id", "register_id"):
        if not isinstance(doc.get(name), str) or not _ID_RE.fullmatch(doc[name]):
            raise _bad(f"{name} must be 1-64 characters of A-Z a-z 0-9 _ . : -")
    if not isinstance(doc.get("idempotency_key"), str) or not _IDEM_RE.fullmatch(doc["idempotency_key"]):
        raise _bad("idempotency_key must be 8-128 printable ASCII characters", "invalid_idempotency_key")
    if not isinstance(doc.get("code"), str) or not 1 <= len(doc["code"]) <= 64:
        raise _bad("code must be the scanned or typed redemption code", "code_invalid")
    other = doc.get("other_coupons", 0)
    if isinstance(other, bool) or not isinstance(other, int) or not 0 <= other <= 100:
        raise _bad("other_coupons must be a whole number 0-100")
    raw_lines = doc.get("lines")
    if not isinstance(raw_lines, list) or not 1 <= len(raw_lines) <= MAX_LINES:
        raise _bad(f"lines must hold 1-{MAX_LINES} basket lines")
    lines = []
    for i, ln in enumerate(raw_lines):
        if not isinstance(ln, dict) or not isinstance(ln.get("item_code"), str) or not 1 <= len(ln["item_code"]) <= 64:
            raise _bad(f"lines[{i}].item_code is required (1-64 characters)")
        category = ln.get("category")
        if category is not None and (not isinstance(category, str) or len(category) > 64):
            raise _bad(f"lines[{i}].category must be text (at most 64 characters)")
        marked = ln.get("marked_down", False)
        if not isinstance(marked, bool):
            raise _bad(f"lines[{i}].marked_down must be true or false")
        qty, price = ln.get("quantity"), ln.get("unit_price")
        if isinstance(qty, int) and not isinstance(qty, bool) and qty > 9999:
            raise _bad(f"lines[{i}].quantity must be at most 9999")
        if isinstance(price, int) and not isinstance(price, bool) and price > 10_000_000:
            raise _bad(f"lines[{i}].unit_price must be at most 10,000,000 yen")
        try:
            lines.append(c.BasketLine(ln["item_code"], qty, price, category, marked))  # type: ignore[arg-type]
        except ValueError as e:
            raise _bad(f"lines[{i}]: {e}") from None
    return RedemptionRequest(
        doc["store_id"], doc["register_id"], doc["code"], doc["idempotency_key"], tuple(lines), other
    )


def redemption_view(r: dict[str, Any]) -> dict[str, Any]:
    return {
        "redemption_id": r["redemption_id"],
        "coupon_id": r["coupon_id"],
        "title": r["title"],
        "status": r["status"],
        "store_id": r["store_id"],
        "register_id": r["register_id"],
        "discount": {
            "line_index": int(r["line_index"]),
            "item_code": r["item_code"],
            "unit_price": int(r["unit_price"]),
            "discount_yen": int(r["discount_yen"]),
            "units": 1,  # R-CPN-4: one unit of one item
        },
        "redeemed_at": _iso(r["redeemed_at"]),
        "voided_at": _iso(r.get("voided_at")),
    }


@dataclass
class Redemptions:
    store: CouponStore
    grants: CouponGrants
    code_keys: KeyRing
    accounts: AccountKeys
    step_seconds: int = c.DEFAULT_STEP_SECONDS
    code_window: int = 1  # steps before the current one still accepted (a code lives 30-60 s)

    def authenticate(self, authorization: str | None, account_id: str) -> None:
        check_api_key(self.accounts, authorization, account_id)

    def _key_hash(self, account_id: str, key: str) -> str:
        return _sha(f"{account_id}\n{key}")  # the POS's key is not stored as sent

    def _replay(self, account_id: str, prior: dict[str, Any], req: RedemptionRequest) -> dict[str, Any]:
        if prior["fingerprint"] != req.fingerprint():
            raise Conflict("this idempotency key was used for a different request", code="idempotency_key_reused")
        return {**redemption_view(self._stored(account_id, prior["redemption_id"])), "replayed": True}

    def _stored(self, account_id: str, redemption_id: str) -> dict[str, Any]:
        r = self.store.redemption(account_id, redemption_id)
        if r is None:  # written in the same transaction as its request record: cannot be missing
            raise NotFound("no such redemption", code="redemption_not_found")
        return r

    def redeem(self, account_id: str, doc: Any, now: datetime | None = None) -> dict[str, Any]:
        req = parse_redemption(doc)
        now = now or _now()
        key_hash = self._key_hash(account_id, req.idempotency_key)
        prior = self.store.redemption_request(account_id, key_hash)
        if prior is not None:  # a retry: the original answer, even after the code rotated
            return self._replay(account_id, prior, req)
        check = c.check_code(self.code_keys.key(account_id), req.code, now, self.step_seconds, self.code_window)
        if not check.ok:
            raise c.refuse(check.refusal or c.CODE_INVALID)
        ref = self.store.by_ref(account_id, check.grant_ref) if check.grant_ref else None
        if ref is None:
            raise c.refuse(c.CODE_INVALID)
        record, defn = self.grants.catalog.definition(account_id, ref["coupon_id"])
        user = ref["user_id"]
        g = self.store.grant(account_id, defn.coupon_id, user)
        if g is None:
            raise c.refuse(c.NOT_GRANTED)
        if g["status"] in GRANT_REFUSALS:
            raise c.refuse(GRANT_REFUSALS[g["status"]])
        if record["status"] != ACTIVE:
            raise c.refuse(c.EXPIRED)
        member = not defn.members_only or self.grants.is_member(account_id, user)
        used_total = self.store.counts(account_id, defn.coupon_id).get("redeemed", 0) if defn.total_cap else 0
        refusal = c.precheck(
            defn, now, is_member=member, used_by_person=int(g.get("uses", 0)), used_in_total=used_total
        )
        if refusal in (c.ALREADY_USED, c.CAP_REACHED):
            # The original request with this key may have just won: a retry racing it gets its
            # answer, not a refusal caused by its own first attempt.
            prior = self.store.redemption_request(account_id, key_hash)
            if prior is not None:
                return self._replay(account_id, prior, req)
        if refusal is not None:
            raise c.refuse(refusal)
        decision = c.evaluate(defn, req.lines, now, other_coupons=req.other_coupons)
        if not decision.ok:
            raise c.refuse(decision.refusal or c.NOT_ELIGIBLE)
        redemption = {
            "redemption_id": f"rdm_{secrets.token_hex(10)}",
            "coupon_id": defn.coupon_id,
            "title": defn.title,
            "user_id": user,
            "status": "redeemed",
            "store_id": req.store_id,
            "register_id": req.register_id,
            "line_index": decision.line_index,
            "item_code": decision.item_code,
            "unit_price": decision.unit_price,
            "discount_yen": decision.discount_yen,
            "redeemed_at": _ms(now),
            "day": jst_day(now),
        }
        ok = self.store.redeem(
            account_id,
            key_hash,
            req.fingerprint(),
            redemption,
            redemption["day"],
            defn.per_person_limit,
            defn.total_cap,
        )
        if ok:
            self.grants.tag(account_id, user, "coupon_redeemed", defn.coupon_id)
            return {**redemption_view(redemption), "replayed": False}
        # Lost a race: the same key from a concurrent retry, the person's use, or the cap.
        prior = self.store.redemption_request(account_id, key_hash)
        if prior is not None:
            return self._replay(account_id, prior, req)
        g = self.store.grant(account_id, defn.coupon_id, user) or {}
        if int(g.get("uses", 0)) >= defn.per_person_limit:
            raise c.refuse(c.ALREADY_USED)
        if defn.total_cap is not None:
            raise c.refuse(c.CAP_REACHED)
        raise Conflict("the redemption raced another change; retry with the same key", code="redemption_conflict")

    def void(
        self, account_id: str, redemption_id: str, reason: str | None, now: datetime | None = None
    ) -> dict[str, Any]:
        """Void (refund) within the coupon's policy; the person gets the use back (R-CPN-5).
        Voiding a voided redemption answers the same result again."""
        now = now or _now()
        r = self.store.redemption(account_id, redemption_id)
        if r is None:
            raise NotFound("no such redemption", code="redemption_not_found")
        if r["status"] == "voided":
            return redemption_view(r)
        _, defn = self.grants.catalog.definition(account_id, r["coupon_id"])
        refusal = c.void_refusal(defn, datetime.fromtimestamp(int(r["redeemed_at"]) / 1000, UTC), now)
        if refusal is not None:
            raise c.refuse(refusal)
        if not self.store.void(account_id, r, _ms(now), reason):
            r = self.store.redemption(account_id, redemption_id) or r
            if r["status"] != "voided":
                raise Conflict("the redemption changed meanwhile; retry", code="redemption_conflict")
        return redemption_view(self._stored(account_id, redemption_id))

    def report(
        self, account_id: str, since: str | None, until: str | None, coupon_id: str | None = None
    ) -> dict[str, Any]:
        """Redemptions per coupon, store and JST day (default: the last 31 days)."""
        try:
            last = date.fromisoformat(until) if until else _now().astimezone(c.JST).date()
            first = date.fromisoformat(since) if since else last - timedelta(days=30)
        except (ValueError, OverflowError):
            raise ValidationFailed("since / until must be dates (YYYY-MM-DD, JST)", code="invalid_date") from None
        if first > last or (last - first).days > 366:
            raise ValidationFailed("since must be on or before until, at most 366 days apart", code="invalid_range")
        rows: dict[tuple[str, str, str], dict[str, Any]] = {}
        for r in self.store.redemptions(account_id, first.isoformat(), last.isoformat()):
            if coupon_id and r["coupon_id"] != coupon_id:
                continue
            k = (r["coupon_id"], r["store_id"], r["day"])
            row = rows.setdefault(
                k,
                {
                    "coupon_id": k[0],
                    "title": r["title"],
                    "store_id": k[1],
                    "day": k[2],
                    "redeemed": 0,
                    "voided": 0,
                    "discount_yen": 0,
                },
            )
            if r["status"] == "voided":
                row["voided"] += 1
            else:
                row["redeemed"] += 1
                row["discount_yen"] += int(r["discount_yen"])
        ordered = [rows[k] for k in sorted(rows, key=lambda k: (k[2], k[0], k[1]))]
        return {"since": first.isoformat(), "until": last.isoformat(), "rows": ordered}

    def report_csv(self, report: dict[str, Any]) -> str:
        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\r\n")
        cols = ["day", "coupon_id", "title", "store_id", "redeemed", "voided", "discount_yen"]
        w.writerow(cols)
        for row in report["rows"]:
            w.writerow([row[k] for k in cols])
        return "\ufeff" + buf.getvalue()  # BOM: Excel in Japan opens UTF-8 CSV correctly with it
