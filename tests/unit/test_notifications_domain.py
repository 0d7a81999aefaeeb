"""Notification-message rules without AWS: eligibility (R-PNP-3), template checks, rendering,
per-item acceptance (R-PNP-2), the delivery tag, routing, and the sender's token bucket."""

from __future__ import annotations

import pytest

from tsunagu.notifications import domain as n
from tsunagu.ratelimit import TokenBucket

FLEX = {"messages": [{"type": "text", "text": "{{name}}様 ご注文{{order}}を発送しました"}]}


@pytest.mark.parametrize(
    ("account_type", "certified", "ok"),
    [
        ("verified", True, True),
        ("premium", True, True),
        ("unverified", True, False),
        ("verified", False, False),
        ("premium", False, False),
    ],
)
def test_eligibility_r_pnp_3(account_type, certified, ok):
    assert (n.eligibility_problem(account_type, certified) is None) is ok


def test_advertising_terms_are_found_after_width_and_case_folding():
    assert n.advertising_term({"messages": [{"type": "text", "text": "本日限り ＳＡＬＥ"}]}) == "sale"
    assert n.advertising_term({"body": {"items": [{"content": "20%OFF"}]}}) == "%off"
    assert n.advertising_term(FLEX) is None


def test_template_checks():
    n.check_template("flexible", FLEX)
    n.check_template("template", {"template_key": "shipment_completed_ja", "body": {}})
    bad = [
        ("flexible", {"messages": [{"type": "video"}]}, "message_type"),
        ("flexible", {"messages": [{"type": "text", "text": ""}]}, "message_text"),
        ("flexible", {"messages": [{"type": "text", "text": "x"}] * 6}, "message_count"),
        ("flexible", {"messages": [], "extra": 1}, "template_fields"),
        (
            "template",
            {"template_key": "k", "body": {"buttons": [{"buttonKey": "b", "url": "u"}] * 3}},
            "template_buttons",
        ),
        ("template", {"template_key": "k", "body": {"items": [{"itemKey": "a"}]}}, "template_items"),
        ("sms", {}, "template_kind"),
    ]
    for kind, content, code in bad:
        with pytest.raises(n.TemplateInvalid) as e:
            n.check_template(kind, content)
        assert e.value.code == code


def test_content_digest_changes_with_content_only():
    a = n.content_digest("flexible", FLEX)
    assert a == n.content_digest("flexible", {"messages": [dict(FLEX["messages"][0])]})
    assert a != n.content_digest("flexible", {"messages": [{"type": "text", "text": "changed"}]})


def test_render_fills_placeholders_and_enforces_lengths():
    body = n.render("flexible", FLEX, {"name": "山田", "order": "A1"})
    assert body == {"messages": [{"type": "text", "text": "山田様 ご注文A1を発送しました"}]}
    tpl = {"template_key": "k", "body": {"emphasizedItem": {"itemKey": "d", "content": "{{d}}"}}}
    assert n.render("template", tpl, {"d": "11/22"})["templateKey"] == "k"
    with pytest.raises(n.ItemRefused) as e:
        n.render("template", tpl, {"d": "x" * 16})
    assert e.value.code == "parameter_too_long"
    with pytest.raises(n.ItemRefused) as e:
        n.render("flexible", FLEX, {"name": "x"})
    assert e.value.code == "missing_parameter"


@pytest.mark.parametrize(
    ("phone", "countries", "result"),
    [
        ("090-1234-5678", n.DEFAULT_COUNTRIES, "JP"),
        ("+886 912 345 678", n.DEFAULT_COUNTRIES, "TW"),
        ("+66 81 234 5678", n.DEFAULT_COUNTRIES, "TH"),
        ("+62 812 3456 7890", n.DEFAULT_COUNTRIES, "country_not_allowed"),
        ("+62 812 3456 7890", n.KNOWN_COUNTRIES, "ID"),
        ("+44 7911 123456", n.KNOWN_COUNTRIES, "country_not_allowed"),
        ("0120", n.DEFAULT_COUNTRIES, "invalid_phone"),
        ("", n.DEFAULT_COUNTRIES, "invalid_phone"),
    ],
)
def test_accept_item_r_pnp_2(phone, countries, result):
    item = {"reference": "ref-1", "phone": phone, "parameters": {"name": "a", "order": "b"}}
    try:
        accepted = n.accept_item("acct_x", 0, item, countries, "flexible", FLEX)
    except n.ItemRefused as e:
        assert e.code == result
    else:
        assert accepted.region == result
        assert accepted.tag == n.delivery_tag("acct_x", "ref-1")


def test_delivery_tag_is_within_lines_limits_and_per_account():
    tag = n.delivery_tag("acct_a", "order-1")
    assert 16 <= len(tag) <= 100
    assert tag != n.delivery_tag("acct_b", "order-1")


def test_routing():
    assert n.choose_route(n.ROUTING_PUSH_TO_FRIENDS, n.FLEXIBLE, True) == n.ROUTE_PUSH
    assert n.choose_route(n.ROUTING_PUSH_TO_FRIENDS, n.FLEXIBLE, False) == n.ROUTE_PNP
    assert n.choose_route(n.ROUTING_PUSH_TO_FRIENDS, n.TEMPLATE, True) == n.ROUTE_PNP  # LINE templates are PNP only
    assert n.choose_route(n.ROUTING_ALWAYS_PNP, n.FLEXIBLE, True) == n.ROUTE_PNP
    assert n.failure_reason(422, "Failed to send messages") == "no_reachable_user"


def test_domestic_form_matches_the_member_register():
    assert n.domestic_jp("+819012345678") == "09012345678"
    assert n.domestic_jp("+66812345678") is None


def test_token_bucket_spaces_calls_at_the_rate():
    now = [0.0]
    slept: list[float] = []

    def sleep(s: float) -> None:
        slept.append(s)
        now[0] += s

    bucket = TokenBucket(rate=100, burst=5, clock=lambda: now[0], sleep=sleep)
    for _ in range(105):
        bucket.acquire()
    # 5 calls from the burst, then 100 more at 100/s: one second of waiting in all.
    assert sum(slept) == pytest.approx(1.0, rel=1e-6)


@pytest.mark.parametrize(
    ("status", "message", "reason"),
    [
        (400, '{"message":"The value must be a valid SHA-256 digest."}', "invalid_destination"),
        (422, '{"message":"The value must be a valid SHA-256 digest."}', "invalid_destination"),
        (422, '{"message":"Failed to send messages"}', "no_reachable_user"),
        (400, '{"message":"The request body has 1 error(s)"}', "invalid_request"),
        (403, "{}", "not_permitted"),
    ],
)
def test_lines_pnp_refusals_map_to_stable_reasons(status, message, reason):
    """Issue 15: a malformed hash is told apart from nobody reachable, whichever status LINE uses."""
    from tsunagu.notifications.domain import failure_reason

    assert failure_reason(status, message) == reason
