"""GET /health: liveness of the API (no dependencies touched)."""

from typing import Any

from tsunagu.http import json_response


def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return json_response(200, {"status": "ok"})
