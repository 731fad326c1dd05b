"""The OpenAPI 3.1 document, built from the operations themselves (``Operation``) and the pydantic shapes, so it
describes exactly the routes the app serves: paths, scopes, bodies, queries, answers, errors and examples.

JSON Schema comes from pydantic (draft 2020-12, which OpenAPI 3.1 uses); every model lands in
``components/schemas``. Query models become one parameter per field.
"""

from __future__ import annotations

import http
import typing
from collections.abc import Iterable
from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import JsonSchemaMode, models_json_schema

from ... import __version__
from .operations import PREFIX, Operation
from .problems import PROBLEM_JSON
from .shapes import MAX_ID, Problem

_REF = "#/components/schemas/{model}"
_DESCRIPTION = (
    "contactcard's JSON API over the same use cases as the console and the CLI. Authenticate with "
    "`Authorization: Bearer <token>` (`contactcard api token create --name N --scope read|write|scans`). "
    "Scopes: `read` reads employees, channels and cards; `write` also changes them; `scans` reads the scan log, "
    "its figures and its export. Every change is audited with the actor `api:<token name>`. Requests are rate "
    "limited per token (429 with Retry-After). Errors are RFC 9457 problem details; their `detail` is the "
    "console's message, in Japanese for `Accept-Language: ja`, else in English."
)
_ERRORS = {
    400: "The body is not JSON",
    401: "No token, or one that is unknown, expired or revoked",
    403: "The token's scope does not allow this",
    404: "No such employee, channel or card",
    409: "The request conflicts with the current state (the message says how)",
    422: "The input is not valid, or the company's policy refuses it (the message says why)",
    429: "Too many requests for this token: retry after Retry-After seconds",
}


def _model(annotation: Any) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    args = typing.get_args(annotation)
    return _model(args[0]) if args else None


def _ref(model: type[BaseModel], mode: JsonSchemaMode, names: dict[tuple[type[BaseModel], str], Any]) -> Any:
    return names[(model, mode)]


def _not_null(schema: dict[str, Any]) -> dict[str, Any]:
    """An optional query field's schema without its ``null`` branch (a query string has no null)."""
    options = schema.get("anyOf")
    if options:
        rest = [o for o in options if o != {"type": "null"}]
        if len(rest) == 1:
            merged = {**{k: v for k, v in schema.items() if k not in ("anyOf", "default")}, **rest[0]}
            if schema.get("default") is not None:
                merged["default"] = schema["default"]
            return merged
    return schema


def _problem(status: int) -> dict[str, Any]:
    answer: dict[str, Any] = {"description": _ERRORS.get(status, http.HTTPStatus(status).phrase),
                              "content": {PROBLEM_JSON: {"schema": {"$ref": _REF.format(model="Problem")}}}}
    if status == 429:
        answer["headers"] = {"Retry-After": {"description": "seconds to wait", "required": True,
                                             "schema": {"type": "integer", "minimum": 1}}}
    if status in (401, 403):
        answer["headers"] = {"WWW-Authenticate": {"required": True, "schema": {"type": "string"}}}
    return answer


def document(operations: Iterable[Operation]) -> dict[str, Any]:
    operations = list(operations)
    wanted: list[tuple[type[BaseModel], JsonSchemaMode]] = [(Problem, "serialization")]
    for op in operations:
        if op.body is not None:
            wanted.append((op.body, "validation"))
        if op.query is not None:
            wanted.append((op.query, "validation"))
        returned = _model(op.returns)
        if returned is not None:
            wanted.append((returned, "serialization"))
    wanted = list(dict.fromkeys(wanted))
    names, schemas = models_json_schema(wanted, ref_template=_REF)
    components: dict[str, Any] = dict(schemas.get("$defs", {}))
    paths: dict[str, dict[str, Any]] = {}
    for op in operations:
        paths.setdefault(PREFIX + op.path, {})[op.method.lower()] = _operation(op, names, components)
    for op in operations:  # query models live on as parameters, not as schemas
        if op.query is not None:
            components.pop(op.query.__name__, None)
    return {
        "openapi": "3.1.0",
        "info": {"title": "contactcard API", "version": __version__, "description": _DESCRIPTION},
        "paths": paths,
        "components": {"schemas": components,
                       "securitySchemes": {"token": {"type": "http", "scheme": "bearer",
                                                     "description": "an API token (cc_…)"}}},
        "security": [{"token": []}],
    }


def _operation(op: Operation, names: dict[Any, Any], components: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {
        "operationId": op.handler.__name__, "summary": op.summary, "tags": [op.tag],
        "description": (op.description + " " if op.description else "") + f"Scope: `{op.scope.value}`.",
        "x-scope": op.scope.value,
    }
    params: list[dict[str, Any]] = [
        {"name": name, "in": "path", "required": True,
         "schema": {"type": "integer", "minimum": 1, "maximum": MAX_ID}, "example": 1} for name in op.params]
    if op.query is not None:
        query = components[op.query.__name__]
        for name, schema in query["properties"].items():
            params.append({"name": name, "in": "query", "required": name in query.get("required", []),
                           "schema": _not_null(schema)})
    if params:
        out["parameters"] = params
    if op.body is not None:
        ref = _ref(op.body, "validation", names)
        examples = op.body.model_json_schema().get("examples") or []
        content: dict[str, Any] = {"schema": ref}
        if examples:
            content["example"] = examples[0]
        out["requestBody"] = {"required": op.body_required, "content": {"application/json": content}}
    responses: dict[str, Any] = {}
    returned = _model(op.returns)
    if op.media is not None:
        binary = {"type": "string"} if op.media == "text/csv" or op.media.endswith("+xml") else \
            {"type": "string", "contentMediaType": op.media}
        responses[str(op.status)] = {"description": "OK", "content": {op.media: {"schema": binary}}}
    elif returned is None:
        responses[str(op.status)] = {"description": "Done"}
    else:
        schema = _ref(returned, "serialization", names)
        if returned is not op.returns:  # list[Model]
            schema = {"type": "array", "items": schema}
        responses[str(op.status)] = {"description": "OK", "content": {"application/json": {"schema": schema}}}
    for status in op.statuses:
        responses[str(status)] = _problem(status)
    responses["default"] = {"description": "Unexpected (e.g. 503 while the database is busy; nothing written)",
                            "content": {PROBLEM_JSON: {"schema": {"$ref": _REF.format(model="Problem")}}}}
    out["responses"] = responses
    return out
