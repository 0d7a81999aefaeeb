"""Fail fast on configuration: a function whose environment lacks a required setting stops while
it initialises, with the variable's name, instead of answering its first request with a 500."""

from __future__ import annotations

import importlib.util
import uuid
from pathlib import Path

import pytest

from tsunagu import config, wiring
from tsunagu.config import MissingSetting, Settings

ROOT = Path(__file__).resolve().parents[2]
# Functions that touch no table: the liveness check, the API document, the relay to other tools.
NO_TABLE = {"health", "api_docs", "webhook_forwarder"}
ALL = sorted(p.parent.name for p in (ROOT / "functions").glob("*/app.py"))
FUNCTIONS = [f for f in ALL if f not in NO_TABLE]
FULL_ENV = {
    "TABLE_NAME": "t",
    "IDEMPOTENCY_TABLE_NAME": "i",
    "FRIENDSHIP_QUEUE_URL": "q1",
    "MESSAGE_QUEUE_URL": "q2",
    "ACCOUNT_LINK_QUEUE_URL": "q3",
    "DELIVERY_QUEUE_URL": "q4",
    "OTHER_EVENTS_QUEUE_URL": "q5",
    "FORWARD_QUEUE_URL": "q6",
    "NOTIFICATION_QUEUE_URL": "q7",
    "CAMPAIGN_QUEUE_URL": "q8",
    "CAMPAIGN_QUEUE_ARN": "arn:aws:sqs:ap-northeast-1:123456789012:q8",
    "CAMPAIGN_SCHEDULER_ROLE_ARN": "arn:aws:iam::123456789012:role/r",
    "OPERATOR_KEY_SECRET_ID": "s",
}


def load(name: str) -> None:
    spec = importlib.util.spec_from_file_location(f"cfg_{name}_{uuid.uuid4().hex}", ROOT / f"functions/{name}/app.py")
    assert spec and spec.loader
    spec.loader.exec_module(importlib.util.module_from_spec(spec))


@pytest.fixture
def environment(monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    def set_env(env: dict[str, str]) -> None:
        for k in FULL_ENV:
            monkeypatch.delenv(k, raising=False)
        monkeypatch.delenv("TSUNAGU_OPERATOR_KEY", raising=False)
        for k, v in env.items():
            monkeypatch.setenv(k, v)
        config.get_settings.cache_clear()
        wiring.reset()

    yield set_env
    config.get_settings.cache_clear()
    wiring.reset()


@pytest.mark.parametrize("name", FUNCTIONS)
def test_a_function_without_its_table_stops_at_cold_start_naming_the_variable(environment, name: str) -> None:
    environment({k: v for k, v in FULL_ENV.items() if k != "TABLE_NAME"})
    with pytest.raises(MissingSetting, match="TABLE_NAME"):
        load(name)


@pytest.mark.parametrize("name", ALL)
def test_a_function_with_its_settings_initialises(environment, name: str) -> None:
    environment(FULL_ENV)
    load(name)


def test_the_webhook_intake_needs_every_fan_out_queue(environment) -> None:
    environment({k: v for k, v in FULL_ENV.items() if k != "DELIVERY_QUEUE_URL"})
    with pytest.raises(MissingSetting, match="DELIVERY_QUEUE_URL"):
        load("webhook_intake")


def test_the_accounts_api_needs_the_operator_key_secret_outside_the_local_stack(environment) -> None:
    environment({k: v for k, v in FULL_ENV.items() if k != "OPERATOR_KEY_SECRET_ID"})
    with pytest.raises(MissingSetting, match="OPERATOR_KEY_SECRET_ID"):
        load("accounts_api")


def test_settings_with_a_default_are_not_required() -> None:
    s = Settings.from_env({"TABLE_NAME": "t"})
    assert s.required("table_name") == "t"
    assert s.line_api_base_url == "https://api.line.me"
    with pytest.raises(MissingSetting, match="NOTIFICATION_QUEUE_URL"):
        s.required("notification_queue_url")
