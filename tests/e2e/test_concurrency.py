"""The local stack under overlapping requests behaves like Lambda behind API Gateway: every
request gets its own answer (one request per handler instance at a time), and the gateway copes
with malformed framing, oversized bodies and a burst of clients (issue 15, item 4)."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from tests.e2e.conftest import OPERATOR_KEY, RunningStack, new_account
from tsunagu_local.client import request

pytestmark = pytest.mark.e2e

THREADS = 24
ROUNDS = 10  # each round: one request of each of the five kinds per thread slot


def _check_get(stack: RunningStack, aid: str, auth: dict[str, str], i: int) -> str | None:
    r = request("GET", f"{stack.api}/accounts/{aid}", headers=auth, timeout=60)
    if r.status != 200:
        return f"GET account {r.status} {r.text[:120]}"
    if r.json.get("account_id") != aid or r.json["settings"]["name"] != "concurrency":
        return f"GET account body {r.text[:120]}"
    return None


def _check_create(stack: RunningStack, aid: str, auth: dict[str, str], i: int) -> str | None:
    name = f"created-{i}"
    r = request(
        "POST", f"{stack.api}/accounts", {"name": name}, headers={"Authorization": f"Bearer {OPERATOR_KEY}"}, timeout=60
    )
    if r.status != 201:
        return f"POST accounts {r.status} {r.text[:120]}"
    if r.json["settings"]["name"] != name or not r.json.get("api_key") or r.json["account_id"] == aid:
        return f"POST accounts body {r.text[:120]}"
    return None


def _check_forecast(stack: RunningStack, aid: str, auth: dict[str, str], i: int) -> str | None:
    n = 1 + i % 400  # the communication plan's 200 free messages: below and above it
    r = request("POST", f"{stack.api}/accounts/{aid}/forecast", {"messages": n}, headers=auth, timeout=60)
    if r.status != 200:
        return f"forecast {r.status} {r.text[:120]}"
    if (r.json.get("sendable"), r.json.get("blocked")) != (min(n, 200), max(0, n - 200)):
        return f"forecast body for {n}: {r.text[:160]}"
    return None


def _check_import(stack: RunningStack, aid: str, auth: dict[str, str], i: int) -> str | None:
    member = 1_000_000 + i
    csv_body = f"member_number,phone,birth_date\n{member},090{member:08d},19710401\n".encode()
    r = request(
        "POST",
        f"{stack.api}/accounts/{aid}/members/import",
        data=csv_body,
        headers={**auth, "Content-Type": "text/csv"},
        timeout=60,
    )
    if r.status != 200:
        return f"CSV import {r.status} {r.text[:120]}"
    if r.json.get("imported") != 1:
        return f"CSV import body {r.text[:120]}"
    return None


def _check_patch(stack: RunningStack, aid: str, auth: dict[str, str], i: int) -> str | None:
    days = 30 + i
    r = request("PATCH", f"{stack.api}/accounts/{aid}", {"chat_retention_days": days}, headers=auth, timeout=60)
    if r.status != 200:
        return f"PATCH {r.status} {r.text[:120]}"
    # Each thread PATCHes an account of its own (one at a time): the answer is exactly this change.
    if r.json.get("account_id") != aid or r.json["settings"]["chat_retention_days"] != days:
        return f"PATCH body {r.text[:120]}"
    return None


KINDS: list[Callable[[RunningStack, str, dict[str, str], int], str | None]] = [
    _check_get,
    _check_create,
    _check_forecast,
    _check_import,
    _check_patch,
]


def test_overlapping_requests_of_different_kinds_each_get_their_own_answer(local_stack: RunningStack):
    aid, auth = new_account(local_stack, plan="communication")
    assert request("PATCH", f"{local_stack.api}/accounts/{aid}", {"name": "concurrency"}, headers=auth).status == 200
    # An account per thread for the PATCHes: two PATCHes of one account at once may rightly be
    # answered 409 concurrent_update (optimistic locking), and the GETs expect a fixed name.
    patch_accounts = [new_account(local_stack) for _ in range(THREADS)]
    jobs: list[tuple[Callable[..., str | None], str, dict[str, str], int]] = []
    for i in range(THREADS * ROUNDS):
        kind = KINDS[i % len(KINDS)]
        a, h = patch_accounts[i % THREADS] if kind is _check_patch else (aid, auth)
        jobs.append((kind, a, h, i))
    barrier = threading.Barrier(THREADS)

    def run(slot: int) -> list[str]:
        barrier.wait()  # every thread starts together: the requests overlap from the first one
        wrong = []
        for kind, a, h, i in jobs[slot::THREADS]:
            problem = kind(local_stack, a, h, i)
            if problem:
                wrong.append(problem)
        return wrong

    started = time.monotonic()
    with ThreadPoolExecutor(THREADS) as pool:
        wrong = [w for ws in pool.map(run, range(THREADS)) for w in ws]
    elapsed = time.monotonic() - started
    print(f"{len(jobs)} requests from {THREADS} threads in {elapsed:.1f} s; {len(wrong)} wrong answers")
    assert wrong == [], f"{len(wrong)} of {len(jobs)} answers wrong, e.g. {wrong[:5]}"


def _raw(stack: RunningStack, payload: bytes, timeout: float = 10) -> bytes:
    """Send bytes on a fresh connection and read until the server closes it or answers."""
    with socket.create_connection(("127.0.0.1", stack.port), timeout=timeout) as s:
        s.sendall(payload)
        out = b""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                chunk = s.recv(65536)
            except (ConnectionResetError, TimeoutError) as e:  # pragma: no cover - the failure being tested
                raise AssertionError(f"connection broke after {out[:200]!r}: {e}") from e
            if not chunk:
                break
            out += chunk
            if b"\r\n\r\n" in out:
                head, _, rest = out.partition(b"\r\n\r\n")
                length = next(
                    (int(h.split(b":", 1)[1]) for h in head.split(b"\r\n") if h.lower().startswith(b"content-length:")),
                    0,
                )
                if len(rest) >= length:
                    break
        return out


def _status_and_json(raw: bytes) -> tuple[int, Any]:
    head, _, body = raw.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 "), raw[:200]
    return int(head.split(b" ", 2)[1]), json.loads(body) if body else None


@pytest.mark.parametrize("length", [b"abc", b"-1", b"1e3", b" ", b"12, 13", b"99999999999999999999999"])
def test_malformed_content_length_is_a_400(local_stack: RunningStack, length: bytes):
    raw = _raw(
        local_stack,
        b"PATCH /accounts/x HTTP/1.1\r\nHost: local\r\nContent-Type: application/json\r\nContent-Length: "
        + length
        + b"\r\n\r\n{}",
    )
    status, body = _status_and_json(raw)
    if length == b"99999999999999999999999":
        assert status == 413, raw[:300]
    else:
        assert status == 400, raw[:300]
        assert body["message"] == "Bad Request"


def test_conflicting_content_lengths_and_chunked_bodies_are_refused(local_stack: RunningStack):
    raw = _raw(
        local_stack,
        b"POST /accounts HTTP/1.1\r\nHost: local\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\n{}",
    )
    assert _status_and_json(raw)[0] == 400
    # API Gateway reads chunked bodies; the local gateway does too.
    chunked = b'{"name":"chunked"}'
    raw = _raw(
        local_stack,
        b"POST /accounts HTTP/1.1\r\nHost: local\r\nConnection: close\r\nContent-Type: application/json\r\n"
        b"Authorization: Bearer " + OPERATOR_KEY.encode() + b"\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"%x\r\n" % len(chunked) + chunked + b"\r\n0\r\n\r\n",
    )
    status, body = _status_and_json(raw)
    assert status == 201 and body["settings"]["name"] == "chunked", raw[:300]


def test_an_oversized_body_is_read_before_its_413(local_stack: RunningStack):
    size = 10 * 1024 * 1024 + 1
    with socket.create_connection(("127.0.0.1", local_stack.port), timeout=30) as s:
        s.sendall(
            b"POST /accounts HTTP/1.1\r\nHost: local\r\nContent-Type: application/json\r\n"
            b"Content-Length: %d\r\n\r\n" % size
        )
        block = b"x" * 65536
        sent = 0
        while sent < size:  # a broken pipe here is the bug: the gateway answered without reading
            chunk = block[: size - sent]
            s.sendall(chunk)
            sent += len(chunk)
        out = b""
        while b"\r\n\r\n" not in out:
            chunk = s.recv(65536)
            if not chunk:
                break
            out += chunk
    assert out.startswith(b"HTTP/1.1 413"), out[:200]


def test_a_hundred_concurrent_clients_without_a_reset(local_stack: RunningStack):
    clients = 100
    barrier = threading.Barrier(clients)

    def one(_: int) -> str:
        barrier.wait()
        try:
            with socket.create_connection(("127.0.0.1", local_stack.port), timeout=60) as s:
                s.sendall(b"GET /health HTTP/1.1\r\nHost: local\r\nConnection: close\r\n\r\n")
                out = b""
                while chunk := s.recv(65536):
                    out += chunk
            return out.split(b"\r\n", 1)[0].decode()
        except OSError as e:
            return f"{type(e).__name__}: {e}"

    with ThreadPoolExecutor(clients) as pool:
        answers = list(pool.map(one, range(clients)))
    assert answers == ["HTTP/1.1 200 OK"] * clients, [a for a in answers if a != "HTTP/1.1 200 OK"][:5]
