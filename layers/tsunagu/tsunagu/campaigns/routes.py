"""HTTP routes of audiences and campaigns: tags and custom fields, friend facts, segments and their
preview, campaigns (drafts with A/B variants and a hold-out, forecast, schedule, cancel), LINE's
statistics, the report (JSON / CSV) and the tracked-link redirect (R-MSG-1, R-MSG-2, R-LINK-7)."""

from __future__ import annotations

import base64
from datetime import date, datetime
from typing import Annotated, Any, Literal

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.openapi.params import Body, Path, Query
from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictFloat, StrictInt, StrictStr, StringConstraints

from tsunagu import wiring
from tsunagu.api import AccountId, UserId, authenticated, csv_or_json, csv_response, error_response, errors
from tsunagu.api import router as new_router

router = new_router()
_OK: Any = {"description": "OK", "content": {"application/json": {"schema": {"type": "object"}}}}
Name = Annotated[str, StringConstraints(pattern=r"^[a-z0-9_]{1,32}$")]
TagPath = Annotated[str, Path(pattern=r"^[a-z0-9_]{1,32}$")]
SegmentId = Annotated[str, Path(pattern=r"^seg_[0-9a-f]{12}$")]
CampaignId = Annotated[str, Path(pattern=r"^cmp_[0-9a-f]{16}$")]
UserIdStr = Annotated[str, StringConstraints(pattern=r"^U[0-9a-f]{32}$")]


class FieldIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    type: Literal["string", "number"]


class TaggingIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    user_ids: list[UserIdStr] = Field(min_length=1, max_length=1000)
    add: list[Name] = Field(default_factory=list, max_length=20)
    remove: list[Name] = Field(default_factory=list, max_length=20)


class TagRuleIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    on: Literal["keyword", "postback", "linked", "unlinked", "coupon_granted", "coupon_redeemed"]
    match: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=300)] = Field(
        description="the keyword, the postback data, the coupon id, or * (any; the only match of link rules)"
    )
    add: list[Name] = Field(default_factory=list, max_length=20)
    remove: list[Name] = Field(default_factory=list, max_length=20)


class TagRulesIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    rules: list[TagRuleIn] = Field(max_length=100)


class FactsIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    fields: dict[Name, StrictStr | StrictInt | StrictFloat | None] = Field(min_length=1, max_length=20)


class RuleIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    rule: dict[str, Any] = Field(description="a rule tree (docs/campaigns.md)")


class SegmentIn(RuleIn):
    name: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)]


class VariantIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_]{1,30}$")]
    ratio: StrictInt = Field(ge=1, le=100)
    messages: list[dict[str, Any]] = Field(min_length=1, max_length=5)


class DemographicIn(BaseModel):
    """LINE's demographic filter (narrowcast): ages ``age_15`` ... ``age_70`` in steps of 5,
    ``male`` / ``female``, prefectures ``jp_01`` ... ``jp_47``."""

    model_config = ConfigDict(extra="forbid")

    age_gte: str | None = None
    age_lt: str | None = None
    genders: list[str] | None = Field(default=None, max_length=2)
    areas: list[str] | None = Field(default=None, max_length=47)


class CampaignIn(BaseModel):
    """``segment_id`` or ``rule`` names the audience (or neither, with ``demographic``: every friend
    narrowed by LINE); ``ratio`` splits the treated recipients;
    ``holdout_percent`` of the audience receives nothing (the control group); ``cap`` limits
    the recipients (R-MSG-1); ``coupon_id``: redemptions of it count as conversions."""

    model_config = ConfigDict(extra="forbid")

    name: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)]
    segment_id: Annotated[str, StringConstraints(pattern=r"^seg_[0-9a-f]{12}$")] | None = None
    rule: dict[str, Any] | None = None
    variants: list[VariantIn] = Field(min_length=1, max_length=5)
    holdout_percent: StrictInt = Field(default=0, ge=0, le=50)
    cap: StrictInt | None = Field(default=None, ge=1, le=100_000_000)
    coupon_id: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_]{1,64}$")] | None = None
    track_links: StrictBool = False
    demographic: DemographicIn | None = Field(
        default=None, description="LINE's age / gender / area filter on top of the audience (sent as narrowcasts)"
    )


class ScheduleIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    at: datetime | None = Field(default=None, description="ISO 8601 with an offset; omitted: send now")


class CampaignForecastIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    day: date | None = Field(default=None, description="JST date whose plan prices it; default today")


def _base_url() -> str:
    domain = (router.current_event.raw_event.get("requestContext") or {}).get("domainName")
    return f"https://{domain}" if domain else ""


# ---------------------------------------------------------------- vocabulary and friend facts
@router.get("/accounts/<account_id>/tags")  # type: ignore[untyped-decorator]
def vocabulary(account_id: AccountId) -> dict[str, Any]:
    """The account's tags and custom fields (what rules may name)."""
    authenticated(router, account_id)
    return wiring.audiences().vocabulary(account_id)


@router.put("/accounts/<account_id>/tags/<tag>")  # type: ignore[untyped-decorator]
def define_tag(account_id: AccountId, tag: TagPath) -> dict[str, Any]:
    authenticated(router, account_id)
    return wiring.audiences().define_tag(account_id, tag)


@router.put(
    "/accounts/<account_id>/fields/<name>",
    responses={200: _OK, **errors(s409="the field exists with another type (field_type_conflict)")},
)  # type: ignore[untyped-decorator]
def define_field(account_id: AccountId, name: TagPath, req: Annotated[FieldIn, Body()]) -> dict[str, Any]:
    """A custom field of the account's friends (``string`` or ``number``; the type never changes)."""
    authenticated(router, account_id)
    return wiring.audiences().define_field(account_id, name, req.type)


@router.post("/accounts/<account_id>/friend-tags")  # type: ignore[untyped-decorator]
def tag_friends(account_id: AccountId, req: Annotated[TaggingIn, Body()]) -> dict[str, Any]:
    """Add / remove defined tags on up to 1,000 friends."""
    authenticated(router, account_id)
    return wiring.audiences().tag(account_id, req.user_ids, req.add, req.remove)


@router.post("/accounts/<account_id>/friend-tags/import")  # type: ignore[untyped-decorator]
def tag_friends_csv(account_id: AccountId) -> Any:
    """CSV ``user_id,tag`` (``-tag`` removes it), up to 1,000 rows; nothing is written when a row is bad."""
    authenticated(router, account_id)
    ev = router.current_event
    raw = ev.get("body") or ""
    data = base64.b64decode(raw) if ev.is_base64_encoded else raw.encode()
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return error_response(422, "csv_format", "the CSV must be UTF-8 text")
    return wiring.audiences().tag_csv(account_id, text)


@router.put("/accounts/<account_id>/tag-rules")  # type: ignore[untyped-decorator]
def put_tag_rules(account_id: AccountId, req: Annotated[TagRulesIn, Body()]) -> dict[str, Any]:
    """Automatic tags: a keyword typed in the chat, a postback (rich menu), a link made or
    released, a coupon granted or redeemed adds / removes tags."""
    authenticated(router, account_id)
    return wiring.audiences().set_tag_rules(account_id, [r.model_dump() for r in req.rules])


@router.get("/accounts/<account_id>/tag-rules")  # type: ignore[untyped-decorator]
def get_tag_rules(account_id: AccountId) -> dict[str, Any]:
    authenticated(router, account_id)
    return wiring.audiences().tag_rules(account_id)


@router.get("/accounts/<account_id>/audience/<user_id>")  # type: ignore[untyped-decorator]
def friend_facts(account_id: AccountId, user_id: UserId) -> dict[str, Any]:
    authenticated(router, account_id)
    return wiring.audiences().facts(account_id, user_id)


@router.patch("/accounts/<account_id>/audience/<user_id>")  # type: ignore[untyped-decorator]
def set_friend_fields(account_id: AccountId, user_id: UserId, req: Annotated[FactsIn, Body()]) -> dict[str, Any]:
    """Set (or with null remove) custom field values of one friend."""
    authenticated(router, account_id)
    return wiring.audiences().set_fields(account_id, user_id, req.fields)


# ---------------------------------------------------------------- segments
@router.post("/accounts/<account_id>/segments/preview")  # type: ignore[untyped-decorator]
def preview_rule(account_id: AccountId, req: Annotated[RuleIn, Body()]) -> dict[str, Any]:
    """How many friends a rule selects now, and a few of their ids (one pass over the friends)."""
    authenticated(router, account_id)
    return wiring.audiences().preview(account_id, req.rule)


class BrowseIn(RuleIn):
    after: Annotated[str, StringConstraints(pattern=r"^U[0-9a-f]{32}$")] | None = Field(
        None, description="the last user id of the previous page (its `next`)"
    )
    limit: StrictInt = Field(100, ge=1, le=500)


@router.post("/accounts/<account_id>/segments/browse")  # type: ignore[untyped-decorator]
def browse_rule(account_id: AccountId, req: Annotated[BrowseIn, Body()]) -> dict[str, Any]:
    """The friends a rule selects (blocked friends never match), a page at a time in user-id
    order, with their tags and link state: the console's friend filter."""
    authenticated(router, account_id)
    return wiring.audiences().browse(account_id, req.rule, req.after, req.limit)


@router.post("/accounts/<account_id>/segments", status_code=201)  # type: ignore[untyped-decorator]
def save_segment(account_id: AccountId, req: Annotated[SegmentIn, Body()]) -> dict[str, Any]:
    authenticated(router, account_id)
    return wiring.audiences().save_segment(account_id, req.name, req.rule)


@router.get("/accounts/<account_id>/segments")  # type: ignore[untyped-decorator]
def list_segments(account_id: AccountId) -> dict[str, Any]:
    authenticated(router, account_id)
    return {"segments": wiring.audiences().segments(account_id)}


@router.get("/accounts/<account_id>/segments/<segment_id>")  # type: ignore[untyped-decorator]
def get_segment(account_id: AccountId, segment_id: SegmentId) -> dict[str, Any]:
    authenticated(router, account_id)
    return wiring.audiences().segment(account_id, segment_id)


@router.post("/accounts/<account_id>/segments/<segment_id>/preview")  # type: ignore[untyped-decorator]
def preview_segment(account_id: AccountId, segment_id: SegmentId) -> dict[str, Any]:
    authenticated(router, account_id)
    a = wiring.audiences()
    return a.preview(account_id, a.segment_rule(account_id, segment_id))


# ---------------------------------------------------------------- campaigns
@router.post("/accounts/<account_id>/campaigns", status_code=201)  # type: ignore[untyped-decorator]
def create_campaign(account_id: AccountId, req: Annotated[CampaignIn, Body()]) -> dict[str, Any]:
    """A draft. Nothing is sent until it is scheduled."""
    authenticated(router, account_id)
    return wiring.campaigns().create(account_id, req.model_dump(), _base_url())


@router.get("/accounts/<account_id>/campaigns")  # type: ignore[untyped-decorator]
def list_campaigns(account_id: AccountId) -> dict[str, Any]:
    authenticated(router, account_id)
    return {"campaigns": wiring.campaigns().recent(account_id)}


@router.get("/accounts/<account_id>/campaigns/<campaign_id>")  # type: ignore[untyped-decorator]
def get_campaign(account_id: AccountId, campaign_id: CampaignId) -> dict[str, Any]:
    authenticated(router, account_id)
    return wiring.campaigns().view(account_id, campaign_id)


@router.post("/accounts/<account_id>/campaigns/<campaign_id>/forecast")  # type: ignore[untyped-decorator]
def forecast_campaign(
    account_id: AccountId, campaign_id: CampaignId, req: Annotated[CampaignForecastIn, Body()]
) -> dict[str, Any]:
    """Recipients per group if it were sent now, the cost and the quota effect (billing's forecast)."""
    authenticated(router, account_id)
    return wiring.campaigns().forecast(account_id, campaign_id, req.day)


@router.post(
    "/accounts/<account_id>/campaigns/<campaign_id>/schedule",
    status_code=202,
    responses={
        202: {"description": "scheduled (or queued to launch now)"},
        **errors(s409="not a draft, over quota, or changed meanwhile (campaign_state, quota_exceeded)"),
    },
)  # type: ignore[untyped-decorator]
def schedule_campaign(
    account_id: AccountId, campaign_id: CampaignId, req: Annotated[ScheduleIn, Body()]
) -> dict[str, Any]:
    """Now (the launch goes to the campaign queue) or at a time up to 30 days ahead (a one-off
    EventBridge Scheduler entry). The audience is fixed when it launches."""
    authenticated(router, account_id)
    return wiring.campaigns().schedule(account_id, campaign_id, req.at)


@router.post(
    "/accounts/<account_id>/campaigns/<campaign_id>/cancel",
    responses={200: _OK, **errors(s409="sending has started or it ended (campaign_not_cancellable)")},
)  # type: ignore[untyped-decorator]
def cancel_campaign(account_id: AccountId, campaign_id: CampaignId) -> dict[str, Any]:
    """Only before sending starts (409 ``campaign_not_cancellable`` after)."""
    authenticated(router, account_id)
    return wiring.campaigns().cancel(account_id, campaign_id)


@router.post(
    "/accounts/<account_id>/campaigns/<campaign_id>/insight",
    responses={
        200: _OK,
        **errors(
            s400="LINE refused the request (line_refused)",
            s409="not sent yet, or no channel access token (campaign_not_sent, channel_not_configured)",
            s502="LINE did not answer or failed (line_api_error)",
        ),
    },
)  # type: ignore[untyped-decorator]
def fetch_insight(account_id: AccountId, campaign_id: CampaignId) -> dict[str, Any]:
    """Fetch LINE's per-unit statistics of each variant now (null below 20 users stays null)."""
    authenticated(router, account_id)
    return wiring.campaigns().fetch_insight(account_id, campaign_id)


@router.get(
    "/accounts/<account_id>/campaigns/<campaign_id>/report",
    responses=csv_or_json("per variant against the hold-out (JSON, or CSV with format=csv)", {"type": "object"}),
)  # type: ignore[untyped-decorator]
def campaign_report(
    account_id: AccountId, campaign_id: CampaignId, format: Annotated[Literal["json", "csv"], Query()] = "json"
) -> Any:
    """Per variant against the hold-out: sent, tracked clicks, LINE's figures, conversions, and
    the test used to call a winner with its p-value."""
    authenticated(router, account_id)
    report = wiring.campaigns().report(account_id, campaign_id)
    if format == "csv":
        from tsunagu.campaigns.service import report_csv

        return csv_response(report_csv(report), f"campaign-{campaign_id}")
    return report


@router.get(
    "/r/<token>",
    responses={
        302: {"description": "counted; Location is the link's target"},
        **errors(s404="no such link (link_not_found)", s422="not a link token (validation_failed)"),
    },
)  # type: ignore[untyped-decorator]
def tracked_redirect(token: Annotated[str, Path(pattern=r"^[A-Za-z0-9_-]{16}$")]) -> Response[str]:
    """A tracked link: counted for its campaign and variant, then a 302 to its target."""
    target = wiring.campaigns().click(token)
    if target is None:
        return error_response(404, "link_not_found", "no such link")
    return Response(status_code=302, body="", headers={"Location": target, "Cache-Control": "no-store"})
