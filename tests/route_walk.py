"""The app's route table, walked: every (method, path template) it answers, for tests that must cover every
route rather than a hand-written list that a new route would silently miss."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

from starlette.routing import BaseRoute, Mount, Route


def flatten(routes: Sequence[BaseRoute], prefix: str = "") -> list[tuple[str, set[str]]]:
    """(path template, methods without HEAD) for every Route, mounts included."""
    out: list[tuple[str, set[str]]] = []
    for route in routes:
        if isinstance(route, Mount):
            out += flatten(list(route.routes), prefix + route.path)
        elif isinstance(route, Route):
            out.append((prefix + route.path, set(route.methods or {"GET"}) - {"HEAD"}))
    return out


def concrete(path: str, values: Mapping[str, object] | None = None) -> str:
    """The template with each ``{name}`` (or ``{name:convertor}``) filled from ``values``, else with 1."""
    return re.sub(r"\{([^}:]+)(?::[^}]*)?\}", lambda m: str((values or {}).get(m[1], 1)), path)

