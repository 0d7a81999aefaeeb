"""Accounts (one LINE Official Account each) and the settings a business controls.

Plans follow R-PLAN-1; account types and the certified-provider flag gate notification
messages (R-PNP-3); greeting and auto-responses are free replies (R-MSG-2).
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Annotated, Literal
from urllib.parse import urlsplit

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictInt,
    StringConstraints,
    field_validator,
    model_validator,
)

from tsunagu.billing.domain import Plan  # R-PLAN-1; pure, shared with the billing rules


class AccountType(StrEnum):
    """R-PNP-3: only verified or premium accounts may send notification messages."""

    UNVERIFIED = "unverified"
    VERIFIED = "verified"
    PREMIUM = "premium"


ReplyText = Annotated[str, StringConstraints(min_length=1, max_length=5000)]
Keyword = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)]


class AutoResponse(BaseModel):
    """A keyword auto-response, answered with LINE's free reply API (R-MSG-2)."""

    model_config = ConfigDict(extra="forbid")

    keywords: list[Keyword] = Field(min_length=1, max_length=50)
    match: Literal["exact", "contains"] = "exact"
    reply: ReplyText


LinkFactor = Literal[
    "member_number_phone_birthdate",
    "login_id_password",
    "usage_code",
    "email_otp",
    "phone_otp",
]


class LinkPolicy(BaseModel):
    """Which proofs link a LINE user to a member record (R-LINK-1, R-LINK-9, R-LINK-14).

    Each inner list is one accepted combination; the linking issue enforces them."""

    model_config = ConfigDict(extra="forbid")

    accepted: list[list[LinkFactor]] = Field(default_factory=list, max_length=10)

    @field_validator("accepted")
    @classmethod
    def _no_empty_combination(cls, v: list[list[str]]) -> list[list[str]]:
        if any(len(combo) == 0 for combo in v):
            raise ValueError("a factor combination may not be empty")
        return v


def _check_forward_url(url: str) -> str:
    # Scheme and shape only; where the host resolves is checked when forwarding (SSRF guard).
    if not url.startswith(("https://", "http://")) or len(url) > 1000 or any(c.isspace() for c in url):
        raise ValueError("a forward URL must be an http(s) URL without spaces, at most 1000 characters")
    try:
        host = urlsplit(url).hostname
    except ValueError:  # e.g. an unclosed IPv6 literal "https://[::1"
        host = None
    if not host:
        raise ValueError("a forward URL needs a valid host")
    return url


ForwardUrl = Annotated[str, AfterValidator(_check_forward_url)]
NotificationCountry = Literal["JP", "TH", "TW", "ID"]
NotificationRouting = Literal["push_to_friends", "always_notification"]
LoginChannelId = Annotated[str, StringConstraints(pattern=r"^[0-9]{6,20}$")]


def _default_countries() -> list[NotificationCountry]:
    return ["JP", "TH", "TW"]


MAX_SETTINGS_BYTES = 100_000


class AccountSettings(BaseModel):
    """Everything PATCH /accounts/{accountId} may change."""

    model_config = ConfigDict(extra="forbid")

    name: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)]
    plan: Plan = Plan.COMMUNICATION
    account_type: AccountType = AccountType.UNVERIFIED
    certified_provider: bool = False
    greeting: ReplyText | None = None
    auto_responses: list[AutoResponse] = Field(default_factory=list, max_length=100)
    catch_all_reply: ReplyText | None = None
    link_policy: LinkPolicy = Field(default_factory=LinkPolicy)
    chat_retention_days: int = Field(default=365, ge=1, le=3650, description="1:1 chat archive TTL (R-HIST-1)")
    forward_urls: list[ForwardUrl] = Field(
        default_factory=list, max_length=5, description="other LINE tools that should receive the same webhooks"
    )
    notification_countries: list[NotificationCountry] = Field(
        default_factory=_default_countries,
        max_length=4,
        description="where numbers may be from (R-PNP-2 lists ID too; LINE's current docs only JP, TH, TW)",
    )
    notification_routing: NotificationRouting = Field(
        default="push_to_friends",
        description="push_to_friends: a linked member who is a friend gets an ordinary push; "
        "always_notification: every number gets a LINE notification message",
    )
    login_channel_id: LoginChannelId | None = Field(
        default=None,
        description="the LINE Login channel the coupon page logs members in with (R-CPN-6); its secret is "
        "set with PUT /accounts/{accountId}/login-channel and kept in Secrets Manager",
    )

    @model_validator(mode="after")
    def _fits_one_item(self) -> AccountSettings:
        # The account is one DynamoDB item (400 KB at most); settings get a quarter of it.
        if len(self.model_dump_json().encode()) > MAX_SETTINGS_BYTES:
            raise ValueError(f"settings are at most {MAX_SETTINGS_BYTES:,} bytes as JSON (fewer or shorter replies)")
        return self


class NewAccount(AccountSettings):
    """What POST /accounts takes: the settings, with JSON's types held strictly (a bool is not a
    number, a number is not a bool). Stored settings are read back with the lax model."""

    certified_provider: StrictBool = False
    chat_retention_days: StrictInt = Field(default=365, ge=1, le=3650, description="1:1 chat archive TTL (R-HIST-1)")


class AccountSettingsPatch(BaseModel):
    """A partial update: only the fields present change."""

    model_config = ConfigDict(extra="forbid")

    name: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)] | None = None
    plan: Plan | None = None
    account_type: AccountType | None = None
    certified_provider: StrictBool | None = None
    greeting: ReplyText | None = None
    auto_responses: list[AutoResponse] | None = Field(default=None, max_length=100)
    catch_all_reply: ReplyText | None = None
    link_policy: LinkPolicy | None = None
    chat_retention_days: StrictInt | None = Field(default=None, ge=1, le=3650)
    forward_urls: list[ForwardUrl] | None = Field(default=None, max_length=5)
    notification_countries: list[NotificationCountry] | None = Field(default=None, max_length=4)
    notification_routing: NotificationRouting | None = None
    login_channel_id: LoginChannelId | None = None

    def apply_to(self, current: AccountSettings) -> AccountSettings:
        changes = self.model_dump(exclude_unset=True)
        merged = current.model_dump() | changes
        return AccountSettings.model_validate(merged)


class Account(BaseModel):
    account_id: str
    settings: AccountSettings
    channel_configured: bool = False
    created_at: datetime
    updated_at: datetime
    version: int = 1


class ChannelCredentials(BaseModel):
    """What PUT /accounts/{accountId}/channel takes; stored only in Secrets Manager."""

    model_config = ConfigDict(extra="forbid")

    channel_secret: Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{32}$")]
    access_token: Annotated[str, StringConstraints(min_length=20, max_length=1000, pattern=r"^[A-Za-z0-9+/=._-]+$")]

    def __repr__(self) -> str:  # never print the values
        return "ChannelCredentials(<redacted>)"

    __str__ = __repr__


class AccountView(BaseModel):
    """An account as the API shows it (never the key hash)."""

    account_id: str
    settings: AccountSettings
    channel_configured: bool
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, a: Account) -> AccountView:
        return cls(
            account_id=a.account_id,
            settings=a.settings,
            channel_configured=a.channel_configured,
            created_at=a.created_at,
            updated_at=a.updated_at,
        )


class CreatedAccount(AccountView):
    api_key: str = Field(description="Shown once; only its hash is stored.")
