"""Accounts (one LINE Official Account each) and the settings a business controls.

Plans follow R-PLAN-1; account types and the certified-provider flag gate notification
messages (R-PNP-3); greeting and auto-responses are free replies (R-MSG-2).
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from datetime import datetime
from enum import StrEnum
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator

ACCOUNT_ID_RE = re.compile(r"^acct_[0-9a-f]{16}$")
API_KEY_RE = re.compile(r"^tsk_(acct_[0-9a-f]{16})_([A-Za-z0-9_-]{43})$")


class Plan(StrEnum):
    """R-PLAN-1."""

    COMMUNICATION = "communication"
    LIGHT = "light"
    STANDARD = "standard"


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


class AccountSettingsPatch(BaseModel):
    """A partial update: only the fields present change."""

    model_config = ConfigDict(extra="forbid")

    name: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)] | None = None
    plan: Plan | None = None
    account_type: AccountType | None = None
    certified_provider: bool | None = None
    greeting: ReplyText | None = None
    auto_responses: list[AutoResponse] | None = Field(default=None, max_length=100)
    catch_all_reply: ReplyText | None = None
    link_policy: LinkPolicy | None = None

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


def new_account_id() -> str:
    return "acct_" + secrets.token_hex(8)


def is_account_id(value: str) -> bool:
    return bool(ACCOUNT_ID_RE.match(value))


def new_api_key(account_id: str) -> str:
    """An API key names its account, so authentication is one GetItem, never a scan."""
    return f"tsk_{account_id}_{secrets.token_urlsafe(32)}"


def hash_api_key(api_key: str) -> str:
    # The key carries 256 random bits: a fast hash is enough (no dictionary to attack).
    return hashlib.sha256(api_key.encode()).hexdigest()


def api_key_account(api_key: str) -> str | None:
    m = API_KEY_RE.match(api_key)
    return m.group(1) if m else None


def api_key_matches(api_key: str, stored_hash: str) -> bool:
    return hmac.compare_digest(hash_api_key(api_key), stored_hash)


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
