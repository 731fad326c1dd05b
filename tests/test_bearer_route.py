"""The bearer-token route type (web/bearer.py): the CSRF rule's declared exemption for machine clients.

It may take unsafe methods (the app's route check accepts it), its handler runs only once ``authenticate``
accepted the header's token, and neither ever sees the browser's cookies, so a session cannot be ridden.
"""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.testclient import TestClient

from contactcard.web import forms
from contactcard.web.bearer import BearerRoute


async def known_client(request: Request, token: str | None) -> str:
    if token != "good-token":
        raise HTTPException(401, headers={"WWW-Authenticate": "Bearer"})
    return "robot"


calls: list[str] = []


async def change(request: Request, who: str) -> Response:
    calls.append(who)
    return JSONResponse({"who": who, "cookies": dict(request.cookies), "cookie_header": request.headers.get("cookie")})


ROUTES = [BearerRoute("/thing", change, methods=["POST", "DELETE"], authenticate=known_client)]


def test_the_csrf_route_check_accepts_a_bearer_route() -> None:
    forms.check_routes(ROUTES)  # would raise UnsafeRoute for a plain Route taking POST


def test_the_handler_runs_only_with_an_accepted_token_and_never_sees_cookies() -> None:
    calls.clear()
    client = TestClient(Starlette(routes=ROUTES), base_url="http://127.0.0.1")
    client.cookies.set("cc_session", "a-signed-in-browser")
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": "Basic good-token"},
                    {"Authorization": "Bearer"}, {"Authorization": "good-token"}):
        assert client.post("/thing", headers=headers).status_code == 401, headers
    assert calls == [], "a refused request never reached the handler"
    r = client.delete("/thing", headers={"Authorization": "bearer  good-token "})
    assert r.status_code == 200
    assert r.json() == {"who": "robot", "cookies": {}, "cookie_header": None}
    assert calls == ["robot"]
