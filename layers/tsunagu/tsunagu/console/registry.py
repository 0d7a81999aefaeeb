"""The console's page registry: every page is a ``Page`` (its address, title in the menu, the scope
that may see it, and its actions with the scope each needs). The web layer builds the menu, the
scope checks, the CSRF check and the audit trail from this list, so a page cannot forget them.

Adding a capability's pages (campaigns, help desk, …): write a module that defines ``PAGES``
(a list of ``Page``) and add its dotted name to ``PAGE_MODULES`` below. Nothing else changes."""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from tsunagu.console.domain import Session
    from tsunagu.console.service import StaffService

# The pages, in menu order within each module; a new room adds its module here.
PAGE_MODULES: tuple[str, ...] = (
    "tsunagu.console.pages.dashboard",
    "tsunagu.console.pages.friends",
    "tsunagu.console.pages.members",
    "tsunagu.console.pages.coupons",
    "tsunagu.console.pages.notifications",
    "tsunagu.console.pages.helpdesk",
    "tsunagu.console.pages.billing",
    "tsunagu.console.pages.settings",
)


@dataclass
class Ctx:
    """What a page sees of the request: its account, the staff session, the query, the form."""

    account_id: str
    session: Session
    csrf: str
    rest: str  # the path after the page's key ("" for the page itself)
    query: dict[str, str]
    form: dict[str, str]
    body: bytes
    staff: StaffService

    @property
    def actor(self) -> str:
        return f"staff:{self.session.email}"

    def audit(self, action: str, target: str, detail: dict[str, Any] | None = None) -> None:
        self.staff.record(self.account_id, self.actor, action, target, detail or {})

    def url(self, path: str = "") -> str:
        return f"/console/{self.account_id}/{path}".rstrip("/")


@dataclass(frozen=True)
class Html:
    template: str
    data: dict[str, Any] = field(default_factory=dict)
    status: int = 200


@dataclass(frozen=True)
class Redirect:
    to: str  # a path under the account's console, e.g. "members?ok=unlinked"


@dataclass(frozen=True)
class Json:
    data: Any
    status: int = 200


@dataclass(frozen=True)
class Download:
    body: str
    filename: str


Result = Html | Redirect | Json | Download
View = Callable[[Ctx], Result]


@dataclass(frozen=True)
class Action:
    scope: str  # who may run it (admin may run every action)
    run: View


@dataclass(frozen=True)
class Page:
    key: str  # the address: /console/{accountId}/{key}[/...]
    title: str  # in the menu and the page heading
    scopes: tuple[str, ...]  # who may see it besides admin and read (empty: every staff member)
    view: View
    actions: Mapping[str, Action] = field(default_factory=dict)  # POST …/{key}?do={name} or …/{key}/{rest}
    menu: bool = True


@lru_cache(maxsize=1)
def pages() -> dict[str, Page]:
    out: dict[str, Page] = {}
    for name in PAGE_MODULES:
        for p in importlib.import_module(name).PAGES:
            if p.key in out:
                raise ValueError(f"two console pages use the address {p.key!r}")
            out[p.key] = p
    return out
