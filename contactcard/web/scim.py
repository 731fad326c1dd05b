"""SCIM 2.0 at ``/scim/v2`` (RFC 7644) for the company's identity provider (Entra ID, Okta, Google...).

Every route is a ``bearer.BearerRoute``: the token ``contactcard scim token create`` printed, checked by
``Service.scim_client`` (by digest, constant time); a missing, wrong or revoked one gets 401 in SCIM's error
format and nothing is read or written. Every route takes every method and answers the ones it does not serve
with a SCIM 405, so a client always gets ``application/scim+json``.

- ``/ServiceProviderConfig``, ``/ResourceTypes[/User]``, ``/Schemas[/{urn}]``: what ``scim`` publishes.
- ``/Users``: GET lists (``filter`` with any SCIM filter, e.g. ``userName eq "…"``; ``startIndex``/``count``,
  at most ``scim.MAX_RESULTS`` a page; ``attributes``/``excludedAttributes``), POST creates;
  ``/Users/.search`` is the same list as a POST body.
- ``/Users/{id}``: GET, PUT (replace), PATCH (RFC 7644 and Entra ID's forms), DELETE.

Changes go through the service with the actor ``scim``. Bad input answers a SCIM error with its ``scimType``
(invalidSyntax, invalidFilter, invalidValue, uniqueness, mutability, noTarget...), never a 500 page; every error
after authentication is kept for the settings page (the latest ``provisioning.KEEP_ERRORS``).
"""

from __future__ import annotations

import contextlib
import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import pydantic
from scim2_models import (
    Context,
    Error,
    InvalidSyntaxException,
    ListResponse,
    Meta,
    NotFoundException,
    PatchOp,
    Resource,
    ResponseParameters,
    SCIMException,
    SearchRequest,
)
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.routing import BaseRoute

from .. import scim
from ..models import Busy, Conflict, NotFound, ScimError, ScimToken, ValidationError
from ..provisioning import ACTOR, ScimUser
from .bearer import BearerRoute
from .context import app_context
from .security import NO_STORE

log = logging.getLogger(__name__)
PREFIX = "/scim/v2"
ALL_METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")
MAX_DETAIL = 300

Handler = Callable[[Request], Awaitable[Response]]


class _Refused(Exception):
    """An answer that is an error: status, scimType, detail (and headers)."""

    def __init__(self, status: int, scim_type: str | None, detail: str, headers: dict[str, str] | None = None):
        super().__init__(detail)
        self.status, self.scim_type, self.detail, self.headers = status, scim_type, detail, headers or {}


def _answer(body: dict[str, Any], status: int = 200, headers: dict[str, str] | None = None) -> Response:
    content = json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    return Response(content, status_code=status, media_type=scim.MEDIA_TYPE, headers={**NO_STORE, **(headers or {})})


def _error(status: int, scim_type: str | None, detail: str, headers: dict[str, str] | None = None) -> Response:
    error = Error(status=status, scim_type=scim_type, detail=detail[:MAX_DETAIL])
    return _answer(error.model_dump(scim_ctx=Context.DEFAULT), status, headers)


async def _authenticate(request: Request, token: str | None) -> ScimToken | None:
    """The live token the request carries, or None (then ``_route`` answers 401 before anything else)."""
    return None if token is None else await app_context(request).service.scim_client(token)


def _route(template: str, methods: tuple[str, ...], handler: Handler) -> BearerRoute[ScimToken | None]:
    """A SCIM route: bearer-authenticated (a refused token gets 401 before the body is read, and nothing is
    written), every method taken (the others answer 405), every failure a SCIM error, and every error after
    authentication noted for the settings page."""

    async def endpoint(request: Request, token: ScimToken | None) -> Response:
        if token is None:
            return _error(401, None, "a valid SCIM bearer token is required",
                          {"WWW-Authenticate": 'Bearer realm="scim"'})
        try:
            if request.method not in methods:
                raise _Refused(405, None, f"{request.method} is not supported here",
                               {"Allow": ", ".join(methods)})
            return await handler(request)
        except ClientDisconnect:
            raise  # nobody to answer (pages.http_error logs nothing)
        except Exception as exc:  # every failure becomes a SCIM error; see _refusal
            refused = _refusal(exc)
        await _note(request, template, refused)
        return _error(refused.status, refused.scim_type, refused.detail, refused.headers)

    return BearerRoute(PREFIX + template, endpoint, methods=ALL_METHODS, authenticate=_authenticate,
                       name=f"scim{template}")


def _refusal(exc: Exception) -> _Refused:
    if isinstance(exc, _Refused):
        return exc
    if isinstance(exc, SCIMException):
        error = exc.to_error()
        return _Refused(int(error.status or 400), error.scim_type, error.detail or str(exc))
    if isinstance(exc, pydantic.ValidationError):
        errors = Error.from_validation_errors(exc)
        first = errors[0] if errors else Error(status=400, scim_type="invalidValue", detail=str(exc))
        return _Refused(int(first.status or 400), first.scim_type or "invalidValue", first.detail or "invalid value")
    if isinstance(exc, Conflict):
        return _Refused(409, "uniqueness", str(exc))
    if isinstance(exc, NotFound):
        return _Refused(404, None, str(exc))
    if isinstance(exc, ValidationError):
        return _Refused(400, "invalidValue", str(exc))
    if isinstance(exc, Busy):
        return _Refused(503, None, "the database is busy; try again", {"Retry-After": "1"})
    if isinstance(exc, HTTPException) and exc.status_code == 413:
        return _Refused(413, None, "the body is too large")
    log.exception("SCIM request failed", exc_info=exc)  # the route template is logged by the access log
    return _Refused(500, None, "internal error")


async def _note(request: Request, template: str, refused: _Refused) -> None:
    service = app_context(request).service
    error = ScimError(time=service.clock(), method=request.method, route=PREFIX + template, status=refused.status,
                      scim_type=refused.scim_type or "", detail=refused.detail[:MAX_DETAIL])
    with contextlib.suppress(Busy):  # the answer matters more than the note
        await service.note_scim_error(error)


def _base(request: Request) -> str:
    return app_context(request).settings.base_url + PREFIX


async def _body(request: Request) -> Any:
    raw = await request.body()
    try:
        return json.loads(raw)
    except (ValueError, RecursionError):  # RecursionError: nested deeper than the parser goes
        raise InvalidSyntaxException(detail="the body is not JSON") from None


def _located(resource: Resource[Any], kind: str, location: str) -> dict[str, Any]:
    resource.meta = Meta(resource_type=kind, location=location)
    return resource.model_dump(scim_ctx=Context.RESOURCE_QUERY_RESPONSE)


def _listed(items: list[dict[str, Any]]) -> dict[str, Any]:
    return {"schemas": ["urn:ietf:params:scim:api:messages:2.0:ListResponse"], "totalResults": len(items),
            "startIndex": 1, "itemsPerPage": len(items), "Resources": items}


# --- discovery --------------------------------------------------------------------------------------


async def service_provider_config(request: Request) -> Response:
    config = scim.CONFIG.model_copy(deep=True)
    return _answer(_located(config, "ServiceProviderConfig", f"{_base(request)}/ServiceProviderConfig"))


def _resource_type(request: Request) -> dict[str, Any]:
    return _located(scim.RESOURCE_TYPE.model_copy(deep=True), "ResourceType", f"{_base(request)}/ResourceTypes/User")


async def resource_types(request: Request) -> Response:
    return _answer(_listed([_resource_type(request)]))


async def resource_type(request: Request) -> Response:
    if request.path_params["name"] != scim.RESOURCE_TYPE.id:
        raise NotFoundException(detail="no such resource type")
    return _answer(_resource_type(request))


def _schema(request: Request, schema: Resource[Any]) -> dict[str, Any]:
    return _located(schema.model_copy(deep=True), "Schema", f"{_base(request)}/Schemas/{schema.id}")


async def schemas(request: Request) -> Response:
    return _answer(_listed([_schema(request, s) for s in scim.ALL_SCHEMAS]))


async def schema(request: Request) -> Response:
    found = next((s for s in scim.ALL_SCHEMAS if s.id == request.path_params["urn"]), None)
    if found is None:
        raise NotFoundException(detail="no such schema")
    return _answer(_schema(request, found))


async def not_found(request: Request) -> Response:
    raise NotFoundException(detail="no such endpoint")


async def search_everything(request: Request) -> Response:
    raise _Refused(501, None, "search /Users/.search instead: only users are served")


# --- users ------------------------------------------------------------------------------------------


def _shown(request: Request, found: ScimUser) -> Resource[Any]:
    return scim.shown(found.employee, found.identity, app_context(request).settings.base_url)


def _dump(resource: Resource[Any], parameters: ResponseParameters[Any] | None = None) -> dict[str, Any]:
    return resource.model_dump(scim_ctx=Context.RESOURCE_QUERY_RESPONSE, response_parameters=parameters)


async def _found(request: Request) -> ScimUser:
    raw = request.path_params["id"]
    found = await app_context(request).service.scim_user(int(raw)) if raw.isdigit() and len(raw) < 19 else None
    if found is None:
        raise NotFoundException(detail="no such user")
    return found


async def _list(request: Request, search: SearchRequest[Any]) -> Response:
    text = None if search.filter is None else str(search.filter)
    condition = None if text is None else scim.parse_filter(text)
    matched = [r for r in (_shown(request, u) for u in await app_context(request).service.scim_users())
               if condition is None or condition.match(r)]
    start = max(search.start_index or 1, 1)
    count = scim.MAX_RESULTS if search.count is None else min(max(search.count, 0), scim.MAX_RESULTS)
    page = matched[start - 1:start - 1 + count]
    answer = ListResponse[scim.USER](  # type: ignore[valid-type]
        total_results=len(matched), start_index=start, items_per_page=len(page), resources=page)
    return _answer(answer.model_dump(scim_ctx=Context.SEARCH_RESPONSE, response_parameters=search))


async def users(request: Request) -> Response:
    service = app_context(request).service
    if request.method == "GET":
        return await _list(request, SearchRequest.model_validate(dict(request.query_params),
                                                                 scim_ctx=Context.SEARCH_REQUEST))
    resource = scim.parse_user(await _body(request), Context.RESOURCE_CREATION_REQUEST)
    created = await service.provision(scim.wanted(resource), actor=ACTOR)
    shown = _shown(request, created)
    assert shown.meta is not None
    return _answer(_dump(shown), 201, {"Location": str(shown.meta.location)})


async def users_search(request: Request) -> Response:
    body = await _body(request)
    return await _list(request, SearchRequest.model_validate(body, scim_ctx=Context.SEARCH_REQUEST))


async def user(request: Request) -> Response:
    service = app_context(request).service
    found = await _found(request)
    if request.method == "GET":
        parameters: ResponseParameters[Any] = ResponseParameters.model_validate(dict(request.query_params))
        return _answer(_dump(_shown(request, found), parameters))
    if request.method == "DELETE":
        await service.unprovision(found, scim.document(scim.current(found.employee, found.identity)), actor=ACTOR)
        return Response(status_code=204, headers=NO_STORE)
    if request.method == "PUT":
        resource = scim.parse_user(await _body(request), Context.RESOURCE_REPLACEMENT_REQUEST)
        if resource.id is not None and resource.id != str(found.employee.id):
            raise _Refused(400, "mutability", "id cannot be changed")
    else:  # PATCH, on the resource as it is now
        patch = PatchOp[scim.USER].model_validate(  # type: ignore[valid-type]
            scim.normalise_patch(await _body(request)), scim_ctx=Context.RESOURCE_PATCH_REQUEST,
            scim_policy=scim.POLICY)
        resource = scim.current(found.employee, found.identity)
        patch.patch(resource, scim_policy=scim.POLICY)
    updated = await service.reprovision(found, scim.wanted(resource), actor=ACTOR)
    return _answer(_dump(_shown(request, updated)))


routes: list[BaseRoute] = [
    _route("/ServiceProviderConfig", ("GET",), service_provider_config),
    _route("/ResourceTypes", ("GET",), resource_types),
    _route("/ResourceTypes/{name}", ("GET",), resource_type),
    _route("/Schemas", ("GET",), schemas),
    _route("/Schemas/{urn}", ("GET",), schema),
    _route("/Users", ("GET", "POST"), users),
    _route("/Users/.search", ("POST",), users_search),
    _route("/Users/{id}", ("GET", "PUT", "PATCH", "DELETE"), user),
    _route("/.search", ("POST",), search_everything),
    _route("", ALL_METHODS, not_found),
    _route("/{rest:path}", ALL_METHODS, not_found),
]
