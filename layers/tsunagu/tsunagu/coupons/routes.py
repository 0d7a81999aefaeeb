"""HTTP routes of coupons (included by the accounts API): definitions, grants, the LINE Login
channel of the coupon page, voids and reports. The redemption itself (the POS's hot path) and the
member's coupon page are lean functions without pydantic; they are documented in
``LEAN_OPENAPI`` so /openapi.json describes them too."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any, Literal

from aws_lambda_powertools.event_handler.openapi.params import Body, Path, Query
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictInt,
    StringConstraints,
    model_validator,
)

from tsunagu import wiring
from tsunagu.api import AccountId, JstDay, authenticated, csv_or_json, csv_response, iso
from tsunagu.api import router as new_router
from tsunagu.config import get_settings
from tsunagu.coupons.domain import jst_days
from tsunagu.observability import metrics

router = new_router()
CouponId = Annotated[str, Path(pattern=r"^cpn_[0-9a-f]{16}$")]
RedemptionId = Annotated[str, Path(pattern=r"^rdm_[0-9a-f]{20}$")]
Code = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=64)]
UserId = Annotated[str, StringConstraints(pattern=r"^U[0-9a-f]{32}$")]


def _sane_year(value: Any) -> Any:
    if not 2000 <= value.year <= 2199:
        raise ValueError("dates must fall in the years 2000-2199")
    return value


Moment = Annotated[datetime, AfterValidator(_sane_year)]
Day = Annotated[date, AfterValidator(_sane_year)]


class LotteryIn(BaseModel):
    """LINE's lottery: each person is drawn once; at most ``max_winners`` win (null: no cap)."""

    model_config = ConfigDict(extra="forbid")

    probability_percent: StrictInt = Field(ge=1, le=99)
    max_winners: StrictInt | None = Field(default=None, ge=1, le=999_999)


class ValidDays(BaseModel):
    """JST calendar days, both inclusive: from 00:00 JST on ``first`` to the end of ``last``."""

    model_config = ConfigDict(extra="forbid")

    first: Day
    last: Day


class CouponIn(BaseModel):
    """A coupon (R-CPN-1). Validity: ``valid_days`` (JST days) or ``valid_from`` / ``valid_until``
    (ISO 8601; without an offset read as JST; ``valid_until`` exclusive)."""

    model_config = ConfigDict(extra="forbid")

    title: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=60)]
    kind: Literal["yen", "percent"]
    amount: StrictInt = Field(ge=1, le=1_000_000, description="yen, or 1-100 for percent")
    valid_days: ValidDays | None = None
    valid_from: Moment | None = None
    valid_until: Moment | None = None
    eligible_items: list[Code] = Field(default_factory=list, max_length=500)
    eligible_categories: list[Code] = Field(default_factory=list, max_length=100)
    per_person_limit: StrictInt = Field(default=1, ge=1, le=100, description="R-CPN-5: one use per person")
    total_cap: StrictInt | None = Field(default=None, ge=1, description="redemptions in total")
    members_only: StrictBool = Field(default=False, description="R-CPN-7: linked members only (R-LINK-7)")
    combinable: StrictBool = Field(default=True, description="R-CPN-2")
    excludes_marked_down: StrictBool = Field(default=True, description="R-CPN-3")
    lottery: LotteryIn | None = None
    voidable: StrictBool = False
    void_within_minutes: StrictInt | None = Field(default=None, ge=1, le=525_600)
    void_until: Moment | None = None
    grant_on_follow: StrictBool = Field(default=False, description="grant to every new friend")
    mirror_to_line: StrictBool = Field(default=False, description="also create it on LINE's coupon API")

    @model_validator(mode="after")
    def _one_validity(self) -> CouponIn:
        has_range = self.valid_from is not None or self.valid_until is not None
        if (self.valid_days is not None) == has_range or (has_range and None in (self.valid_from, self.valid_until)):
            raise ValueError("give either valid_days or both valid_from and valid_until")
        return self

    def definition_data(self) -> dict[str, Any]:
        if self.valid_days is not None:
            start, end = jst_days(self.valid_days.first, self.valid_days.last)
        else:
            start, end = self.valid_from, self.valid_until  # type: ignore[assignment]
        data = self.model_dump(exclude={"valid_days", "grant_on_follow", "mirror_to_line", "void_within_minutes"})
        data.update(valid_from=start, valid_until=end)
        if self.void_within_minutes is not None:
            data["void_within_seconds"] = self.void_within_minutes * 60
        return data


class CouponChange(BaseModel):
    """What may change after creation; the discount, eligibility and lottery may not (make a new
    coupon). ``status: closed`` stops new grants and redemptions."""

    model_config = ConfigDict(extra="forbid")

    title: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=60)] | None = None
    valid_from: Moment | None = None
    valid_until: Moment | None = None
    total_cap: StrictInt | None = Field(default=None, ge=1)
    voidable: StrictBool | None = None
    void_within_minutes: StrictInt | None = Field(default=None, ge=1, le=525_600)
    void_until: Moment | None = None
    grant_on_follow: StrictBool | None = None
    status: Literal["active", "closed"] | None = None

    @model_validator(mode="after")
    def _no_null_for_what_cannot_be_removed(self) -> CouponChange:
        nulled = [k for k in ("title", "status", "grant_on_follow", "voidable") if k in self.model_fields_set]
        if any(getattr(self, k) is None for k in nulled):
            raise ValueError("title, status, grant_on_follow and voidable cannot be null; leave them out to keep them")
        return self

    def changes(self) -> dict[str, Any]:
        data = self.model_dump(exclude_unset=True)
        if "void_within_minutes" in data:
            minutes = data.pop("void_within_minutes")
            data["void_within_seconds"] = None if minutes is None else minutes * 60
        return data


class GrantIn(BaseModel):
    """To LINE users by id (up to 500), or to a segment: ``linked_members`` (R-LINK-7)."""

    model_config = ConfigDict(extra="forbid")

    user_ids: list[UserId] | None = Field(default=None, min_length=1, max_length=500)
    segment: Literal["linked_members"] | None = None
    message: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=4000)] | None = Field(
        default=None,
        description="if given, the newly granted (not lottery losers) get this text and the coupon page link "
        "by a multicast through tsunagu - metered and quota-checked like any send",
    )

    @model_validator(mode="after")
    def _one_target(self) -> GrantIn:
        if (self.user_ids is None) == (self.segment is None):
            raise ValueError("give either user_ids or segment")
        return self


class LoginChannelIn(BaseModel):
    """The LINE Login channel the coupon page uses (R-CPN-6); the secret goes to Secrets Manager."""

    model_config = ConfigDict(extra="forbid")

    channel_id: Annotated[str, StringConstraints(pattern=r"^[0-9]{6,20}$")]
    channel_secret: Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{32}$")]

    def __repr__(self) -> str:  # never print the secret
        return f"LoginChannelIn(channel_id={self.channel_id!r}, <redacted>)"

    __str__ = __repr__


class VoidIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: Annotated[str, StringConstraints(max_length=200)] | None = None


@router.post("/accounts/<account_id>/coupons", status_code=201)  # type: ignore[untyped-decorator]
def create_coupon(account_id: AccountId, body: Annotated[CouponIn, Body()]) -> dict[str, Any]:
    """A coupon definition; ``mirror_to_line`` also creates it on LINE (nothing is stored if LINE refuses)."""
    authenticated(router, account_id)
    return wiring.coupon_catalog().create(account_id, body.definition_data(), body.grant_on_follow, body.mirror_to_line)


@router.get("/accounts/<account_id>/coupons")  # type: ignore[untyped-decorator]
def list_coupons(account_id: AccountId) -> dict[str, Any]:
    authenticated(router, account_id)
    return {"coupons": wiring.coupon_catalog().list(account_id)}


@router.get("/accounts/<account_id>/coupons/<coupon_id>")  # type: ignore[untyped-decorator]
def get_coupon(account_id: AccountId, coupon_id: CouponId) -> dict[str, Any]:
    """The definition and its counters (granted, won, lost, cap_reached, redeemed, voided)."""
    authenticated(router, account_id)
    return wiring.coupon_catalog().get(account_id, coupon_id)


@router.patch("/accounts/<account_id>/coupons/<coupon_id>")  # type: ignore[untyped-decorator]
def change_coupon(account_id: AccountId, coupon_id: CouponId, body: Annotated[CouponChange, Body()]) -> dict[str, Any]:
    authenticated(router, account_id)
    return wiring.coupon_catalog().update(account_id, coupon_id, body.changes())


@router.post("/accounts/<account_id>/coupons/<coupon_id>/grants")  # type: ignore[untyped-decorator]
def grant_coupon(account_id: AccountId, coupon_id: CouponId, body: Annotated[GrantIn, Body()]) -> dict[str, Any]:
    """Grant once per person; a lottery is drawn once and its outcome kept (never redrawn)."""
    authenticated(router, account_id)
    grants = wiring.coupon_grants()
    if body.segment is not None:
        result: dict[str, Any] = grants.grant_segment(account_id, coupon_id, body.segment)
    else:
        result = grants.grant_users(account_id, coupon_id, list(body.user_ids or []))
    metrics.add_metric(name="CouponGrants", unit="Count", value=len(result["grants"]))
    if body.message:
        domain = (router.current_event.raw_event.get("requestContext") or {}).get("domainName", "")
        base = get_settings().public_base_url or f"https://{domain}"
        url = f"{base}/coupon/{account_id}?c={coupon_id}"
        result["message"] = announce(account_id, coupon_id, result["grants"], f"{body.message}\n{url}")
    return result


def announce(account_id: str, coupon_id: str, grants: list[dict[str, Any]], text: str) -> dict[str, Any]:
    """Tell the newly granted by LINE message: multicasts of <= 500, each with a retry key derived
    from its recipients (a retried request sends nothing twice). A refused send (quota) is
    reported; the grants stand."""
    import uuid

    from tsunagu.errors import DomainError

    users = sorted(g["user_id"] for g in grants if g.get("new") and g.get("status") in ("granted", "won"))
    sent, errors = 0, []
    for i in range(0, len(users), 500):
        chunk = users[i : i + 500]
        key = str(uuid.uuid5(uuid.NAMESPACE_URL, f"tsunagu:{account_id}:{coupon_id}:grant:{','.join(chunk)}"))
        body = {"to": chunk, "messages": [{"type": "text", "text": text}]}
        try:
            sent += wiring.billing_service().send(account_id, "multicast", body, key, None)["recipients"]
        except DomainError as e:
            errors.append({"code": e.code, "message": e.message, "users": len(chunk)})
    return {"sent_to": sent, "errors": errors}


@router.put("/accounts/<account_id>/login-channel")  # type: ignore[untyped-decorator]
def put_login_channel(account_id: AccountId, body: Annotated[LoginChannelIn, Body()]) -> dict[str, Any]:
    """R-CPN-6: the coupon page logs members in with this LINE Login channel."""
    from tsunagu.accounts.domain import AccountSettingsPatch

    account = authenticated(router, account_id)
    wiring.login_channels().put_login(account_id, body.channel_id, body.channel_secret)
    wiring.account_service().update(account, AccountSettingsPatch(login_channel_id=body.channel_id))
    return {"account_id": account_id, "login_channel_id": body.channel_id, "login_configured": True}


@router.get(
    "/accounts/<account_id>/redemptions/report",
    responses=csv_or_json("redemptions per coupon, store and day (JSON, or CSV with format=csv)", {"type": "object"}),
)  # type: ignore[untyped-decorator]
def redemption_report(
    account_id: AccountId,
    since: JstDay = None,
    until: JstDay = None,
    coupon_id: Annotated[str | None, Query(pattern=r"^cpn_[0-9a-f]{16}$")] = None,
    format: Annotated[Literal["json", "csv"], Query()] = "json",
) -> Any:
    """Redemptions per coupon, store and JST day (default: the last 31 days), as JSON or CSV."""
    authenticated(router, account_id)
    svc = wiring.redemptions()
    report = svc.report(account_id, iso(since), iso(until), coupon_id)
    if format != "csv":
        return report
    name = f"redemptions-{report['since']}-{report['until']}"
    return csv_response(svc.report_csv(report), name, {"X-Row-Count": str(len(report["rows"]))})


@router.post("/accounts/<account_id>/redemptions/<redemption_id>/void")  # type: ignore[untyped-decorator]
def void_redemption(
    account_id: AccountId, redemption_id: RedemptionId, body: Annotated[VoidIn, Body()]
) -> dict[str, Any]:
    """Void (refund) within the coupon's policy; the person may use the coupon again (R-CPN-5)."""
    authenticated(router, account_id)
    return wiring.redemptions().void(account_id, redemption_id, body.reason)


def _error(description: str) -> dict[str, Any]:
    return {
        "description": description,
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
    }


_ACCOUNT = {"name": "accountId", "in": "path", "required": True, "schema": {"type": "string"}}
_PAGE: dict[str, Any] = {"text/html": {"schema": {"type": "string"}}}  # member-facing pages answer in HTML


LEAN_OPENAPI: dict[str, Any] = {
    "/accounts/{accountId}/redemptions": {
        "post": {
            "summary": "Redeem a coupon at the register (POS; lean function)",
            "description": "One unit of one eligible item is discounted (R-CPN-3/4); one use per person across "
            "every store and register (R-CPN-5); a retry with the same idempotency_key returns the original "
            "result. Refusal codes (422): expired, not_yet_valid, not_eligible, only_marked_down, zero_discount, "
            "not_combinable, already_used, not_a_member, lottery_lost, cap_reached, code_expired, code_invalid, "
            "not_granted.",
            "operationId": "redeem_coupon",
            "parameters": [_ACCOUNT],
            "security": [{"bearer": []}],
            "requestBody": {
                "required": True,
                "content": {
                    "application/json": {
                        "schema": {
                            "type": "object",
                            "required": ["store_id", "register_id", "code", "idempotency_key", "lines"],
                            "properties": {
                                "store_id": {"type": "string", "maxLength": 64},
                                "register_id": {"type": "string", "maxLength": 64},
                                "code": {"type": "string", "description": "16 digits, or the QR payload"},
                                "idempotency_key": {"type": "string", "minLength": 8, "maxLength": 128},
                                "other_coupons": {"type": "integer", "minimum": 0, "default": 0},
                                "lines": {
                                    "type": "array",
                                    "minItems": 1,
                                    "maxItems": 200,
                                    "items": {
                                        "type": "object",
                                        "required": ["item_code", "quantity", "unit_price"],
                                        "properties": {
                                            "item_code": {"type": "string"},
                                            "quantity": {"type": "integer", "minimum": 1},
                                            "unit_price": {"type": "integer", "minimum": 0},
                                            "category": {"type": "string"},
                                            "marked_down": {"type": "boolean", "default": False},
                                        },
                                    },
                                },
                            },
                        }
                    }
                },
            },
            "responses": {
                "201": {"description": "redeemed; the discounted line and amount (replayed: true on a retry)"},
                "400": _error("not JSON or not UTF-8 (invalid_json, invalid_encoding)"),
                "401": _error("missing or wrong API key"),
                "404": _error("the account is not the key's (account_not_found)"),
                "409": _error("idempotency_key_reused: the key was used for a different basket"),
                "415": _error("a body that is not application/json (unsupported_media_type)"),
                "422": _error("refused (stable code) or invalid request"),
            },
        }
    },
    "/coupon/{accountId}": {
        "get": {
            "summary": "The member's coupon page (R-CPN-6: LINE Login; lean function)",
            "operationId": "coupon_page",
            "parameters": [
                _ACCOUNT,
                {"name": "c", "in": "query", "schema": {"type": "string"}, "description": "coupon id"},
                {"name": "code", "in": "query", "schema": {"type": "string"}, "description": "LINE Login callback"},
                {"name": "state", "in": "query", "schema": {"type": "string"}},
            ],
            "responses": {
                "200": {"description": "HTML page with the rotating code", "content": {"text/html": {}}},
                "303": {"description": "to LINE Login, or back to the page after it"},
                "400": {
                    "description": "a coupon link or LINE Login answer that does not fit (a page)",
                    "content": _PAGE,
                },
                "404": {"description": "unknown account or coupon (a page)", "content": _PAGE},
            },
        }
    },
    "/coupon/{accountId}/code": {
        "get": {
            "summary": (
                "The current redemption code (the page polls it; session cookie from LINE Login, or "
                "Authorization: Bearer with a LIFF app's ES256 ID token)"
            ),
            "operationId": "coupon_code",
            "parameters": [_ACCOUNT, {"name": "c", "in": "query", "required": True, "schema": {"type": "string"}}],
            "responses": {
                "200": {"description": "code, display, qr_svg, rotates_in; or refusal"},
                "401": _error("not logged in, or the ID token is expired / for another channel / forged"),
                "404": _error("unknown account or coupon (not_found)"),
            },
        }
    },
}
