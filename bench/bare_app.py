"""The reference: a minimal Starlette app on the same uvicorn, answering a page of a given size, no database."""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Route


def create_bare_app(body_size: int) -> Starlette:
    head, tail = b"<!doctype html><html><body><p>", b"</p></body></html>"
    body = head + b"x" * max(0, body_size - len(head) - len(tail)) + tail

    async def page(request: Request) -> Response:
        return HTMLResponse(body, headers={"Cache-Control": "no-store"})

    return Starlette(routes=[Route("/c/{token}", page, methods=["GET"])])
