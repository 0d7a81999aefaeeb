"""The accounts API: accounts (create, settings, channel credentials), friends and chats, the
member register and its links. Routes live in their capabilities; this function only includes them."""

from tsunagu import wiring
from tsunagu.accounts.routes import router as accounts
from tsunagu.api import api_handler, build_resolver
from tsunagu.linking.routes import router as members
from tsunagu.messaging.routes import router as messaging

app = build_resolver(accounts, messaging, members)
# A missing setting stops the function here, at cold start.
wiring.ready(
    wiring.account_service, wiring.operator_key, wiring.friend_query, wiring.chat_export, wiring.member_service
)
lambda_handler = api_handler(app)
