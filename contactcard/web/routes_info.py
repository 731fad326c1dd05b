"""Which route a request went to, as its template (``/c/{token}``), never the raw path: safe to log and to label.

For the access log and the metrics. A request the router handled carries its route in ``scope["route"]``; one
answered in front of the router is matched here against the app's routes, unless it was noted with
``note_route`` (the scan hot path, ``customer.FastCardPage``, knows its route already).
"""

from __future__ import annotations

import functools
import hashlib

from starlette.routing import BaseRoute, Match, Mount, Route
from starlette.types import Scope

UNMATCHED = "(no route)"
_CARD_PREFIX = "/c/{token}"
_TEMPLATE = "contactcard.route_template"


def _matched_route(scope: Scope) -> BaseRoute | None:
    route = scope.get("route")
    if isinstance(route, BaseRoute):
        return route
    app = scope.get("app")
    routes: list[BaseRoute] = getattr(getattr(app, "router", None), "routes", [])
    partial: BaseRoute | None = None
    for candidate in routes:
        match, _ = candidate.matches(scope)
        if match is Match.FULL:
            return candidate
        if match is Match.PARTIAL and partial is None:  # the path fits, the method does not (a 405)
            partial = candidate
    return partial


def route_template(scope: Scope) -> str:
    """The template of the route this request matched, e.g. ``/c/{token}/go/{channel}``; ``(no route)`` if none.

    Call it once the request has been answered. Remembered in the scope: the metrics and the access log both ask.
    """
    known: str | None = scope.get(_TEMPLATE)
    if known is not None:
        return known
    route = _matched_route(scope)
    if isinstance(route, Mount):
        template = route.path + "/{path}"
    elif isinstance(route, Route):
        template = route.path
    else:
        template = UNMATCHED
    scope[_TEMPLATE] = template
    return template


def note_route(scope: Scope, template: str) -> None:
    """Tell ``route_template`` the route of a request answered in front of the router."""
    scope[_TEMPLATE] = template


def card_digest(scope: Scope, template: str) -> str | None:
    """First 8 hex digits of the SHA-256 of the card token for ``/c/{token}…`` routes, else None.

    The card row stores the full SHA-256 of its token, so an admin can tell which card a log line is about;
    32 bits of a one-way hash of a 120-bit random token give no way to rebuild the link.
    """
    if not template.startswith(_CARD_PREFIX):
        return None
    path: str = scope.get("path", "")
    return _digest(path[3:].split("/", 1)[0])


@functools.lru_cache(maxsize=4096)  # a card's link is scanned again and again: one digest per token
def _digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "replace")).hexdigest()[:8]
