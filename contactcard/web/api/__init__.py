"""The JSON API: ``/api/v1`` over the service's use cases for machine clients with API tokens, and its OpenAPI
document at ``/api/openapi.json`` (built from the same operations, so it cannot drift from them).

``operations`` declares the route type (token, rate, scope, then the body), ``shapes`` the pydantic request and
response models, ``problems`` the RFC 9457 errors, ``openapi`` the document; ``people``, ``cards`` and ``scans``
hold the handlers, each a thin call into the service with the token's name as the audit trail's actor.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from . import cards, openapi, people, scans
from .operations import Operation

OPERATIONS: tuple[Operation, ...] = (*people.OPERATIONS, *cards.OPERATIONS, *scans.OPERATIONS)
_document: dict[str, Any] = {}


async def openapi_json(request: Request) -> Response:
    """The API's description; public, like the routes' existence (each route still needs its token)."""
    if not _document:
        _document.update(openapi.document(OPERATIONS))
    return JSONResponse(_document, headers={"Cache-Control": "no-cache"})


routes: list[BaseRoute] = [
    Route("/api/openapi.json", openapi_json, methods=["GET"]),
    *(op.route() for op in OPERATIONS),
]
