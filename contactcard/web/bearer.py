"""Routes for machine clients that send ``Authorization: Bearer <token>`` with every request (the JSON API,
SCIM): the one declared exemption from the CSRF rule for routes that act for someone (see ``forms.check_routes``).

    BearerRoute("/api/v1/employees", create, methods=["POST"], authenticate=api_client)
    # create(request, client) runs only once authenticate(request, token) returned the client

Why no CSRF token is needed: a forged cross-site request works by riding on a credential the browser adds by
itself, a cookie. A bearer route has no such credential: the request's cookies are removed before
``authenticate`` runs, so no session or double-submit cookie can be read, and the only credential is the
``Authorization`` header, which another site's page cannot make a browser send. A forged request arrives
without a token and ``authenticate`` refuses it before the handler runs.

``authenticate(request, token)`` gets the header's token (None when there is no ``Bearer`` credential) and
returns who the handler acts as, or raises its API's own refusal (a 401/403 in that API's error format). It
must compare tokens in constant time and keep them out of every log line.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Generic, TypeVar

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

P = TypeVar("P")


def bearer_token(request: Request) -> str | None:
    """The token of an ``Authorization: Bearer <token>`` header (scheme case-insensitive), else None."""
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    token = token.strip()
    return token if scheme.lower() == "bearer" and token else None


class BearerRoute(Route, Generic[P]):
    """A route whose ``handler(request, principal)`` runs only once ``authenticate(request, token)`` accepted the
    request's bearer token; the request's cookies are never seen by either."""

    def __init__(self, path: str, handler: Callable[[Request, P], Awaitable[Response]], *,
                 authenticate: Callable[[Request, str | None], Awaitable[P]], methods: Sequence[str],
                 name: str | None = None) -> None:
        async def endpoint(request: Request) -> Response:
            # No cookie reaches the API: it cannot act on a browser's session by mistake.
            request.scope["headers"] = [(k, v) for k, v in request.scope["headers"] if k.lower() != b"cookie"]
            request = Request(request.scope, request.receive)
            principal = await authenticate(request, bearer_token(request))
            return await handler(request, principal)

        super().__init__(path, endpoint, methods=list(methods), name=name or handler.__name__)
