"""Query for moto that reads one partition instead of sorting the whole table.

Stock moto (5.2.5) answers every ``Query`` - on the table and on a secondary index alike - by
calling ``Table.all_items()``, which collects **every item of the table and sorts them all**
(comparing ``DynamoType`` values through ``cast_value``), and only then keeps the items of the
asked partition. The cost of a one-item query therefore grows with the table: on the local stack
with ≈2,000 chat lines a console page of 21 requests took 2.5 s, 90 % of it in that sort
(cProfile: 880,000 ``cast_value`` calls for one page). The console benchmark of issue 20 and the
realistic-size runs of issue 21 need the local stack to stay fast at 100,000 items.

This module leaves moto's query algorithm untouched and changes only what ``all_items()`` hands
to it while a query runs (a thread-local scope set by the wrapped ``Table.query``):

- a **table query** gets the asked partition only (``Table.items[hash_key]``), in the order stock
  moto would have produced (sorted by hash and range key) - exactly the items moto's own filter
  ``item.hash_key == hash_key`` keeps;
- an **index query** gets the items whose string-typed index hash attributes equal the asked
  values, again in stock order. moto's own loop then applies every condition as before, so the
  pre-filter can only drop items moto would have dropped (a string ``DynamoType`` compares by its
  value); conditions on non-string attributes are left to moto.

Everything else (Scan, GetItem, expressions, pagination, projections) is stock. ``install()``
checks the fingerprints of the two methods it wraps and keeps stock behaviour on a moto that
changed them. The differential test (tests/integration/test_moto_queries.py) runs a corpus of
queries against stock and patched moto and compares every answer."""

from __future__ import annotations

import hashlib
import inspect
import logging
import threading
from contextlib import AbstractContextManager
from typing import Any

from moto.dynamodb.models.dynamo_type import DynamoType, Item
from moto.dynamodb.models.table import Table

from tsunagu_local.patching import patched

log = logging.getLogger(__name__)

STOCK_QUERY = Table.query
STOCK_ALL_ITEMS = Table.all_items
# sha256 of inspect.getsource(...) in moto 5.2.5.
STOCK_FINGERPRINTS = {
    "query": "002b4d00be6df07cf37f6cbe0132e5eb89455ae12a8e79b23db3fb492450f21e",
    "all_items": "c80d2ee3c896acd0cab6ca35aaeae3ab3fb65858933f8a3403d4e027c240f31d",
}
_SIGNATURE = inspect.signature(STOCK_QUERY)
_scope = threading.local()


def fingerprint(fn: Any) -> str:
    return hashlib.sha256(inspect.getsource(fn).encode()).hexdigest()


def _stock_order(items: list[Item]) -> list[Item]:
    # The key stock ``all_items`` sorts by.
    return sorted(items, key=lambda x: (x.hash_key, x.range_key) if x.range_key else x.hash_key)


def query(self: Table, *args: Any, **kwargs: Any) -> Any:
    bound = _SIGNATURE.bind(self, *args, **kwargs)
    a = bound.arguments
    _scope.query = (self, a.get("index_name"), a.get("hash_key"), a.get("hash_key_conditions"))
    try:
        return STOCK_QUERY(*bound.args, **bound.kwargs)
    finally:
        _scope.query = None


def all_items(self: Table) -> list[Item]:
    scope = getattr(_scope, "query", None)
    if scope is None or scope[0] is not self:
        return STOCK_ALL_ITEMS(self)
    _, index_name, hash_key, conditions = scope
    if not index_name:
        if hash_key is None:
            return STOCK_ALL_ITEMS(self)
        part = self.items.get(hash_key)  # a defaultdict: .get never creates a partition
        if part is None:
            return []
        return _stock_order(list(part.values()) if self.range_key_attr else [part])
    wanted = [(name, v.value) for name, v in (conditions or []) if isinstance(v, DynamoType) and v.type == "S"]
    if not wanted:
        return STOCK_ALL_ITEMS(self)
    out: list[Item] = []
    for part in self.items.values():
        for item in part.values() if self.range_key_attr else [part]:
            attrs = item.attrs
            for name, value in wanted:
                got = attrs.get(name)
                if got is None or got.type != "S" or got.value != value:
                    break
            else:
                out.append(item)
    return _stock_order(out)


def install() -> bool:
    """Patch moto's Table in this process. False (and stock behaviour) if the installed moto's
    ``Table.query`` or ``Table.all_items`` is not the one this module was written against."""
    if Table.query is query:
        return True
    if fingerprint(STOCK_QUERY) != STOCK_FINGERPRINTS["query"] or (
        fingerprint(STOCK_ALL_ITEMS) != STOCK_FINGERPRINTS["all_items"]
    ):
        log.warning("moto's Table.query changed; keeping its whole-table sort")
        return False
    Table.query = query  # type: ignore[method-assign]
    Table.all_items = all_items  # type: ignore[method-assign]
    return True


def uninstall() -> None:
    Table.query = STOCK_QUERY  # type: ignore[method-assign]
    Table.all_items = STOCK_ALL_ITEMS  # type: ignore[method-assign]


def installed() -> bool:
    return Table.query is query


def stock_queries() -> AbstractContextManager[None]:
    """Run a block with moto's own query (benchmarks and the differential test)."""
    return patched(install, uninstall, installed, False, "Table.query")


def partition_queries() -> AbstractContextManager[None]:
    return patched(install, uninstall, installed, True, "Table.query")
