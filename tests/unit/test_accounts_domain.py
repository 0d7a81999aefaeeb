"""Account ids, API keys and settings validation."""

import pytest
from pydantic import ValidationError

from tsunagu.accounts.domain import AccountSettings, AccountSettingsPatch, ChannelCredentials
from tsunagu.accounts.ids import (
    api_key_account,
    api_key_matches,
    hash_api_key,
    is_account_id,
    new_account_id,
    new_api_key,
)


def test_api_key_names_its_account_and_only_its_hash_matches():
    aid = new_account_id()
    key = new_api_key(aid)
    assert is_account_id(aid)
    assert api_key_account(key) == aid
    assert api_key_matches(key, hash_api_key(key))
    assert not api_key_matches(key[:-1] + ("A" if key[-1] != "A" else "B"), hash_api_key(key))


@pytest.mark.parametrize("key", ["", "tsk_", "tsk_acct_0123_x", "Bearer x", "tsk_acct_0123456789abcdef_short"])
def test_malformed_keys_name_no_account(key):
    assert api_key_account(key) is None


def test_patch_changes_only_the_fields_it_names():
    cur = AccountSettings(name="shop", greeting="hello")
    new = AccountSettingsPatch(plan="standard").apply_to(cur)
    assert new.plan == "standard"
    assert new.greeting == "hello"
    assert new.name == "shop"


def test_patch_can_clear_the_greeting():
    new = AccountSettingsPatch.model_validate({"greeting": None}).apply_to(AccountSettings(name="s", greeting="hi"))
    assert new.greeting is None


@pytest.mark.parametrize(
    "doc",
    [
        {"plan": "gold"},
        {"account_type": "super"},
        {"unknown_field": 1},
        {"greeting": ""},
        {"auto_responses": [{"keywords": [], "reply": "x"}]},
        {"link_policy": {"accepted": [[]]}},
        {"link_policy": {"accepted": [["fingerprint"]]}},
    ],
)
def test_invalid_settings_are_refused(doc):
    with pytest.raises(ValidationError):
        AccountSettingsPatch.model_validate(doc).apply_to(AccountSettings(name="s"))


def test_channel_credentials_never_print_their_values():
    c = ChannelCredentials(channel_secret="a" * 32, access_token="t" * 40)
    assert "aaaa" not in repr(c) and "tttt" not in str(c)


@pytest.mark.parametrize("secret", ["A" * 32, "a" * 31, "g" * 32])
def test_channel_secret_must_be_32_lowercase_hex(secret):
    with pytest.raises(ValidationError):
        ChannelCredentials(channel_secret=secret, access_token="t" * 40)
