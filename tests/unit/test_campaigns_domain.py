"""Segments (rule trees, limits, one-pass evaluation) and campaign rules (variants, hold-out,
deterministic assignment, cap, chunks, states, schedule, statistics) without AWS."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest

from tsunagu.campaigns import domain as d
from tsunagu.campaigns.segments import (
    DAY_MS,
    MAX_DEPTH,
    MAX_NODES,
    Definitions,
    RuleInvalid,
    compile_rule,
    evaluate,
    facts,
)
from tsunagu.errors import Conflict, ValidationFailed

NOW = 1_780_000_000_000
DEFS = Definitions(frozenset({"vip", "kids"}), {"points": "number", "color": "string"})


def uid(i: int) -> str:
    return f"U{i:032x}"


FRIENDS = [
    facts(uid(1), linked=True, member={"store": "S01", "age_band": "30s"}, tags=["vip"], since_ms=NOW - 40 * DAY_MS),
    facts(
        uid(2),
        linked=True,
        member={"store": "S02"},
        tags=["vip"],
        since_ms=NOW - 40 * DAY_MS,
        last_inbound_ms=NOW - 2 * DAY_MS,
    ),
    facts(
        uid(3),
        linked=False,
        tags=["vip", "kids"],
        since_ms=NOW - 5 * DAY_MS,
        fields={"points": 150},
        last_inbound_ms=NOW - 20 * DAY_MS,
    ),
    facts(uid(4), blocked=True, linked=True, member={"store": "S01"}, tags=["vip"], since_ms=NOW - 400 * DAY_MS),
    facts(uid(5), fields={"points": 50, "color": "red"}, clicked=["camp1"], redeemed=["C9"], since_ms=NOW - DAY_MS),
]


def select(rule: object) -> list[str]:
    return evaluate(compile_rule(rule, DEFS, NOW), FRIENDS).recipients


def test_linked_members_of_one_store_are_selected_and_blocked_friends_never_are() -> None:
    rule = {"all": [{"linked": True}, {"attribute": "store", "eq": "S01"}]}
    assert select(rule) == [uid(1)]  # uid(4) matches but has blocked the account


def test_any_not_tags_fields_days_clicks_and_redemptions() -> None:
    assert select({"any": [{"tag": "kids"}, {"clicked": "camp1"}]}) == [uid(3), uid(5)]
    assert select({"not": {"tag": "vip"}}) == [uid(5)]
    assert select({"field": "points", "gte": 100}) == [uid(3)]
    assert select({"field": "points", "lt": 100}) == [uid(5)]  # a missing field never matches an order
    assert select({"field": "color", "in": ["red", "blue"]}) == [uid(5)]
    assert select({"friend_days": {"gte": 30}}) == [uid(1), uid(2)]
    assert select({"friend_days": {"lt": 10}}) == [uid(3), uid(5)]
    assert select({"redeemed": "C9"}) == [uid(5)]
    # days since the last message; never wrote (uid 1, 5) counts as longest ago
    assert select({"last_message_days": {"lt": 7}}) == [uid(2)]
    assert select({"last_message_days": {"gte": 7}}) == [uid(1), uid(3), uid(5)]
    assert select({"last_message_days": {"gte": 7, "lt": 30}}) == [uid(3)]
    assert select({"attribute": "age_band", "eq": "30s"}) == [uid(1)]


def test_compiled_rule_agrees_with_a_hand_written_predicate_on_random_records() -> None:
    rnd = random.Random(3)
    rs = [
        facts(
            uid(i),
            blocked=rnd.random() < 0.1,
            linked=(lk := rnd.random() < 0.5),
            member={"store": rnd.choice(["S01", "S02"])} if lk else None,
            tags=rnd.sample(["vip", "kids"], rnd.randrange(3)),
            since_ms=NOW - rnd.randrange(100) * DAY_MS,
            fields={"points": rnd.randrange(200)} if rnd.random() < 0.5 else {},
        )
        for i in range(2000)
    ]
    rule = {
        "any": [
            {"all": [{"linked": True}, {"attribute": "store", "eq": "S02"}, {"not": {"tag": "kids"}}]},
            {"all": [{"field": "points", "gt": 150}, {"friend_days": {"gte": 50}}]},
        ]
    }
    expected = [
        r["user_id"]
        for r in rs
        if not r["blocked"]
        and (
            (r["linked"] and r["store"] == "S02" and "kids" not in r["tags"])
            or (
                r["fields"].get("points") is not None
                and r["fields"]["points"] > 150
                and r["since_ms"] <= NOW - 50 * DAY_MS
            )
        )
    ]
    got = evaluate(compile_rule(rule, DEFS, NOW), rs)
    assert got.recipients == expected and len(expected) > 50
    assert got.sample == expected[:5]


def nested(depth: int) -> dict[str, object]:
    rule: dict[str, object] = {"tag": "vip"}
    for _ in range(depth - 1):
        rule = {"not": rule}
    return rule


@pytest.mark.parametrize(
    ("rule", "code"),
    [
        ({"tag": "unknown"}, "unknown_tag"),
        ({"field": "nope", "eq": "x"}, "unknown_field"),
        ({"attribute": "birth_date", "eq": "19710401"}, "unknown_attribute"),
        (nested(MAX_DEPTH + 1), "rule_too_deep"),
        ({"any": [{"tag": "vip"}] * MAX_NODES}, "rule_too_large"),
        ({"all": []}, "rule_invalid"),
        ({"field": "color", "gt": "a"}, "rule_invalid"),  # ordering on a string field
        ({"field": "points", "eq": "100"}, "rule_invalid"),  # a string against a number field
        ({"tag": "vip", "linked": True}, "rule_invalid"),
        ({"linked": "yes"}, "rule_invalid"),
        ({"friend_days": {"gt": 3}}, "rule_invalid"),
        ({"__import__": "os"}, "rule_invalid"),
        ("tag", "rule_invalid"),
    ],
)
def test_bad_rules_are_refused_with_a_stable_code(rule: object, code: str) -> None:
    with pytest.raises(RuleInvalid) as e:
        compile_rule(rule, DEFS, NOW)
    assert e.value.code == code and e.value.status == 422


def test_the_deepest_allowed_rule_compiles() -> None:
    assert compile_rule(nested(MAX_DEPTH), DEFS, NOW).needs.members is False


def test_rule_values_are_never_spliced_into_the_generated_source() -> None:
    evil = "x') or __import__('os').system('true') or ('"
    compiled = compile_rule({"field": "color", "eq": evil}, DEFS, NOW)
    assert evil not in compiled.source
    assert compiled.select(FRIENDS) == []


# ------------------------------------------------------------------------ campaigns
V = [d.Variant("A", 50, ({"type": "text", "text": "a"},)), d.Variant("B", 50, ({"type": "text", "text": "b"},))]


def test_assignment_is_stable_and_follows_ratios_with_a_holdout() -> None:
    users = [uid(i) for i in range(20_000)]
    first = [d.assign("camp", u, V, 10) for u in users]
    assert first == [d.assign("camp", u, V, 10) for u in users]  # a re-run moves nobody
    share = {g: first.count(g) / len(users) for g in ("A", "B", d.HOLDOUT)}
    assert abs(share[d.HOLDOUT] - 0.10) < 0.01 and abs(share["A"] - 0.45) < 0.015
    assert [d.assign("other", u, V, 10) for u in users] != first  # per campaign


def test_snapshot_keeps_the_holdout_out_of_every_chunk_and_chunks_hold_at_most_500() -> None:
    users = [uid(i) for i in range(2_345)]
    s = d.snapshot("acc", "camp", users, V, 20, None)
    sent = [u for c in s.chunks for u in c.user_ids]
    holdout = {u for u in users if d.assign("camp", u, V, 20) == d.HOLDOUT}
    assert not holdout & set(sent) and len(sent) + len(holdout) == len(users)
    assert all(len(c.user_ids) <= 500 for c in s.chunks)
    assert s.groups[d.HOLDOUT] == len(holdout) and s.groups["A"] + s.groups["B"] == len(sent)
    assert len({c.retry_key for c in s.chunks}) == len(s.chunks)
    again = d.snapshot("acc", "camp", list(reversed(users)), V, 20, None)
    assert {c.retry_key: set(c.user_ids) for c in again.chunks}.keys() == {c.retry_key for c in s.chunks}


def test_the_cap_cuts_recipients_and_every_variant_keeps_its_share() -> None:
    users = [uid(i) for i in range(4_000)]
    s = d.snapshot("acc", "camp", users, V, 0, 1_000)
    assert s.recipients == 1_000 and s.capped_out == 3_000
    assert 400 < s.groups["A"] < 600
    assert d.snapshot("acc", "camp", users, V, 0, 1_000).chunks == s.chunks


def test_multicast_body_carries_the_variant_as_aggregation_unit() -> None:
    s = d.snapshot("acc", "camp", [uid(1), uid(2)], [d.Variant("A", 100, V[0].messages)], 0, None)
    body = d.multicast_body(s.chunks[0], d.Variant("A", 100, V[0].messages))
    assert body["customAggregationUnits"] == ["A"] and sorted(body["to"]) == [uid(1), uid(2)]


@pytest.mark.parametrize(
    ("variants", "holdout", "code"),
    [
        ([d.Variant("A", 60, V[0].messages), d.Variant("B", 30, V[0].messages)], 0, "ratios_sum"),
        ([d.Variant("A", 100, V[0].messages), d.Variant("A", 0, V[0].messages)], 0, "variant_names"),
        ([d.Variant("A-1", 100, V[0].messages)], 0, "variant_names"),
        ([d.Variant("A", 100, V[0].messages)], 60, "holdout_percent"),
        ([d.Variant("A", 100, tuple({"type": "text", "text": str(i)} for i in range(4)))], 0, "message_count"),
        ([], 0, "variant_count"),
    ],
)
def test_bad_variants_are_refused(variants: list[d.Variant], holdout: int, code: str) -> None:
    with pytest.raises(ValidationFailed) as e:
        d.check_variants(variants, holdout)
    assert e.value.code == code


def test_schedule_window() -> None:
    now = datetime(2026, 12, 3, 9, 0, tzinfo=UTC)
    d.check_schedule(now + timedelta(hours=1), now)
    for at, code in (
        (now - timedelta(minutes=5), "schedule_past"),
        (now + timedelta(days=31), "schedule_too_far"),
        (datetime(2026, 12, 4, 9, 0), "naive_datetime"),
    ):
        with pytest.raises(ValidationFailed) as e:
            d.check_schedule(at, now)
        assert e.value.code == code


def test_states_change_only_along_the_allowed_transitions() -> None:
    d.check_transition(d.State.DRAFT, d.State.SCHEDULED)
    d.check_transition(d.State.SCHEDULED, d.State.CANCELLED)
    with pytest.raises(Conflict) as e:
        d.check_transition(d.State.SENDING, d.State.CANCELLED)
    assert e.value.code == "campaign_not_cancellable"
    with pytest.raises(Conflict):
        d.check_transition(d.State.SENT, d.State.SENDING)
    assert d.final_state(3, 0) is d.State.SENT
    assert d.final_state(2, 1) is d.State.PARTIALLY_SENT
    assert d.final_state(0, 2) is d.State.FAILED


def test_two_proportion_z_test_matches_a_worked_example() -> None:
    # 120/1000 vs 90/1000: pooled p = 0.105, se = sqrt(.105*.895*.002) = 0.013709, z = 2.1884
    c = d.two_proportion_z(120, 1000, 90, 1000)
    assert c.z == pytest.approx(2.1884, abs=1e-3)
    assert c.p_value == pytest.approx(0.02864, abs=1e-4)
    assert d.two_proportion_z(1, 0, 1, 10).p_value is None


def test_figures_below_twenty_users_stay_null() -> None:
    assert d.private(5, 19) is None and d.private(5, 20) == 5 and d.private(None, 100) is None


def test_demographic_filter_is_lines_shape_and_bad_values_are_refused() -> None:
    assert d.demographic_filter({"genders": ["female"]}) == {"type": "gender", "oneOf": ["female"]}
    f = d.demographic_filter({"age_gte": "age_20", "age_lt": "age_40", "areas": ["jp_46", "jp_40"]})
    assert f == {
        "type": "operator",
        "and": [{"type": "age", "gte": "age_20", "lt": "age_40"}, {"type": "area", "oneOf": ["jp_40", "jp_46"]}],
    }
    for bad in (
        {},
        {"age_gte": "age_21"},
        {"age_gte": "age_40", "age_lt": "age_20"},
        {"areas": ["jp_48"]},
        {"genders": ["x"]},
    ):
        with pytest.raises(ValidationFailed) as e:
            d.demographic_filter(bad)
        assert e.value.code == "demographic_invalid"
