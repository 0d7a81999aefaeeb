"""Campaigns as pure rules (R-MSG-1, R-MSG-2): the message limits, A/B variants with ratios and a
hold-out control group, deterministic assignment, the send cap, chunks of at most 500 user ids
with one retry key each, the states and their transitions, the schedule window, and the
statistics of the report.

Assignment hashes the campaign id and the user id (SHA-256), so the same user lands in the same
group on every run and every redelivery: re-running a launch never moves anyone, and the hold-out
is never in any chunk.
"""

from __future__ import annotations

import hashlib
import math
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any

from tsunagu.errors import Conflict, ValidationFailed

MAX_BUBBLES = 3  # R-MSG-1: one broadcast sends at most 3 speech bubbles
MAX_VARIANTS = 5
MULTICAST_MAX = 500  # LINE: at most 500 user ids per multicast (line-platform.md 2.4)
BUCKETS = 1_000_000
MAX_HOLDOUT_PERCENT = 50
# How far ahead a campaign may be scheduled. LINE publishes no limit for API sends; OA Manager
# offers about a month ahead, and a retry key lives 24 hours, so tsunagu keeps to 30 days.
MAX_SCHEDULE_AHEAD = timedelta(days=30)
MIN_SCHEDULE_LEAD = timedelta(minutes=1)
# LINE answers null for statistics covering fewer than 20 users (line-platform.md; insight APIs).
PRIVACY_THRESHOLD = 20
# customAggregationUnits: 1 unit of 1-30 chars, [a-zA-Z0-9_] (LINE's multicast / narrowcast body).
UNIT_MAX = 30
_RETRY_NS = uuid.UUID("6f1d6a52-2f0e-4c11-9a55-7d3e1c2b9a10")


class State(StrEnum):
    DRAFT = "draft"
    SCHEDULED = "scheduled"
    SENDING = "sending"
    SENT = "sent"
    PARTIALLY_SENT = "partially_sent"
    FAILED = "failed"
    CANCELLED = "cancelled"


# Which state may follow which (the stores condition every change on the state it leaves).
TRANSITIONS: dict[State, frozenset[State]] = {
    State.DRAFT: frozenset({State.SCHEDULED, State.CANCELLED}),
    State.SCHEDULED: frozenset({State.SENDING, State.CANCELLED, State.DRAFT}),
    State.SENDING: frozenset({State.SENT, State.PARTIALLY_SENT, State.FAILED}),
    State.SENT: frozenset(),
    State.PARTIALLY_SENT: frozenset(),
    State.FAILED: frozenset(),
    State.CANCELLED: frozenset(),
}


def check_transition(current: State, new: State) -> None:
    if new not in TRANSITIONS[current]:
        if new is State.CANCELLED:
            raise Conflict(
                f"a campaign can be cancelled only before it starts sending (it is {current})",
                code="campaign_not_cancellable",
            )
        raise Conflict(f"a {current} campaign cannot become {new}", code="campaign_state")


@dataclass(frozen=True, slots=True)
class Variant:
    name: str
    ratio: int  # percent of the treated (non hold-out) recipients
    messages: tuple[dict[str, Any], ...]

    @property
    def unit(self) -> str:
        return self.name


def check_messages(messages: list[dict[str, Any]]) -> None:
    """R-MSG-1: 1 to 3 speech bubbles (LINE's API would take 5; the broadcast rule is 3)."""
    if not isinstance(messages, list) or not 1 <= len(messages) <= MAX_BUBBLES:
        raise ValidationFailed(
            f"a campaign message has 1 to {MAX_BUBBLES} speech bubbles (R-MSG-1)", code="message_count"
        )
    for m in messages:
        if not isinstance(m, dict) or not isinstance(m.get("type"), str):
            raise ValidationFailed("each message is a LINE message object with a 'type'", code="message_invalid")


def check_variants(variants: list[Variant], holdout_percent: int) -> None:
    if not 1 <= len(variants) <= MAX_VARIANTS:
        raise ValidationFailed(f"a campaign has 1 to {MAX_VARIANTS} variants", code="variant_count")
    names = [v.name for v in variants]
    if len(set(names)) != len(names):
        raise ValidationFailed("variant names must differ", code="variant_names")
    for v in variants:
        if not v.name or len(v.name) > UNIT_MAX or not v.name.replace("_", "").isalnum() or not v.name.isascii():
            raise ValidationFailed(
                "a variant name is 1-30 of [A-Za-z0-9_] (it is LINE's customAggregationUnit)", code="variant_names"
            )
        if v.ratio < 1:
            raise ValidationFailed("each variant's ratio is at least 1", code="ratios")
        check_messages(list(v.messages))
    if sum(v.ratio for v in variants) != 100:
        raise ValidationFailed("the variants' ratios must sum to 100", code="ratios_sum")
    if not 0 <= holdout_percent <= MAX_HOLDOUT_PERCENT:
        raise ValidationFailed(f"the hold-out is 0-{MAX_HOLDOUT_PERCENT} percent", code="holdout_percent")


def check_schedule(at: datetime, now: datetime) -> None:
    if at.tzinfo is None:
        raise ValidationFailed("the schedule needs a UTC offset (e.g. +09:00)", code="naive_datetime")
    if at < now + MIN_SCHEDULE_LEAD:
        raise ValidationFailed("the schedule is in the past (or less than a minute ahead)", code="schedule_past")
    if at > now + MAX_SCHEDULE_AHEAD:
        raise ValidationFailed("a campaign is scheduled at most 30 days ahead", code="schedule_too_far")


def bucket(campaign_id: str, user_id: str) -> int:
    """The user's fixed place in [0, BUCKETS) for this campaign."""
    d = hashlib.sha256(f"{campaign_id}\x00{user_id}".encode()).digest()
    return int.from_bytes(d[:8], "big") % BUCKETS


HOLDOUT = "holdout"


def assign(campaign_id: str, user_id: str, variants: list[Variant], holdout_percent: int) -> str:
    """``holdout`` or a variant name; the same answer every time for the same pair."""
    b = bucket(campaign_id, user_id)
    cut = holdout_percent * BUCKETS // 100
    if b < cut:
        return HOLDOUT
    # Spread the treated range [cut, BUCKETS) over the variants by their ratios.
    pos = (b - cut) * 100 // (BUCKETS - cut)  # 0..99
    acc = 0
    for v in variants:
        acc += v.ratio
        if pos < acc:
            return v.name
    return variants[-1].name


def capped(campaign_id: str, treated: list[str], cap: int | None) -> list[str]:
    """R-MSG-1: at most ``cap`` recipients; which ones is decided by a second hash, so the cut
    takes every variant in its share and re-runs cut the same friends."""
    if cap is None or len(treated) <= cap:
        return treated
    return sorted(treated, key=lambda u: hashlib.sha256(f"cap\x00{campaign_id}\x00{u}".encode()).digest())[:cap]


# A variant above the threshold goes out as one narrowcast to an uploaded audience: its users are
# stored in parts of at most 5,000 (LINE takes 10,000 per upload request; 5,000 ids keep one item
# well under DynamoDB's 400 KB).
AUDIENCE_PART_MAX = 5_000
MULTICAST, NARROWCAST, AUDIENCE_PART = "multicast", "narrowcast", "audience_part"


@dataclass(frozen=True, slots=True)
class Chunk:
    index: int
    variant: str
    user_ids: tuple[str, ...]
    retry_key: str
    mode: str = MULTICAST
    parts: tuple[int, ...] = ()  # a narrowcast's audience parts (their chunk indexes)
    recipients: int = 0  # a narrowcast's limit.max: the variant's size


def retry_key(account_id: str, campaign_id: str, index: int) -> str:
    """The chunk's X-Line-Retry-Key: a UUID derived from the chunk, so a rebuilt snapshot and a
    redelivered message carry the same key (LINE answers 409 instead of sending twice)."""
    return str(uuid.uuid5(_RETRY_NS, f"{account_id}/{campaign_id}/{index}"))


def reservation_id(account_id: str, campaign_id: str) -> str:
    """The one quota reservation of a campaign (its send id in the billing room)."""
    return str(uuid.uuid5(_RETRY_NS, f"{account_id}/{campaign_id}/reservation"))


@dataclass(frozen=True, slots=True)
class Snapshot:
    chunks: list[Chunk]  # what is sent: one queue message each (indexes 0..n-1)
    groups: dict[str, int]  # recipients per variant, and the hold-out's size
    capped_out: int
    parts: list[Chunk] = field(default_factory=list)  # audience parts of the narrowcasts

    @property
    def recipients(self) -> int:
        return sum(c.recipients if c.mode == NARROWCAST else len(c.user_ids) for c in self.chunks)


def snapshot(
    account_id: str,
    campaign_id: str,
    audience: Iterable[str],
    variants: list[Variant],
    holdout_percent: int,
    cap: int | None,
    narrowcast_above: int | None = None,
) -> Snapshot:
    """Fix the recipients: assign, cap, then cut each variant into chunks of <= 500 - or, for a
    variant of more than ``narrowcast_above`` users, one narrowcast to an uploaded audience."""
    by_group: dict[str, list[str]] = {v.name: [] for v in variants}
    by_group[HOLDOUT] = []
    for u in dict.fromkeys(audience):
        by_group[assign(campaign_id, u, variants, holdout_percent)].append(u)
    treated = [u for v in variants for u in by_group[v.name]]
    kept = set(capped(campaign_id, treated, cap))
    chunks: list[Chunk] = []
    groups: dict[str, int] = {HOLDOUT: len(by_group[HOLDOUT])}
    audiences: list[tuple[int, str, list[str]]] = []  # (chunk position, variant, ids)
    for v in variants:
        ids = [u for u in by_group[v.name] if u in kept]
        groups[v.name] = len(ids)
        if narrowcast_above is not None and len(ids) > narrowcast_above:
            audiences.append((len(chunks), v.name, ids))
            chunks.append(Chunk(len(chunks), v.name, (), "", NARROWCAST, (), len(ids)))
            continue
        for start in range(0, len(ids), MULTICAST_MAX):
            i = len(chunks)
            chunks.append(
                Chunk(i, v.name, tuple(ids[start : start + MULTICAST_MAX]), retry_key(account_id, campaign_id, i))
            )
    parts: list[Chunk] = []
    for pos, name, ids in audiences:
        first = len(chunks) + len(parts)
        for start in range(0, len(ids), AUDIENCE_PART_MAX):
            i = len(chunks) + len(parts)
            parts.append(Chunk(i, name, tuple(ids[start : start + AUDIENCE_PART_MAX]), "", AUDIENCE_PART))
        indexes = tuple(range(first, len(chunks) + len(parts)))
        chunks[pos] = Chunk(pos, name, (), retry_key(account_id, campaign_id, pos), NARROWCAST, indexes, len(ids))
    return Snapshot(chunks, groups, len(treated) - len(kept), parts)


# LINE's demographic filter (messaging-api.yml: AgeDemographic, GenderDemographic, AreaDemographic).
AGES = tuple(f"age_{a}" for a in range(15, 75, 5))
GENDERS = ("male", "female")
JP_AREAS = tuple(f"jp_{i:02d}" for i in range(1, 48))


def demographic_filter(spec: dict[str, Any]) -> dict[str, Any]:
    """``{age_gte?, age_lt?, genders?, areas?}`` -> LINE's ``filter.demographic`` (an ``and`` of
    the parts given). Refused (422 ``demographic_invalid``) when empty or out of LINE's enums."""
    parts: list[dict[str, Any]] = []
    gte, lt = spec.get("age_gte"), spec.get("age_lt")
    if gte is not None or lt is not None:
        if (gte is not None and gte not in AGES) or (lt is not None and lt not in AGES):
            raise ValidationFailed(f"ages are one of {AGES[0]}..{AGES[-1]} in steps of 5", code="demographic_invalid")
        if gte is not None and lt is not None and AGES.index(gte) >= AGES.index(lt):
            raise ValidationFailed("age_gte must be below age_lt", code="demographic_invalid")
        parts.append({"type": "age", **({"gte": gte} if gte else {}), **({"lt": lt} if lt else {})})
    for key, kind, allowed in (("genders", "gender", GENDERS), ("areas", "area", JP_AREAS)):
        values = spec.get(key)
        if values:
            if not set(values) <= set(allowed):
                raise ValidationFailed(f"{key}: one of {', '.join(allowed[:3])}...", code="demographic_invalid")
            parts.append({"type": kind, "oneOf": sorted(set(values))})
    if not parts:
        raise ValidationFailed("a demographic filter names an age, gender or area", code="demographic_invalid")
    return parts[0] if len(parts) == 1 else {"type": "operator", "and": parts}


def narrowcast_body(
    chunk: Chunk, variant: Variant, audience_group_id: int, demographic: dict[str, Any] | None = None
) -> dict[str, Any]:
    """LINE's narrowcast to the variant's uploaded audience (and LINE's demographic filter),
    limited to its size (billing reserves the target reach: line-platform.md 2.2)."""
    body: dict[str, Any] = {
        "messages": list(variant.messages),
        "recipient": {"type": "audience", "audienceGroupId": audience_group_id},
        "limit": {"max": chunk.recipients},
        "customAggregationUnits": [variant.unit],
    }
    if demographic is not None:
        body["filter"] = {"demographic": demographic}
    return body


def multicast_body(chunk: Chunk, variant: Variant) -> dict[str, Any]:
    """LINE's multicast request for one chunk, aggregated per variant in LINE's statistics."""
    return {"to": list(chunk.user_ids), "messages": list(variant.messages), "customAggregationUnits": [variant.unit]}


def final_state(chunks_sent: int, chunks_failed: int) -> State:
    if chunks_failed == 0:
        return State.SENT
    return State.PARTIALLY_SENT if chunks_sent else State.FAILED


# ------------------------------------------------------------------------ statistics
@dataclass(frozen=True, slots=True)
class Comparison:
    """A two-sided two-proportion z-test of ``a`` against ``b`` (pooled standard error)."""

    test: str
    rate_a: float | None
    rate_b: float | None
    difference: float | None
    z: float | None
    p_value: float | None


def two_proportion_z(success_a: int, n_a: int, success_b: int, n_b: int) -> Comparison:
    name = "two-proportion z-test (two-sided, pooled)"
    if n_a == 0 or n_b == 0:
        return Comparison(name, None, None, None, None, None)
    pa, pb = success_a / n_a, success_b / n_b
    pooled = (success_a + success_b) / (n_a + n_b)
    se = math.sqrt(pooled * (1 - pooled) * (1 / n_a + 1 / n_b))
    if se == 0:
        return Comparison(name, pa, pb, pa - pb, None, None)
    z = (pa - pb) / se
    p = math.erfc(abs(z) / math.sqrt(2))
    return Comparison(name, pa, pb, pa - pb, z, p)


def private(value: int | None, users: int | None) -> int | None:
    """LINE's figures are null below 20 users; tsunagu passes the null on, never a guess."""
    if value is None or users is None or users < PRIVACY_THRESHOLD:
        return None
    return value


def utc_now() -> datetime:
    return datetime.now(UTC)
