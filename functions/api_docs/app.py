"""GET /openapi.json: one document for the whole API, generated from every capability's routers
(and the lean functions' descriptions). Not on any business path, so it may load them all."""

from typing import Any

from tsunagu.accounts.routes import router as accounts
from tsunagu.api import api_handler, build_resolver, openapi_document
from tsunagu.billing.routes import router as billing
from tsunagu.campaigns.routes import router as campaigns
from tsunagu.console.routes import router as console
from tsunagu.coupons.routes import LEAN_OPENAPI
from tsunagu.coupons.routes import router as coupons
from tsunagu.helpdesk.routes import router as helpdesk
from tsunagu.lines.routes import router as lines
from tsunagu.linking.routes import router as members
from tsunagu.messaging.routes import router as messaging
from tsunagu.notifications.routes import router as notifications

app = build_resolver(accounts, messaging, members, notifications, coupons, billing, lines, helpdesk, campaigns, console)


@app.get("/openapi.json")  # type: ignore[untyped-decorator]
def openapi() -> dict[str, Any]:
    doc = openapi_document(app)
    doc["paths"].update(LEAN_OPENAPI)
    return doc


lambda_handler = api_handler(app)
