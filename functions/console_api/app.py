"""The console's staff in the business API: invite, list, disable, the staff audit trail."""

from tsunagu import wiring
from tsunagu.api import api_handler, build_resolver
from tsunagu.console.routes import router as console

app = build_resolver(console)
# A missing setting stops the function here, at cold start.
wiring.ready(wiring.account_service, wiring.staff_service)
lambda_handler = api_handler(app)
