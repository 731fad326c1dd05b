"""One API operation declared once: ``Operation`` gives both the route and its entry in the OpenAPI document.

    Operation("POST", "/employees/{employee_id}/channels", add_channel, ApiScope.WRITE, "Add a channel",
              body=ChannelCreate, status=201, returns=ChannelOut, errors=(422,))

The route is a ``bearer.BearerRoute``: before the body is read the token is checked (401), its rate (429) and
its scope (403). The handler gets a ``Call`` (the validated body and query, the path's ids, the token) and
returns a pydantic model, a list of them, a ``Response`` (images, CSV) or None (204). A service error becomes
its problem (``problems.of_error``); nothing is written on any refusal, since the service writes in one
transaction after its checks.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import pydantic
from pydantic import BaseModel
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from ...apitokens import ApiTokens
from ...models import ApiScope, ApiToken, ContactcardError, NotFound
from ...service import Service
from ..bearer import BearerRoute
from ..context import app_context
from ..security import NO_STORE
from . import problems
from .shapes import MAX_ID

PREFIX = "/api/v1"
MAX_BODY = 64 * 1024
_PARAM = re.compile(r"\{(\w+)\}")
# Which token scopes may call an operation that needs each scope.
GRANTS: dict[ApiScope, frozenset[ApiScope]] = {
    ApiScope.READ: frozenset({ApiScope.READ, ApiScope.WRITE}),
    ApiScope.WRITE: frozenset({ApiScope.WRITE}),
    ApiScope.SCANS: frozenset({ApiScope.SCANS}),
}


@dataclass(frozen=True)
class Call:
    request: Request
    token: ApiToken
    body: Any  # the operation's body model, validated (None if it takes none)
    query: Any  # the operation's query model, validated (None if it takes none)

    @property
    def service(self) -> Service:
        return app_context(self.request).service

    @property
    def actor(self) -> str:
        """The audit trail's actor: ``api:<token name>``."""
        return self.token.actor

    def id(self, name: str) -> int:
        value = self.request.path_params[name]
        assert isinstance(value, int)  # the route's {name:int} convertor
        if not 1 <= value <= MAX_ID:  # no row has it (and SQLite could not even take it)
            raise NotFound("no channel %(id)s", id=value) if name == "channel_id" else \
                NotFound("no employee %(ref)r", ref=value)
        return value


Handler = Callable[[Call], Awaitable[Any]]


@dataclass(frozen=True)
class Operation:
    method: str
    path: str  # under PREFIX, with {name} for integer ids
    handler: Handler
    scope: ApiScope  # what the token must be allowed (see GRANTS)
    summary: str
    tag: str
    body: type[BaseModel] | None = None
    body_required: bool = True  # False: an empty body means the model's defaults
    query: type[BaseModel] | None = None
    status: int = 200
    returns: Any = None  # a model class, list[Model], or None (no content)
    media: str | None = None  # a non-JSON answer: image/png, image/svg+xml, text/csv
    errors: tuple[int, ...] = ()  # statuses the service may refuse with (404 for ids, 400/422 for input are added)
    description: str = ""

    @property
    def params(self) -> list[str]:
        return _PARAM.findall(self.path)

    @property
    def statuses(self) -> list[int]:
        """Every status this operation can answer with besides its success."""
        found = {401, 403, 429, *self.errors}
        if self.params:
            found.add(404)
        if self.body is not None:
            found |= {400, 422}
        if self.query is not None:
            found.add(422)
        return sorted(found)

    def route(self) -> BearerRoute[ApiToken]:
        async def authorise(request: Request, secret: str | None) -> ApiToken:
            tokens: ApiTokens = app_context(request).api_tokens
            try:
                token = await tokens.authenticate(secret)
            except ContactcardError as err:
                raise problems.of_error(err, problems.language(request)) from None
            if token.scope not in GRANTS[self.scope]:
                raise problems.forbidden(self.scope.value)
            return token

        async def endpoint(request: Request, token: ApiToken) -> Response:
            call = Call(request, token, await _body(request, self), _query(request, self))
            try:
                result = await self.handler(call)
            except ContactcardError as err:
                raise problems.of_error(err, problems.language(request)) from None
            return self._respond(result)

        path = PREFIX + _PARAM.sub(r"{\1:int}", self.path)
        return BearerRoute(path, endpoint, authenticate=authorise, methods=[self.method],
                           name=self.handler.__name__)

    def _respond(self, result: Any) -> Response:
        if isinstance(result, Response):
            return result
        if self.returns is None:
            return Response(status_code=204, headers=NO_STORE)
        content = [m.model_dump(mode="json") for m in result] if isinstance(result, list) else \
            result.model_dump(mode="json")
        return JSONResponse(content, status_code=self.status, headers=NO_STORE)


def _errors(err: pydantic.ValidationError, where: str) -> list[dict[str, str]]:
    return [{"location": ".".join([where, *(str(p) for p in e["loc"])]), "message": e["msg"]}
            for e in err.errors(include_url=False)]


async def _body(request: Request, op: Operation) -> Any:
    if op.body is None:
        return None
    length = request.headers.get("content-length", "")
    if length.isdigit() and int(length) > MAX_BODY:
        raise problems.ApiProblem(413, "", "Content Too Large", f"a body may hold at most {MAX_BODY} bytes")
    raw = b""
    async for chunk in request.stream():
        raw += chunk
        if len(raw) > MAX_BODY:
            raise problems.ApiProblem(413, "", "Content Too Large", f"a body may hold at most {MAX_BODY} bytes")
    if not raw.strip() and not op.body_required:
        return op.body()
    try:
        return op.body.model_validate_json(raw)
    except pydantic.ValidationError as err:
        if any(e["type"] == "json_invalid" for e in err.errors()):
            raise problems.ApiProblem(400, "malformed", "The body is not JSON",
                                      "send a JSON object with Content-Type: application/json") from None
        raise problems.invalid(_errors(err, "body")) from None


def _query(request: Request, op: Operation) -> Any:
    if op.query is None:
        return None
    try:
        return op.query.model_validate(dict(request.query_params))
    except pydantic.ValidationError as err:
        raise problems.invalid(_errors(err, "query")) from None
