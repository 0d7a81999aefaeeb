"""Webhook forwarding's SSRF guard and what intake keeps at rest."""

import pytest

from tests.conftest import line_event
from tsunagu.errors import ValidationFailed
from tsunagu.intake.forwarding import check_target
from tsunagu.intake.webhook import redacted_for_storage


@pytest.mark.parametrize(
    "ip", ["127.0.0.1", "10.0.0.5", "172.16.3.4", "192.168.1.1", "169.254.169.254", "::1", "fd00::1", "0.0.0.0"]
)
def test_forwarding_to_internal_addresses_is_refused(ip):
    with pytest.raises(ValidationFailed) as e:
        check_target("https://tool.example.com/hook", [ip], allow_private=False)
    assert e.value.code == "forward_url_forbidden"


def test_forwarding_to_a_public_https_host_is_allowed():
    check_target("https://tool.example.com/hook", ["8.8.8.8"], allow_private=False)


def test_plain_http_is_refused_outside_local_mode():
    with pytest.raises(ValidationFailed):
        check_target("http://tool.example.com/hook", ["8.8.8.8"], allow_private=False)
    check_target("http://127.0.0.1:3001/hook", ["127.0.0.1"], allow_private=True)


def test_unresolvable_host_is_refused():
    with pytest.raises(ValidationFailed) as e:
        check_target("https://nowhere.invalid/", [], allow_private=False)
    assert e.value.code == "forward_url_unresolved"


def test_stored_events_lose_reply_tokens_nonces_and_hashed_phones():
    link = redacted_for_storage(line_event("accountLink", replyToken="tok", link={"result": "ok", "nonce": "n0nce"}))
    assert "replyToken" not in link and link["link"] == {"result": "ok", "nonce": "[redacted]"}
    hashed = "d41e0ad70dddfeb68f149ad6fc61574b9c5780ab7bcb2fba5517771ffbb2409c"
    delivery = redacted_for_storage(line_event("delivery", delivery={"data": hashed}))
    assert hashed not in str(delivery)
    tagged = redacted_for_storage(line_event("delivery", delivery={"data": "batch-42-item-0007-tag"}))
    assert tagged["delivery"]["data"] == "batch-42-item-0007-tag"
