"""Errors of the JSON API as RFC 9457 problem details (``application/problem+json``).

Every refusal under ``/api`` is one of these, never an HTML page: the service's errors map to a status and a
``type`` URI (below), and an ``HTTPException`` (an unknown path, a method not allowed, a body too large) or an
unexpected error becomes ``about:blank`` with the HTTP status's name (``pages.http_error`` sends ``/api`` here).
``detail`` is the same one-line message the console and the CLI show for the same refusal: in Japanese when the
client's ``Accept-Language`` prefers it (as the console shows it), else in English (as the CLI prints it).
"""

from __future__ import annotations

import http
from collections.abc import Mapping

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from ... import i18n
from ...apitokens import RateLimited, TokenRefused
from ...models import Busy, Conflict, ContactcardError, NotFound, PolicyError, ValidationError
from ..context import app_context
from ..security import NO_STORE

PROBLEM_JSON = "application/problem+json"
_URN = "urn:contactcard:problem:"


class ApiProblem(HTTPException):
    """Raise to answer with a problem; ``kind`` names its ``type`` (``urn:contactcard:problem:<kind>``, or
    ``about:blank`` when empty). An HTTPException, so the app's one error handler answers it."""

    def __init__(self, status: int, kind: str, title: str, detail: str | None = None, *,
                 errors: list[dict[str, str]] | None = None, headers: Mapping[str, str] | None = None) -> None:
        super().__init__(status, detail or title, dict(headers or {}))
        self.kind, self.title, self.problem_detail = kind, title, detail
        self.errors = errors

    def response(self) -> Response:
        body: dict[str, object] = {"type": _URN + self.kind if self.kind else "about:blank", "title": self.title,
                                   "status": self.status_code}
        if self.problem_detail:
            body["detail"] = self.problem_detail
        if self.errors is not None:
            body["errors"] = self.errors
        return JSONResponse(body, status_code=self.status_code, media_type=PROBLEM_JSON,
                            headers={**NO_STORE, **(self.headers or {})})


def unauthorized(detail: str) -> ApiProblem:
    return ApiProblem(401, "unauthorized", "A valid API token is required", detail,
                      headers={"WWW-Authenticate": 'Bearer realm="contactcard", error="invalid_token"'})


def forbidden(scope: str) -> ApiProblem:
    return ApiProblem(403, "insufficient-scope", "The token's scope does not allow this",
                      f"this needs a token with the {scope!r} scope",
                      headers={"WWW-Authenticate": f'Bearer realm="contactcard", error="insufficient_scope", '
                                                   f'scope="{scope}"'})


def invalid(errors: list[dict[str, str]]) -> ApiProblem:
    first = errors[0] if errors else {"location": "", "message": "invalid"}
    detail = f"{first['location']}: {first['message']}" if first["location"] else first["message"]
    return ApiProblem(422, "validation", "The request is not valid", detail, errors=errors)


def language(request: Request) -> i18n.Translator:
    """The language of an error's ``detail``: Japanese when the client's Accept-Language prefers it to English,
    else English (what the CLI prints); the console shows the same message in the same language."""
    accept = request.headers.get("accept-language", "")[:256]
    # English ranks last, so a header naming neither language (or none at all) gets English, not the console's ja.
    lang = i18n.negotiate(None, None, f"{accept}, en;q=0.001", i18n.CONSOLE_LANGUAGES)
    return app_context(request).renderer.translator_for(lang)


def of_error(err: ContactcardError, speak: i18n.Translator) -> ApiProblem:
    """The problem for a service error: the message the console and the CLI give, in ``speak``'s language."""
    detail = speak.message(err)
    said = {"Content-Language": speak.lang}
    if isinstance(err, TokenRefused):
        return unauthorized(detail)
    if isinstance(err, RateLimited):
        return ApiProblem(429, "rate-limited", "Too many requests for this token", detail,
                          headers={"Retry-After": str(err.retry_after), **said})
    if isinstance(err, PolicyError):
        return ApiProblem(422, "policy", "Refused by the company's channel policy", detail, headers=said)
    if isinstance(err, ValidationError):
        return ApiProblem(422, "validation", "The request is not valid", detail, headers=said)
    if isinstance(err, NotFound):
        return ApiProblem(404, "not-found", "Not found", detail, headers=said)
    if isinstance(err, Conflict):
        return ApiProblem(409, "conflict", "The request conflicts with the current state", detail, headers=said)
    if isinstance(err, Busy):
        return ApiProblem(503, "busy", "The database is busy; nothing was written", detail,
                          headers={"Retry-After": "1", **said})
    return ApiProblem(400, "refused", "The request was refused", detail, headers=said)


def of_http(status: int, headers: Mapping[str, str] | None = None) -> Response:
    """A plain HTTP error (404 for an unknown path, 405, 413, 500) as a problem."""
    try:
        title = http.HTTPStatus(status).phrase
    except ValueError:
        title = "Error"
    keep = {k: v for k, v in (headers or {}).items() if k.lower() in ("allow", "retry-after")}
    return ApiProblem(status, "", title, headers=keep).response()


def http_problem(exc: Exception) -> Response:
    """``pages.http_error`` for a request under ``/api``."""
    if isinstance(exc, ApiProblem):
        return exc.response()
    if isinstance(exc, HTTPException):
        return of_http(exc.status_code, exc.headers)
    return of_http(500)
