"""api token create|list|revoke: tokens for the JSON API. A token is printed once; only its SHA-256 is stored."""

from __future__ import annotations

import argparse
from collections.abc import Awaitable, Callable

from ..apitokens import DEFAULT_DAYS, ApiTokens
from ..models import ApiToken
from . import format as fmt
from .base import ACTOR, JSON, Command, Runner, arg, emit, out, positive, print_json, uses_opened


def _uses_tokens(handler: Callable[[ApiTokens, argparse.Namespace], Awaitable[int]]) -> Runner:
    return uses_opened(lambda opened, args: handler(opened.api_tokens, args))


def _json(token: ApiToken) -> dict[str, object]:
    return {"id": token.id, "name": token.name, "scope": token.scope.value, "actor": token.actor,
            "created_at": fmt.iso(token.created_at), "expires_at": fmt.iso(token.expires_at),
            "revoked_at": fmt.iso(token.revoked_at)}


def _line(token: ApiToken) -> str:
    state = f"revoked {fmt.iso(token.revoked_at)}" if token.revoked_at else f"expires {fmt.iso(token.expires_at)}"
    return f"{token.id}  {token.name}  {token.scope.value}  created {fmt.iso(token.created_at)}  {state}"


async def _create(tokens: ApiTokens, args: argparse.Namespace) -> int:
    token, secret = await tokens.create(args.name, args.scope, days=args.days, actor=ACTOR)
    if args.json:
        print_json({"token": secret, **_json(token)})
    else:
        out(secret)
        out(f"API token {token.name!r} (scope {token.scope.value}) expires {fmt.iso(token.expires_at)}; "
            "it is shown only now: keep it in your integration's secret store")
    return 0


async def _list(tokens: ApiTokens, args: argparse.Namespace) -> int:
    found = await tokens.tokens()
    emit(args, [_json(t) for t in found], [_line(t) for t in found] or ["no API tokens"])
    return 0


async def _revoke(tokens: ApiTokens, args: argparse.Namespace) -> int:
    token = await tokens.revoke(args.name, actor=ACTOR)
    emit(args, _json(token), [f"revoked API token {token.name!r}; its next request is refused"])
    return 0


NAME = arg("--name", required=True, metavar="NAME", help="the token's name (the audit trail shows api:NAME)")

COMMANDS: tuple[Command, ...] = (
    Command(("api", "token", "create"), "create an API token and print it once", _uses_tokens(_create), (
        NAME,
        arg("--scope", required=True, choices=("read", "write", "scans"),
            help="read: employees, channels, cards; write: those and changes; scans: the scan log"),
        arg("--days", type=positive, default=DEFAULT_DAYS, metavar="D",
            help=f"lifetime in days (default {DEFAULT_DAYS})"),
        JSON)),
    Command(("api", "token", "list"), "list API tokens (never the tokens themselves)", _uses_tokens(_list),
            (JSON,)),
    Command(("api", "token", "revoke"), "revoke an API token at once", _uses_tokens(_revoke), (NAME, JSON)),
)
