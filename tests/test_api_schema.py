"""The JSON API against its own OpenAPI document, with schemathesis as the independent oracle.

One app on a seeded database, loaded in-process with ``schemathesis.openapi.from_asgi``. First the fuzzer: every
operation gets a bounded number of generated requests (fixed seed, valid and invalid input) with a token of the
right scope; no answer may be a 5xx, and every answer's status, content type, headers and body must be what the
document says. Then every status the document lists for an operation that the fuzzer did not produce is reached
by a targeted request (a wrong-scope token, an exhausted rate, a conflict, a success the fuzzer's random ids
missed) and validated the same way, so each documented status is shown to be reachable.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import hypothesis
import pytest
import schemathesis
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from schemathesis.generation import GenerationMode
from schemathesis.python import asgi
from starlette.testclient import TestClient

from contactcard.app import create_app
from contactcard.config import Settings
from contactcard.models import EmployeeProfile
from contactcard.web.api import OPERATIONS
from contactcard.web.api.operations import PREFIX, Operation

from .conftest import BASE_URL, FakeClock, Harness

SEED = 20261129
EXAMPLES = 12  # per operation and generation mode: the whole module stays well under 30 s
RATE = 60  # requests a minute per token; the fuzzer's clock moves 1 s a request, so it never runs out
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_headers_conformance,
          response_schema_conformance]


@dataclass
class World:
    app: Any
    clock: FakeClock
    tokens: dict[str, str]  # scope (or busy-scope, for the rate limit) -> token


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    tmp = tmp_path_factory.mktemp("api-schema")
    settings = Settings(db_path=tmp / "cc.sqlite3", base_url=BASE_URL, secret_file=tmp / "secret.key",
                        api_rate_limit=RATE)
    clock = FakeClock()
    with TestClient(create_app(settings, clock=clock), base_url="http://127.0.0.1") as client:
        h = Harness(client)
        issued = h.seed()
        for email, name in (("hanako@example.co.jp", "佐藤"), ("jiro@example.co.jp", "鈴木")):
            h.run(h.service.add_employee, EmployeeProfile(email=email, family_name=name), actor="cli")
        for _ in range(3):
            client.get(h.path(issued))
        tokens = {scope: h.run(h.ctx.api_tokens.create, f"fuzz-{scope}", scope, actor="cli")[1]
                  for scope in ("read", "write", "scans")}
        tokens |= {f"busy-{scope}": h.run(h.ctx.api_tokens.create, f"busy-{scope}", scope, actor="cli")[1]
                   for scope in ("write", "scans")}
    yield World(create_app(settings, clock=clock), clock, tokens)
    asgi.shutdown_lifespans()


def auth(world: World, op: Operation) -> dict[str, str]:
    scope = "scans" if op.scope.value == "scans" else "write"
    return {"Authorization": f"Bearer {world.tokens[scope]}"}


def fuzz(world: World, op: Operation, strategy: Any, seen: set[tuple[str, str, int]]) -> None:
    @hypothesis.seed(SEED)
    @hypothesis.settings(max_examples=EXAMPLES, deadline=None, database=None,
                         suppress_health_check=list(hypothesis.HealthCheck),
                         phases=[hypothesis.Phase.explicit, hypothesis.Phase.generate])
    @hypothesis.given(case=strategy)
    def run(case: Any) -> None:
        world.clock.advance(seconds=1)
        response = case.call(headers=auth(world, op))
        seen.add((op.method, op.path, response.status_code))
        case.validate_response(response, checks=CHECKS)

    run()


def documented(op: Operation) -> set[int]:
    return {op.status, *op.statuses}


def test_fuzzed_and_targeted_requests_answer_only_as_documented(world: World) -> None:
    schema = schemathesis.openapi.from_asgi("/api/openapi.json", world.app)
    seen: set[tuple[str, str, int]] = set()
    for op in OPERATIONS:
        operation = schema[PREFIX + op.path][op.method]
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            fuzz(world, op, operation.as_strategy(generation_mode=mode), seen)
    fuzzed = {(m, p) for m, p, _ in seen}
    assert fuzzed == {(op.method, op.path) for op in OPERATIONS}, "every operation was fuzzed"
    assert not {s for _, _, s in seen if s >= 500}

    # The statuses the fuzzer did not reach, one targeted request each, validated against the document too.
    client = asgi.get_client(world.app)
    targets = Targets(world, client)
    missing = sorted((op.method, op.path, status) for op in OPERATIONS for status in documented(op)
                     if (op.method, op.path, status) not in seen)
    for method, path, status in missing:
        op = next(o for o in OPERATIONS if (o.method, o.path) == (method, path))
        response = targets.reach(op, status)
        assert response.status_code == status, (method, path, status, response.status_code, response.text[:300])
        schema[PREFIX + op.path][op.method].validate_response(response)
        seen.add((method, path, status))
    print(f"fuzzer reached {len(seen) - len(missing)} (operation, status) pairs; targeted {len(missing)}")


class Targets:
    """Requests that reach one documented status of one operation, each on employees made for it."""

    def __init__(self, world: World, client: Any) -> None:
        self.world, self.client = world, client
        self.write = {"Authorization": f"Bearer {world.tokens['write']}"}
        self.world.clock.advance(minutes=5)  # a full allowance for every token
        self.made = 0

    def employee(self, *, card: bool = False, departed: bool = False, channels: int = 0) -> tuple[int, list[int]]:
        self.made += 1
        self.world.clock.advance(seconds=10)  # what it takes gives the write token back (1 request a second)
        r = self.client.post(f"{PREFIX}/employees", headers=self.write,
                             json={"email": f"target{self.made}@example.co.jp", "family_name": "標的"})
        assert r.status_code == 201, r.text
        employee = int(r.json()["id"])
        if card:
            assert self.client.post(f"{PREFIX}/employees/{employee}/card", headers=self.write).status_code == 201
        ids = [self.client.post(f"{PREFIX}/employees/{employee}/channels", headers=self.write,
                                json={"kind": "phone", "target": f"tel:03-1234-000{n}"}).json()["id"]
               for n in range(channels)]
        if departed:
            assert self.client.post(f"{PREFIX}/employees/{employee}/depart", headers=self.write).status_code == 200
        return employee, ids

    def request(self, op: Operation, headers: dict[str, str], at: tuple[int, int] = (999_999, 999_999), *,
                body: Any = None, raw: bytes | None = None, params: dict[str, str] | None = None) -> Any:
        """``at``: the employee and channel ids for the path (by default ids no one has)."""
        path = PREFIX + op.path.format(employee_id=at[0], channel_id=at[1])
        content = raw if raw is not None else None if body is None else json.dumps(body).encode()
        return self.client.request(op.method, path, headers={**headers, "Content-Type": "application/json"},
                                   data=content, params=params)

    def token_for(self, scope: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.world.tokens[scope]}"}

    def reach(self, op: Operation, status: int) -> Any:
        ok = self.token_for("scans" if op.scope.value == "scans" else "write")
        employee, channels = self.employee(card=True, channels=2) if op.params else (999_999, [999_999])
        mine = (employee, channels[-1])
        if status == 401:
            return self.request(op, {}, mine)
        if status == 403:
            return self.request(op, self.token_for("read" if op.scope.value != "read" else "scans"), mine)
        if status == 429:
            return self.request(op, self._exhausted("scans" if op.scope.value == "scans" else "write"), mine)
        if status == 404:
            return self.request(op, ok)  # no employee 999999
        if status == 400:
            return self.request(op, ok, mine, raw=b"{not json")
        if status == 422:
            if op.body is not None:
                return self.request(op, ok, mine, body={"unexpected": True})
            return self.request(op, ok, params={"employee_id": "x", "days": "0", "limit": "0"})
        if status == 409:
            return self._conflict(op, ok, employee)
        return self._success(op, ok, mine)

    def _exhausted(self, scope: str) -> dict[str, str]:
        """The ``busy-<scope>`` token, once it has used up its allowance (the clock moves as employees are made)."""
        headers = {"Authorization": f"Bearer {self.world.tokens[f'busy-{scope}']}"}
        for _ in range(RATE + 1):
            if self.client.get(f"{PREFIX}/scans" if scope == "scans" else f"{PREFIX}/employees",
                               headers=headers).status_code == 429:
                break
        return headers

    def _conflict(self, op: Operation, ok: dict[str, str], carded: int) -> Any:
        if op.path == "/employees":
            return self.request(op, ok, body={"email": "taro@example.co.jp", "family_name": "重複"})
        if op.method == "PATCH":
            return self.request(op, ok, (carded, 0), body={"email": "taro@example.co.jp"})
        if op.path.endswith("/depart"):
            return self.request(op, ok, (self.employee(departed=True)[0], 0), body={})
        if op.path.endswith("/card"):  # issue: they have a card already
            return self.request(op, ok, (carded, 0), body={})
        return self.request(op, ok, (self.employee()[0], 0), body={})  # rotate, extend, revoke: no card

    def _success(self, op: Operation, ok: dict[str, str], mine: tuple[int, int]) -> Any:
        if op.path.endswith("/move"):
            return self.request(op, ok, mine, body={"direction": "up"})
        if op.path.endswith("/depart"):
            return self.request(op, ok, (self.employee()[0], 0), body={"successor_id": mine[0]})
        if op.path.endswith("/channels") and op.method == "POST":
            return self.request(op, ok, mine, body={"kind": "email", "target": "mailto:info@example.co.jp"})
        if op.path == "/employees" and op.method == "POST":
            return self.request(op, ok, body={"email": "t-new@example.co.jp", "family_name": "新人"})
        if op.method == "PATCH":
            return self.request(op, ok, mine, body={"title": "主任"})
        if op.path.endswith("/card") and op.method == "POST":
            return self.request(op, ok, (self.employee()[0], 0), body={})
        return self.request(op, ok, mine, body={} if op.body else None)
