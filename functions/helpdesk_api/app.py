"""The help desk API: FAQ, operator hours, the operator queue, operator replies (R-HELP-1)."""

from tsunagu import wiring
from tsunagu.api import api_handler, build_resolver
from tsunagu.helpdesk.routes import router as helpdesk

app = build_resolver(helpdesk)
# A missing setting stops the function here, at cold start.
wiring.ready(wiring.account_service, wiring.help_desk)
lambda_handler = api_handler(app)
