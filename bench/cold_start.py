"""Cold start per function: a fresh interpreter's import + initialisation of each
``functions/<name>/app.py`` (median of N runs), with and without ``.pyc``, next to a bare
``import boto3`` measured the same way in the same run. Also the built size per function
(from ``.aws-sam/build`` when ``make build`` has run).

    python bench/cold_start.py [--runs 9]

Interpreter start-up itself is excluded (it is the same for every function); what is timed
is the code between "interpreter ready" and "handler ready"."""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FUNCTIONS = sorted(p.name for p in (ROOT / "functions").iterdir() if (p / "app.py").exists())

# What the template gives every function (values don't matter: init touches no AWS service).
ENV = {
    "STAGE": "dev",
    "TABLE_NAME": "t",
    "IDEMPOTENCY_TABLE_NAME": "i",
    "LINE_API_BASE_URL": "http://127.0.0.1:9",
    "SECRET_PREFIX": "tsunagu/dev",
    "TRACING_ENABLED": "false",
    "POWERTOOLS_SERVICE_NAME": "tsunagu",
    "POWERTOOLS_METRICS_NAMESPACE": "tsunagu",
    "AWS_DEFAULT_REGION": "ap-northeast-1",
    "AWS_ACCESS_KEY_ID": "x",
    "AWS_SECRET_ACCESS_KEY": "x",
    "FRIENDSHIP_QUEUE_URL": "q",
    "MESSAGE_QUEUE_URL": "q",
    "ACCOUNT_LINK_QUEUE_URL": "q",
    "DELIVERY_QUEUE_URL": "q",
    "OTHER_EVENTS_QUEUE_URL": "q",
    "FORWARD_QUEUE_URL": "q",
    "NOTIFICATION_QUEUE_URL": "q",
    "OPERATOR_KEY_SECRET_ID": "s",
}

SNIPPET = """
import time
t0 = time.{clock}()
{body}
print((time.{clock}() - t0) * 1000)
"""

# The least an API function can import with this stack: boto3, Powertools' Logger and Metrics,
# its HTTP resolver with request validation (which brings pydantic) and the OpenAPI parameter
# markers the routes are annotated with. Timed beside the functions, it shows how much of an API
# function's start is ours.
FLOOR = """import boto3
from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.event_handler import APIGatewayHttpResolver
from aws_lambda_powertools.event_handler.openapi.params import Body
APIGatewayHttpResolver(enable_validation=True)"""


# The AWS clients each function's adapters create on first use.
CLIENTS = {
    "accounts_api": ["dynamodb", "secretsmanager"],
    "notifications_api": ["dynamodb", "secretsmanager", "sqs"],
    "coupons_api": ["dynamodb", "secretsmanager"],
    "billing_api": ["dynamodb", "secretsmanager"],
    "webhook_intake": ["secretsmanager", "sqs"],
    "friendship_worker": ["dynamodb", "secretsmanager"],
    "message_worker": ["dynamodb", "secretsmanager"],
    "friend_stats": ["dynamodb"],
    "link_page": ["dynamodb", "secretsmanager"],
    "account_link_worker": ["dynamodb", "secretsmanager"],
    "event_store": ["dynamodb"],
    "notification_sender": ["dynamodb", "secretsmanager"],
    "notification_sweep": ["dynamodb"],
    "coupon_redemption": ["dynamodb", "secretsmanager"],
    "coupon_page": ["dynamodb", "secretsmanager"],
    "billing_rollup": ["dynamodb", "secretsmanager"],
}


def body_for(target: str, with_clients: bool = False) -> str:
    if target == "boto3":
        return "import boto3"
    if target == "floor":
        return FLOOR
    path = ROOT / "functions" / target / "app.py"
    code = (
        f"import importlib.util\ns = importlib.util.spec_from_file_location('app', {str(path)!r})\n"
        "m = importlib.util.module_from_spec(s)\ns.loader.exec_module(m)"
    )
    if with_clients and CLIENTS.get(target):
        code += "\nfrom tsunagu.infrastructure.aws import client\n" + "\n".join(
            f"client({c!r})" for c in CLIENTS[target]
        )
    return code


@dataclass
class Cell:
    """One thing to time: a target, with or without .pyc, with or without its clients."""

    target: str
    pyc: bool
    with_clients: bool = False
    extra_env: dict[str, str] = field(default_factory=dict)
    clock: str = "perf_counter"
    samples: list[float] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.env = {**os.environ, **ENV, **self.extra_env, "PYTHONPYCACHEPREFIX": tempfile.mkdtemp(prefix="pyc-")}
        self.code = SNIPPET.format(clock=self.clock, body=body_for(self.target, self.with_clients))
        if self.pyc:
            self.env.pop("PYTHONDONTWRITEBYTECODE", None)
            subprocess.run([sys.executable, "-c", self.code], env=self.env, check=True, capture_output=True)
        else:
            self.env["PYTHONDONTWRITEBYTECODE"] = "1"

    def sample(self) -> None:
        out = subprocess.run(
            [sys.executable, "-c", self.code], env=self.env, check=True, capture_output=True, text=True
        )
        self.samples.append(float(out.stdout.strip().splitlines()[-1]))

    @property
    def median(self) -> float:
        return statistics.median(self.samples)


def measure_all(cells: list[Cell], runs: int) -> None:
    # Interleaved rounds: every cell is sampled once per round, so drift on a shared, noisy
    # machine hits the baseline and the functions alike.
    for _ in range(runs):
        for c in cells:
            c.sample()


def size_kib(path: Path) -> float | None:
    if not path.exists():
        return None
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) / 1024


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=9)
    ap.add_argument("--json", action="store_true")
    ap.add_argument(
        "--clock",
        choices=["wall", "cpu"],
        default="wall",
        help="wall: perf_counter; cpu: the process's CPU time (steadier when other work shares the cores)",
    )
    args = ap.parse_args()
    build = ROOT / ".aws-sam" / "build"
    layer = size_kib(build / "SharedLayer")
    # functions/<snake_name> is the template's <CamelName>Function
    logical = {n: "".join(w.capitalize() for w in n.split("_")) + "Function" for n in FUNCTIONS}
    clock = "process_time" if args.clock == "cpu" else "perf_counter"
    base_pyc, base_src = Cell("boto3", True, clock=clock), Cell("boto3", False, clock=clock)
    cells: dict[tuple[str, str], Cell] = {("boto3", "pyc"): base_pyc, ("boto3", "src"): base_src}
    cells[("floor", "pyc")] = Cell("floor", True, clock=clock)
    cells[("floor", "src")] = Cell("floor", False, clock=clock)
    for name in FUNCTIONS:
        cells[(name, "pyc")] = Cell(name, True, clock=clock)
        cells[(name, "src")] = Cell(name, False, clock=clock)
        if CLIENTS.get(name):
            cells[(name, "clients")] = Cell(name, True, with_clients=True, clock=clock)
    cells[("traced", "pyc")] = Cell("webhook_intake", True, extra_env={"TRACING_ENABLED": "true"}, clock=clock)
    measure_all(list(cells.values()), args.runs)

    def med(name: str, kind: str) -> float | None:
        c = cells.get((name, kind))
        return c.median if c else None

    rows: list[tuple[str, float, float | None, float | None, float | None]] = [
        ("import boto3 (baseline)", base_pyc.median, base_src.median, None, None),
        (
            "floor: boto3 + Powertools resolver with validation + Logger/Metrics",
            med("floor", "pyc") or 0.0,
            med("floor", "src"),
            None,
            None,
        ),
    ]
    for name in FUNCTIONS:
        size = size_kib(build / logical[name]) if name in logical else None
        rows.append((name, cells[(name, "pyc")].median, med(name, "src"), med(name, "clients"), size))
    rows.append(("webhook_intake, TRACING_ENABLED=true", cells[("traced", "pyc")].median, None, None, None))
    base_pyc_ms, base_src_ms = base_pyc.median, base_src.median
    if args.json:
        print(json.dumps(rows))
        return
    print(
        f"runs per cell: {args.runs} (median, {args.clock} clock); python {sys.version.split()[0]}; layer size "
        f"{f'{layer:,.0f} KiB' if layer else 'n/a (run make build)'}"
    )
    print(
        "| function | init, .pyc (ms) | × boto3 | init, no .pyc (ms) | × boto3 "
        "| init + its AWS clients, .pyc (ms) | × boto3 | code size (KiB) |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for name, pyc, src, clients, size in rows:
        src_s = f"{src:.0f} | {src / base_src_ms:.2f}" if src is not None else "– | –"
        cl_s = f"{clients:.0f} | {clients / base_pyc_ms:.2f}" if clients is not None else "– | –"
        size_s = f"{size:.1f}" if size is not None else "–"
        print(f"| {name} | {pyc:.0f} | {pyc / base_pyc_ms:.2f} | {src_s} | {cl_s} | {size_s} |")


if __name__ == "__main__":
    main()
