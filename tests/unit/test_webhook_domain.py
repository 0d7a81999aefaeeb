"""Signature, envelope and routing rules of webhook intake (line-platform.md 1.2-1.5)."""

import json

import pytest

from tests.conftest import line_event, sign, webhook_body
from tsunagu.errors import BadRequest, InvalidSignature
from tsunagu.intake.webhook import (
    SQS_BATCH_MAX_BYTES,
    batches,
    build_entries,
    parse_envelope,
    route_of,
    signature_for,
    verify_signature,
)

# LINE's official test vector (line-platform.md 1.2).
VECTOR_BODY = b'{"destination":"U8e742f61d673b39c7fff3cecb7536ef0","events":[]}'
VECTOR_SECRET = "8c570fa6dd201bb328f1c1eac23a96d8"
VECTOR_SIGNATURE = "GhRKmvmHys4Pi8DxkF4+EayaH0OqtJtaZxgTD9fMDLs="


def test_lines_official_signature_vector_verifies():
    assert signature_for(VECTOR_BODY, VECTOR_SECRET) == VECTOR_SIGNATURE
    verify_signature(VECTOR_BODY, VECTOR_SIGNATURE, VECTOR_SECRET)


def test_one_byte_change_to_the_body_is_refused():
    tampered = VECTOR_BODY.replace(b"[]", b"[ ]")
    with pytest.raises(InvalidSignature):
        verify_signature(tampered, VECTOR_SIGNATURE, VECTOR_SECRET)


def test_one_character_change_to_the_signature_is_refused():
    forged = "H" + VECTOR_SIGNATURE[1:]
    with pytest.raises(InvalidSignature):
        verify_signature(VECTOR_BODY, forged, VECTOR_SECRET)


@pytest.mark.parametrize("sig", [None, "", "not base64 !!!"])
def test_missing_or_garbled_signature_is_refused(sig):
    with pytest.raises(InvalidSignature):
        verify_signature(VECTOR_BODY, sig, VECTOR_SECRET)


def test_signature_with_another_channels_secret_is_refused():
    with pytest.raises(InvalidSignature):
        verify_signature(VECTOR_BODY, sign("0" * 32, VECTOR_BODY), VECTOR_SECRET)


def test_empty_events_is_a_valid_webhook():
    env = parse_envelope(VECTOR_BODY)
    assert env.events == []
    assert env.destination.startswith("U8e74")


@pytest.mark.parametrize(
    "body",
    [
        b"not json",
        b"[]",
        b'{"events": []}',
        b'{"destination": "U1", "events": {}}',
        b'{"destination": "U1", "events": [{"no": "type"}]}',
        b'{"destination": "U1", "events": [1]}',
        b"\xff\xfe",
    ],
)
def test_a_body_that_is_not_a_line_webhook_is_a_bad_request(body):
    with pytest.raises(BadRequest) as e:
        parse_envelope(body)
    assert e.value.code == "invalid_webhook"


@pytest.mark.parametrize(
    ("kind", "route"),
    [
        ("follow", "friendship"),
        ("unfollow", "friendship"),
        ("message", "message"),
        ("postback", "message"),
        ("accountLink", "account_link"),
        ("delivery", "delivery"),
        ("membership", "other"),
        ("somethingLineAddsNextYear", "other"),
    ],
)
def test_events_are_routed_by_kind_and_unknown_kinds_are_kept(kind, route):
    assert route_of({"type": kind}) == route


def test_each_event_becomes_one_queue_message_with_the_account_and_receipt_time():
    env = parse_envelope(webhook_body(line_event("follow"), line_event("message", message={"type": "text"})))
    entries = build_entries("acct_0123456789abcdef", env, 1_700_000_000_000)
    assert [e.route for e in entries] == ["friendship", "message"]
    msg = json.loads(entries[0].body)
    assert msg["accountId"] == "acct_0123456789abcdef"
    assert msg["receivedAt"] == 1_700_000_000_000
    assert msg["event"]["type"] == "follow"


def test_batches_hold_at_most_ten_entries():
    groups = batches([f"m{i}" for i in range(25)])
    assert [len(g) for g in groups] == [10, 10, 5]


def test_batches_respect_the_256_kib_request_limit():
    big = "x" * (SQS_BATCH_MAX_BYTES // 3 + 1)  # two fit in one request, three do not
    groups = batches([big] * 5)
    assert all(sum(len(b) for b in g) <= SQS_BATCH_MAX_BYTES for g in groups)
    assert sum(len(g) for g in groups) == 5
    assert len(groups) == 3
