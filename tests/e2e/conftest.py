"""The local stack, started once per session in a child process (as `make serve` runs it), on
free ports so it never collides with a stack a developer is running."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import boto3
import pytest

from tsunagu_local.client import request
from tsunagu_local.stack import Ports

OPERATOR_KEY = "e2e-operator-key-0123456789abcdef"


@dataclass
class RunningStack:
    api: str
    sandbox: str
    moto: str
    port: int
    log: Path

    def client(self, service: str):  # type: ignore[no-untyped-def]
        return boto3.client(
            service,
            endpoint_url=self.moto,
            region_name="ap-northeast-1",
            aws_access_key_id="local",
            aws_secret_access_key="local",
        )

    def logs(self) -> str:
        return self.log.read_text(errors="replace")

    def drain(self, timeout: float = 30) -> None:
        r = request("POST", f"{self.api}/_local/drain", {"timeout": timeout}, timeout=timeout + 5)
        assert r.status == 200 and r.json["result"]["drained"], r.text


@pytest.fixture(scope="session")
def local_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningStack]:
    ports = Ports.random()
    log = tmp_path_factory.mktemp("stack") / "stack.log"
    env = {
        **os.environ,
        "TSUNAGU_PORT": str(ports.http),
        "TSUNAGU_SANDBOX_PORT": str(ports.sandbox),
        "TSUNAGU_MOTO_PORT": str(ports.moto),
        "TSUNAGU_OPERATOR_KEY": OPERATOR_KEY,
        "POWERTOOLS_METRICS_DISABLED": "true",
    }
    env.pop("AWS_ENDPOINT_URL", None)
    with open(log, "wb") as fh:
        proc = subprocess.Popen(
            [sys.executable, "-m", "tsunagu_local", "serve", "--log-level", "INFO"],
            stdout=fh,
            stderr=subprocess.STDOUT,
            env=env,
        )
    api = f"http://127.0.0.1:{ports.http}"
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                if request("GET", f"{api}/health", timeout=1).status == 200:
                    break
            except OSError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("local stack did not start:\n" + log.read_text(errors="replace")[-3000:])
            time.sleep(0.2)
        yield RunningStack(api, f"http://127.0.0.1:{ports.sandbox}", f"http://127.0.0.1:{ports.moto}", ports.http, log)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()


@pytest.fixture
def in_process(local_stack: RunningStack, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """tsunagu's services in this test process, on the local stack's moto server and sandbox
    (the server applies DynamoDB requests one at a time, as DynamoDB's conditions do; stock
    in-process moto does not under threads). Yields the table name."""
    from tsunagu import wiring

    table = next(t for t in local_stack.client("dynamodb").list_tables()["TableNames"] if "Idempotency" not in t)
    env = {
        "AWS_ENDPOINT_URL": local_stack.moto,
        "AWS_DEFAULT_REGION": "ap-northeast-1",
        "AWS_ACCESS_KEY_ID": "local",
        "AWS_SECRET_ACCESS_KEY": "local",
        "TABLE_NAME": table,
        "SECRET_PREFIX": "tsunagu/dev",
        "LINE_API_BASE_URL": local_stack.sandbox,
    }
    queues = local_stack.client("sqs").list_queues().get("QueueUrls", [])
    notify = [q for q in queues if q.endswith("-NotificationQueue")]
    if notify:  # the sender re-queues a message LINE answered 429 with a delay (issue 15)
        env["NOTIFICATION_QUEUE_URL"] = notify[0]
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    wiring.reset()
    try:
        yield table
    finally:
        wiring.reset()


def new_account(stack: RunningStack, **settings: object) -> tuple[str, dict[str, str]]:
    """An account with a sandbox channel (no webhook URL): (account id, auth header)."""
    r = request(
        "POST",
        f"{stack.api}/accounts",
        {"name": "e2e", **settings},
        headers={"Authorization": f"Bearer {OPERATOR_KEY}"},
    )
    assert r.status == 201, r.text
    aid, auth = r.json["account_id"], {"Authorization": f"Bearer {r.json['api_key']}"}
    ch = request("POST", f"{stack.sandbox}/_sandbox/channels", {}).json
    creds = {"channel_secret": ch["channelSecret"], "access_token": ch["accessToken"]}
    assert request("PUT", f"{stack.api}/accounts/{aid}/channel", creds, headers=auth).status == 200
    return aid, auth
