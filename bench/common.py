"""What the benchmarks share: the repository on sys.path, percentiles, and a local stack in a
child process (queue pollers off, so workers don't compete for the CPU with what is measured)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from tsunagu_local.client import request  # noqa: E402
from tsunagu_local.stack import Ports  # noqa: E402

OPERATOR_KEY = "bench-operator-key"


def pct(samples: list[float], p: float) -> float:
    """The p-th percentile (nearest rank) of ``samples``."""
    xs = sorted(samples)
    return xs[min(len(xs) - 1, round(p / 100 * (len(xs) - 1)))]


def start_stack(timeout_s: float = 90) -> tuple[subprocess.Popen[bytes], Ports]:
    """``python -m tsunagu_local serve --no-pollers`` on free ports, once ``/health`` answers."""
    ports = Ports.random()
    env = {
        **os.environ,
        "TSUNAGU_PORT": str(ports.http),
        "TSUNAGU_SANDBOX_PORT": str(ports.sandbox),
        "TSUNAGU_MOTO_PORT": str(ports.moto),
        "TSUNAGU_OPERATOR_KEY": OPERATOR_KEY,
        "POWERTOOLS_METRICS_DISABLED": "true",
    }
    # BENCH_STACK_LOG=path keeps the stack's log (its errors) for a run that went wrong.
    log = open(os.environ["BENCH_STACK_LOG"], "wb") if os.environ.get("BENCH_STACK_LOG") else subprocess.DEVNULL
    proc = subprocess.Popen(
        [sys.executable, "-m", "tsunagu_local", "serve", "--log-level", "ERROR", "--no-pollers"],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            if request("GET", f"http://127.0.0.1:{ports.http}/health", timeout=1).status == 200:
                return proc, ports
        except OSError:
            time.sleep(0.2)
    proc.kill()
    raise SystemExit("local stack did not start")


def stop_stack(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    proc.wait(timeout=10)


@dataclass
class BenchAccount:
    """An account with a sandbox channel on a running local stack, and the stack's addresses."""

    api: str
    sandbox: str
    moto: str
    account_id: str
    auth: dict[str, str]

    def seeder(self) -> Any:
        """A ``tsunagu_local.seed.Seeder`` for this account (batch writes to the moto server)."""
        from tsunagu_local import seed

        ddb, sm = seed.connect(self.moto)
        table = next(t for t in ddb.list_tables()["TableNames"] if "Idempotency" not in t)
        return seed.Seeder(ddb, sm, table, "tsunagu/dev", self.account_id, show_progress=False)


def bench_account(ports: Ports, plan: str = "standard") -> BenchAccount:
    api, sb, moto = (f"http://127.0.0.1:{p}" for p in (ports.http, ports.sandbox, ports.moto))
    r = request(
        "POST", f"{api}/accounts", {"name": "bench", "plan": plan}, headers={"Authorization": f"Bearer {OPERATOR_KEY}"}
    )
    aid, auth = r.json["account_id"], {"Authorization": f"Bearer {r.json['api_key']}"}
    ch = request("POST", f"{sb}/_sandbox/channels", {}).json
    request(
        "PUT",
        f"{api}/accounts/{aid}/channel",
        {"channel_secret": ch["channelSecret"], "access_token": ch["accessToken"]},
        headers=auth,
    )
    return BenchAccount(api, sb, moto, aid, auth)
