"""Start and stop the whole local stack in one process (moto server runs as a child process).

Ports (environment overrides): HTTP API 3000 (TSUNAGU_PORT), LINE sandbox 3001
(TSUNAGU_SANDBOX_PORT), moto server 5001 (TSUNAGU_MOTO_PORT). State lives in moto's memory:
it does not survive a restart (see README: re-run the demo or your seed script)."""

from __future__ import annotations

import os
import secrets
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import ThreadingHTTPServer
from typing import Any

import boto3

from tsunagu_local.gateway import Gateway
from tsunagu_local.poller import SqsPoller
from tsunagu_local.resources import REGION, Stack, create_resources
from tsunagu_local.runtime import LocalFunction, start_fork_server
from tsunagu_local.sandbox import LineSandbox

HOST = "127.0.0.1"


def _die_with_parent() -> None:
    # Linux: moto server gets SIGTERM when the stack's process dies, even on a crash.
    try:
        import ctypes

        ctypes.CDLL("libc.so.6").prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except OSError:
        pass


def port_free(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex((HOST, port)) != 0


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


@dataclass
class Ports:
    http: int = int(os.environ.get("TSUNAGU_PORT", "3000"))
    sandbox: int = int(os.environ.get("TSUNAGU_SANDBOX_PORT", "3001"))
    moto: int = int(os.environ.get("TSUNAGU_MOTO_PORT", "5001"))

    @classmethod
    def random(cls) -> Ports:
        return cls(free_port(), free_port(), free_port())


@dataclass
class LocalStack:
    ports: Ports = field(default_factory=Ports)
    log_level: str = "INFO"
    metrics: bool = True
    retry_delay: int = 1
    pollers_enabled: bool = True
    operator_key: str = field(default_factory=lambda: os.environ.get("TSUNAGU_OPERATOR_KEY") or "")
    concurrency: int = field(default_factory=lambda: int(os.environ.get("TSUNAGU_LOCAL_CONCURRENCY") or "8"))

    def __post_init__(self) -> None:
        self._moto: subprocess.Popen[bytes] | None = None
        self._servers: list[ThreadingHTTPServer] = []
        self.pollers: list[SqsPoller] = []
        self.sandbox = LineSandbox()
        self.stack: Stack | None = None
        self.functions: dict[str, LocalFunction] = {}

    @property
    def api_url(self) -> str:
        return f"http://{HOST}:{self.ports.http}"

    @property
    def sandbox_url(self) -> str:
        return f"http://{HOST}:{self.ports.sandbox}"

    @property
    def moto_url(self) -> str:
        return f"http://{HOST}:{self.ports.moto}"

    def start(self) -> LocalStack:
        for name, port in (
            ("HTTP API", self.ports.http),
            ("LINE sandbox", self.ports.sandbox),
            ("moto server", self.ports.moto),
        ):
            if not port_free(port):
                raise SystemExit(f"port {port} for the {name} is in use (another local stack running?)")
        self._start_moto()
        try:
            return self._start_rest()
        except BaseException:
            self.stop()
            raise

    def _start_rest(self) -> LocalStack:
        if not self.operator_key:
            self.operator_key = secrets.token_urlsafe(24)
        os.environ.update(
            {
                "AWS_ENDPOINT_URL": self.moto_url,
                "AWS_ACCESS_KEY_ID": "local",
                "AWS_SECRET_ACCESS_KEY": "local",
                "AWS_DEFAULT_REGION": REGION,
                "AWS_REGION": REGION,
                "TSUNAGU_OPERATOR_KEY": self.operator_key,
                "POWERTOOLS_METRICS_DISABLED": "false" if self.metrics else "true",
                # Forward targets on this machine are loopback addresses: let the SSRF guard allow them.
                "TSUNAGU_ALLOW_PRIVATE_FORWARD": "true",
            }
        )
        self.stack = create_resources(
            params={
                "LineApiBaseUrl": self.sandbox_url,
                "LineAccessBaseUrl": self.sandbox_url,
                "PublicBaseUrl": self.api_url,
                "OtpSenderUrl": f"{self.sandbox_url}/_sandbox/otp",
                "LogLevel": self.log_level,
            }
        )
        self._apply_function_environment()
        # One request per instance at a time, instances in worker processes (runtime.py); the cap
        # per function is Lambda's concurrency for it (TSUNAGU_LOCAL_CONCURRENCY, default 8).
        start_fork_server()
        self.functions = {
            lid: LocalFunction(spec, concurrency=self.concurrency, isolation="process")
            for lid, spec in self.stack.functions.items()
        }
        gw = Gateway(
            self.functions,
            control={
                "invoke": self.invoke_schedule,
                "queues": self.queue_depths,
                "drain": self.drain_control,
                "fire-schedules": self.fire_schedules,
            },
        )
        self._serve(gw.serve(HOST, self.ports.http))
        self._serve(self.sandbox.serve(HOST, self.ports.sandbox))
        sqs = boto3.session.Session(region_name=REGION).client("sqs")
        url_by_arn = {self.stack.resolver.attrs[(lid, "Arn")]: url for lid, url in self.stack.queue_urls.items()}
        for fn in self.functions.values() if self.pollers_enabled else ():
            for src in fn.spec.sqs_sources:
                p = SqsPoller(sqs, fn, src, url_by_arn[src["Queue"]], self.retry_delay)
                p.start()
                self.pollers.append(p)
        return self

    def _start_moto(self) -> None:
        self._moto = subprocess.Popen(
            [sys.executable, "-m", "tsunagu_local.moto_server", "-H", HOST, "-p", str(self.ports.moto)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            preexec_fn=_die_with_parent,
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                urllib.request.urlopen(f"{self.moto_url}/moto-api/", timeout=1).close()
                return
            except OSError:
                time.sleep(0.1)
        raise SystemExit("moto server did not start within 30 s")

    def _apply_function_environment(self) -> None:
        # All functions run in this one process, so they share os.environ: the template must not
        # give two functions different values for the same variable.
        assert self.stack
        merged: dict[str, str] = {}
        for spec in self.stack.functions.values():
            for k, v in spec.environment.items():
                if merged.get(k, v) != v:
                    raise SystemExit(f"functions disagree on environment variable {k}")
                merged[k] = v
        os.environ.update(merged)

    def _serve(self, server: ThreadingHTTPServer) -> None:
        self._servers.append(server)
        threading.Thread(target=server.serve_forever, daemon=True).start()

    def function(self, name: str) -> LocalFunction:
        for fn in self.functions.values():
            if name in (fn.name, fn.spec.code_uri.name):
                return fn
        raise KeyError(name)

    def invoke_schedule(self, name: str, body: Any = None) -> Any:
        fn = self.function(name)
        if not fn.spec.schedules:
            raise KeyError(f"{name} has no schedule")
        event = body or {
            "source": "aws.scheduler",
            "detail-type": "Scheduled Event",
            "time": datetime.now(UTC).isoformat(),
            "detail": {},
        }
        return fn.invoke(event)

    def fire_schedules(self, body: Any = None) -> dict[str, Any]:
        """Fire the one-off EventBridge Scheduler entries (campaign launches) now, as their time
        had come: each one's input goes to its SQS target and the schedule is deleted (their
        ActionAfterCompletion). moto keeps schedules but never fires them; this is the local
        invoke. ``body``: {"names": [...]} to fire only some."""
        assert self.stack
        scheduler = boto3.session.Session(region_name=REGION).client("scheduler")
        sqs = boto3.session.Session(region_name=REGION).client("sqs")
        url_by_arn = {self.stack.resolver.attrs[(lid, "Arn")]: url for lid, url in self.stack.queue_urls.items()}
        wanted = set((body or {}).get("names") or [])
        fired = []
        for s in scheduler.list_schedules().get("Schedules", []):
            if wanted and s["Name"] not in wanted:
                continue
            full = scheduler.get_schedule(Name=s["Name"], GroupName=s.get("GroupName", "default"))
            target = full["Target"]
            sqs.send_message(QueueUrl=url_by_arn[target["Arn"]], MessageBody=target.get("Input", "{}"))
            scheduler.delete_schedule(Name=s["Name"], GroupName=s.get("GroupName", "default"))
            fired.append({"name": s["Name"], "expression": full["ScheduleExpression"]})
        return {"fired": fired}

    def queue_depths(self, body: Any = None) -> dict[str, dict[str, int]]:
        assert self.stack
        sqs = boto3.session.Session(region_name=REGION).client("sqs")
        out = {}
        for lid, url in self.stack.queue_urls.items():
            a = sqs.get_queue_attributes(
                QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
            )
            out[lid] = {
                "visible": int(a["Attributes"]["ApproximateNumberOfMessages"]),
                "in_flight": int(a["Attributes"]["ApproximateNumberOfMessagesNotVisible"]),
            }
        return out

    def drain(self, timeout: float = 20.0) -> bool:
        """Wait until every polled queue is empty (DLQs and unconsumed queues aside)."""
        assert self.stack
        polled = {p.queue_url for p in self.pollers}
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            depths = self.queue_depths()
            busy = [
                lid
                for lid, d in depths.items()
                if self.stack.queue_urls[lid] in polled and (d["visible"] or d["in_flight"])
            ]
            if not busy:
                return True
            time.sleep(0.1)
        return False

    def drain_control(self, body: Any = None) -> dict[str, bool]:
        return {"drained": self.drain(float((body or {}).get("timeout", 20)))}

    def stop(self) -> None:
        for p in self.pollers:
            p.stop()
        for s in self._servers:
            s.shutdown()
            s.server_close()
        for fn in self.functions.values():
            fn.close()
        if self._moto:
            self._moto.terminate()
            try:
                self._moto.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self._moto.kill()
