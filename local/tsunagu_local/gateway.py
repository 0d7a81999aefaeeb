"""The HttpApi on localhost: each request becomes an API Gateway HTTP API (payload v2) event
for the function whose route matches, and the function's v2 response becomes the HTTP reply.
Also a small control surface under /_local (trigger a schedule, look at queues)."""

from __future__ import annotations

import base64
import json
import re
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from tsunagu_local.runtime import FunctionError, LocalFunction

TEXT_TYPES = (
    "text/",
    "application/json",
    "application/x-www-form-urlencoded",
    "application/xml",
    "application/javascript",
    "+json",
    "+xml",
)
MAX_BODY = 10 * 1024 * 1024  # API Gateway's payload limit
CHUNKED = -1
DISCARD_IDLE_S = 1.0  # an oversized body: stop reading when the client pauses this long
DISCARD_MAX = 4 * MAX_BODY  # ... or after this much
_DIGITS = re.compile(r"[0-9]{1,100}")


class Server(ThreadingHTTPServer):
    # The stdlib's listen backlog of 5 resets a burst of clients; API Gateway takes them all.
    request_queue_size = 1024
    daemon_threads = True


def _message(text: str) -> bytes:
    return json.dumps({"message": text}).encode()


def read_framing(lengths: list[str] | None, transfer_encoding: str | None) -> int | str:
    """The body's length from the request's framing headers (RFC 9112 6.3): a byte count,
    ``CHUNKED``, or a string saying why the framing is refused (a 400). ``Content-Length``
    must be digits only, every copy the same; it may not come with ``Transfer-Encoding``."""
    if transfer_encoding is not None:
        if lengths:
            return "Content-Length with Transfer-Encoding"
        if transfer_encoding.strip().lower() != "chunked":
            return f"unsupported Transfer-Encoding {transfer_encoding!r}"
        return CHUNKED
    if not lengths:
        return 0
    values = {v.strip() for v in lengths}
    if len(values) != 1:
        return "conflicting Content-Length headers"
    value = values.pop()
    if not _DIGITS.fullmatch(value):
        return f"Content-Length {value!r} is not a byte count"
    return int(value)


def read_chunked(rfile: Any, limit: int) -> bytes | None:
    """A chunked body (RFC 9112 7.1), or None when the chunks are malformed. Stops reading a
    little past ``limit`` (the caller answers 413)."""
    out = bytearray()
    while True:
        line = rfile.readline(1024)
        if not line.endswith(b"\r\n"):
            return None
        size_text = line[:-2].split(b";", 1)[0].strip()
        if not size_text or len(size_text) > 16 or not all(c in b"0123456789abcdefABCDEF" for c in size_text):
            return None
        size = int(size_text, 16)
        if size == 0:
            while True:  # trailers, up to the empty line
                trailer = rfile.readline(8192)
                if trailer in (b"\r\n", b"\n", b""):
                    return bytes(out)
        if len(out) + size > limit:
            return bytes(out) + b"\0" * (limit + 1 - len(out))  # over the limit: 413, not read further
        chunk = rfile.read(size)
        if len(chunk) < size or rfile.read(2) != b"\r\n":
            return None
        out += chunk


def discard(sock: Any, rfile: Any, length: int) -> None:
    """Read and drop up to ``length`` bytes (at most DISCARD_MAX), stopping when the client
    goes quiet for DISCARD_IDLE_S."""
    previous = sock.gettimeout()
    sock.settimeout(DISCARD_IDLE_S)
    try:
        left = min(length, DISCARD_MAX)
        while left > 0:
            chunk = rfile.read1(min(left, 1 << 16))
            if not chunk:
                return
            left -= len(chunk)
    except (TimeoutError, OSError):
        return
    finally:
        try:
            sock.settimeout(previous)
        except OSError:
            pass


class Route:
    def __init__(self, method: str, path: str, fn: LocalFunction):
        self.method, self.path, self.fn = method, path, fn
        pattern = re.sub(r"\{(\w+)\+\}", r"(?P<\1>.+)", path)
        pattern = re.sub(r"\{(\w+)\}", r"(?P<\1>[^/]+)", pattern)
        self.regex = re.compile(f"^{pattern}$")
        segs = path.strip("/").split("/")
        # API Gateway prefers the most specific route: more literal segments first.
        self.priority = (-sum(1 for s in segs if not s.startswith("{")), -len(segs))

    @property
    def route_key(self) -> str:
        return f"{self.method} {self.path}"


def build_v2_event(
    method: str,
    raw_path: str,
    query: str,
    headers: dict[str, str],
    body: bytes,
    route: Route,
    params: dict[str, str],
    source_ip: str,
) -> dict[str, Any]:
    ctype = headers.get("content-type", "")
    is_text = not body or any(t in ctype for t in TEXT_TYPES)
    try:
        text = body.decode() if is_text else None
    except UnicodeDecodeError:
        text = None
    now = datetime.now(UTC)
    qs: dict[str, str] = {}
    for k, v in parse_qsl(query, keep_blank_values=True):
        qs[k] = f"{qs[k]},{v}" if k in qs else v
    event: dict[str, Any] = {
        "version": "2.0",
        "routeKey": route.route_key,
        "rawPath": raw_path,
        "rawQueryString": query,
        "headers": headers,
        "requestContext": {
            "accountId": "123456789012",
            "apiId": "local",
            "domainName": headers.get("host", "127.0.0.1"),
            "domainPrefix": "local",
            "http": {
                "method": method,
                "path": raw_path,
                "protocol": "HTTP/1.1",
                "sourceIp": source_ip,
                "userAgent": headers.get("user-agent", ""),
            },
            "requestId": uuid.uuid4().hex,
            "routeKey": route.route_key,
            "stage": "$default",
            "time": now.strftime("%d/%b/%Y:%H:%M:%S +0000"),
            "timeEpoch": int(now.timestamp() * 1000),
        },
        "isBase64Encoded": text is None and bool(body),
    }
    if "cookie" in headers:
        event["cookies"] = [c.strip() for c in headers["cookie"].split(";")]
    if qs:
        event["queryStringParameters"] = qs
    if params:
        event["pathParameters"] = params
    if body:
        event["body"] = text if text is not None else base64.b64encode(body).decode()
    return event


def to_http(result: Any) -> tuple[int, dict[str, str], bytes]:
    if isinstance(result, dict) and "statusCode" in result:
        headers = {k.lower(): str(v) for k, v in (result.get("headers") or {}).items()}
        for k, vs in (result.get("multiValueHeaders") or {}).items():
            headers[k.lower()] = ", ".join(map(str, vs))
        raw = result.get("body") or ""
        body = base64.b64decode(raw) if result.get("isBase64Encoded") else str(raw).encode()
        cookies = result.get("cookies") or []
        if cookies:
            headers["set-cookie"] = "\n".join(cookies)
        return int(result["statusCode"]), headers, body
    # HTTP API v2 infers a 200 JSON response from any other return value.
    return 200, {"content-type": "application/json"}, json.dumps(result).encode()


class Gateway:
    def __init__(self, functions: dict[str, LocalFunction], control: dict[str, Callable[..., Any]] | None = None):
        self.routes: list[Route] = []
        for fn in functions.values():
            for method, path in fn.spec.http_routes:
                self.routes.append(Route(method, path, fn))
        self.routes.sort(key=lambda r: r.priority)
        self.control = control or {}

    def match(self, method: str, path: str) -> tuple[Route, dict[str, str]] | None:
        for r in self.routes:
            if r.method in (method, "ANY"):
                m = r.regex.match(path)
                if m:
                    return r, m.groupdict()
        return None

    def serve(self, host: str, port: int) -> ThreadingHTTPServer:
        gw = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, fmt: str, *args: Any) -> None:
                return

            def _send(self, status: int, headers: dict[str, str], body: bytes) -> None:
                self.send_response(status)
                for k, v in headers.items():
                    if k == "set-cookie":
                        for c in v.split("\n"):
                            self.send_header("Set-Cookie", c)
                    elif k not in ("content-length", "connection"):
                        self.send_header(k, v)
                if self.close_connection:
                    self.send_header("Connection", "close")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(body)

            def _refuse(self, status: int, message: str) -> None:
                # Framing we cannot trust: answer, then close (the rest of the stream is not a request).
                self.close_connection = True
                self._send(status, {"content-type": "application/json", "connection": "close"}, _message(message))

            def _handle(self) -> None:
                try:
                    self._handle_request()
                except (ConnectionError, TimeoutError):
                    self.close_connection = True
                except Exception as e:  # the gateway's own failure: API Gateway's 500, never a traceback
                    print(f"[gateway] {type(e).__name__}: {e}", flush=True)
                    self._refuse(500, "Internal Server Error")

            def _handle_request(self) -> None:
                url = urlsplit(self.path)
                framing = read_framing(self.headers.get_all("Content-Length"), self.headers.get("Transfer-Encoding"))
                if isinstance(framing, str):
                    self._refuse(400, "Bad Request")
                    return
                if framing == CHUNKED:
                    body = read_chunked(self.rfile, MAX_BODY)
                    if body is None:
                        self._refuse(400, "Bad Request")
                        return
                    if len(body) > MAX_BODY:
                        self._refuse(413, "Request Entity Too Large")
                        return
                elif framing > MAX_BODY:
                    # Read (and drop) what the client sends before answering, so it sees the 413
                    # rather than a broken pipe; give up on a client that stops sending.
                    discard(self.connection, self.rfile, framing)
                    self._refuse(413, "Request Entity Too Large")
                    return
                else:
                    body = self.rfile.read(framing) if framing else b""
                    if len(body) < framing:  # the client closed mid-body
                        self.close_connection = True
                        return
                headers: dict[str, str] = {}
                for k, v in self.headers.items():
                    k = k.lower()
                    headers[k] = f"{headers[k]},{v}" if k in headers else v
                if url.path.startswith("/_local/"):
                    self._send(*gw.control_call(self.command, url.path, body))
                    return
                found = gw.match(self.command, url.path)
                if not found:
                    self._send(404, {"content-type": "application/json"}, b'{"message":"Not Found"}')
                    return
                route, params = found
                event = build_v2_event(
                    self.command, url.path, url.query, headers, body, route, params, self.client_address[0]
                )
                try:
                    result = route.fn.invoke(event)
                    status, out_headers, out = to_http(result)
                except Exception as e:  # a crashed function is API Gateway's 500, as on AWS
                    name = e if isinstance(e, FunctionError) else f"{type(e).__name__}: {e}"
                    print(f"[gateway] {route.fn.name} raised {name}", flush=True)
                    status, out_headers, out = (
                        500,
                        {"content-type": "application/json"},
                        b'{"message":"Internal Server Error"}',
                    )
                self._send(status, out_headers, out)

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = _handle

        server = Server((host, port), Handler)
        server.daemon_threads = True
        return server

    def control_call(self, method: str, path: str, body: bytes) -> tuple[int, dict[str, str], bytes]:
        parts = path.strip("/").split("/")[1:]
        name = parts[0] if parts else ""
        fn = self.control.get(name)
        if fn is None:
            return 404, {"content-type": "application/json"}, b'{"message":"unknown control"}'
        try:
            started = time.monotonic()
            result = fn(*parts[1:], body=json.loads(body) if body else None)
            payload = {"result": result, "ms": round((time.monotonic() - started) * 1000, 1)}
            return 200, {"content-type": "application/json"}, json.dumps(payload, default=str).encode()
        except KeyError as e:
            return 404, {"content-type": "application/json"}, json.dumps({"message": f"unknown {e}"}).encode()
