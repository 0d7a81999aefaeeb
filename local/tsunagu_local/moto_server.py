"""moto server for the local stack, with one change: DynamoDB requests are applied one at a time.

moto's backends are not safe under concurrent requests - two TransactWriteItems racing for the
same item can both pass their conditions (seen in tests/e2e/test_linking.py's race). DynamoDB
guarantees that a conditional write or a transaction is atomic, and the local stack must keep
that promise or "exactly once" cannot be tested on it. So this launcher passes every DynamoDB
request through one lock. Other services are left concurrent: SQS long polls would otherwise
hold the lock for their whole wait.

It also replaces moto's whole-table backup in TransactWriteItems with an undo log of the items
the transaction touches (``tsunagu_local.moto_transactions``), so a transaction costs the same on
a table of 100,000 items as on an empty one. ``TSUNAGU_MOTO_STOCK_TRANSACTIONS=1`` keeps moto's
own (for before/after benchmarks). And it answers Query from the asked partition instead of
sorting the whole table on every query (``tsunagu_local.moto_queries``);
``TSUNAGU_MOTO_STOCK_QUERIES=1`` keeps moto's own.

    python -m tsunagu_local.moto_server -H 127.0.0.1 -p 5001"""

from __future__ import annotations

import argparse
import os
import threading
from collections.abc import Callable, Iterable
from typing import Any

from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app
from moto.server import MotoRequestHandler
from werkzeug.serving import run_simple

from tsunagu_local import moto_queries, moto_transactions

_lock = threading.Lock()


class Serialised:
    def __init__(self, app: Callable[..., Iterable[bytes]]):
        self.app = app

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if not str(environ.get("HTTP_X_AMZ_TARGET", "")).startswith("DynamoDB"):
            return self.app(environ, start_response)
        with _lock:
            # Materialise the body inside the lock: the backend's work happens while iterating.
            return list(self.app(environ, start_response))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("-H", "--host", default="127.0.0.1")
    ap.add_argument("-p", "--port", type=int, default=5001)
    args = ap.parse_args()
    if os.environ.get("TSUNAGU_MOTO_STOCK_TRANSACTIONS") != "1":
        moto_transactions.install()
    if os.environ.get("TSUNAGU_MOTO_STOCK_QUERIES") != "1":
        moto_queries.install()
    app = DomainDispatcherApplication(create_backend_app)
    run_simple(args.host, args.port, Serialised(app), threaded=True, request_handler=MotoRequestHandler)


if __name__ == "__main__":
    main()
