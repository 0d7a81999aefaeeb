"""The samples in events/ match the template and work with the real handlers."""

from __future__ import annotations

import json
from pathlib import Path

import boto3
import pytest

from tsunagu.infrastructure.secrets import SecretsManagerChannelSecrets
from tsunagu_local.cfn import load_template
from tsunagu_local.resources import ROOT, TEMPLATE

EVENTS = ROOT / "events"
SAMPLE_SECRET = "8c570fa6dd201bb328f1c1eac23a96d8"


def load(name: str) -> dict:
    return json.loads((EVENTS / name).read_text())


@pytest.mark.parametrize("path", sorted(EVENTS.glob("*.json")), ids=lambda p: p.name)
def test_every_http_sample_names_a_route_of_the_template(path: Path):
    ev = json.loads(path.read_text())
    if ev.get("version") != "2.0":
        return
    t = load_template(TEMPLATE)
    routes = {
        f"{e['Properties']['Method']} {e['Properties']['Path']}"
        for r in t["Resources"].values()
        if r["Type"] == "AWS::Serverless::Function"
        for e in r["Properties"].get("Events", {}).values()
        if e["Type"] == "HttpApi"
    }
    assert ev["routeKey"] in routes


def test_sample_webhook_verifies_and_fans_out(api, stack):
    SecretsManagerChannelSecrets("tsunagu/dev").put("acct_0123456789abcdef", SAMPLE_SECRET, "t" * 40)
    r = api.functions["WebhookIntakeFunction"].invoke(load("webhook_follow.json"))
    assert r["statusCode"] == 200
    msgs = boto3.client("sqs").receive_message(QueueUrl=stack.queue_urls["FriendshipQueue"], MaxNumberOfMessages=10)
    assert len(msgs["Messages"]) == 1


def test_sample_sqs_batch_is_processed_without_failures(api):
    assert api.functions["FriendshipWorkerFunction"].invoke(load("sqs_friendship.json")) == {"batchItemFailures": []}


def test_sample_health_and_schedule_events_run(api):
    assert api.functions["HealthFunction"].invoke(load("health.json"))["statusCode"] == 200
    assert api.functions["FriendStatsFunction"].invoke(load("schedule_friend_stats.json")) == {"accounts": 0}
