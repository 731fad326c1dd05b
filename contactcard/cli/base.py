"""The CLI's plumbing shared by every area: output, the error type, opening the service, the command table's types.

Handlers print through ``out``/``emit`` (text, or JSON with --json) and raise ``UsageError`` for a bad command
line (exit 2) or a ``ContactcardError`` (exit 1); ``main`` turns either into one line on stderr.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any, NoReturn

from .. import keycheck
from ..accounts import Accounts
from ..apitokens import ApiTokens
from ..config import Settings
from ..service import Service
from ..store import Store
from ..webhook_admin import WebhookAdmin
from . import format as fmt

PROG = "contactcard"
ACTOR = "cli"  # the audit trail's actor for every change made from the command line
NO_POLICY_WARNING = ("no company channel policy is set; any well-formed target is accepted "
                     "(see: contactcard company set --allow-...)")

ServiceHandler = Callable[[Service, argparse.Namespace], Awaitable[int]]
AccountsHandler = Callable[[Service, Accounts, argparse.Namespace], Awaitable[int]]
Runner = Callable[[Settings, argparse.Namespace], int]


class UsageError(Exception):
    """A command line that cannot be run as given; exit status 2."""


class Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:  # argparse would print the usage block and exit
        raise UsageError(message)


def out(text: str = "") -> None:
    print(text)


def print_json(value: object) -> None:
    print(fmt.dumps(value))


def emit(args: argparse.Namespace, as_json: object, lines: Iterable[str]) -> None:
    """Print ``as_json`` with --json, else the text lines."""
    if args.json:
        print_json(as_json)
    else:
        for line in lines:
            out(line)


def warn(message: str) -> None:
    print(f"{PROG}: warning: {message}", file=sys.stderr)


@dataclass(frozen=True)
class Opened:
    """The use cases and the accounts over one opened store."""

    service: Service
    accounts: Accounts
    webhooks: WebhookAdmin
    api_tokens: ApiTokens


@asynccontextmanager
async def open_service(settings: Settings) -> AsyncIterator[Opened]:
    store = await Store.open(settings.db_path)
    try:
        secret = await keycheck.bind_secret(store, settings.secret_file, settings.db_path)
        service = Service(store, secret=secret, base_url=settings.base_url)
        yield Opened(service, Accounts(store, service.clock, base_url=settings.base_url),
                     WebhookAdmin(store, service.clock, secret=secret, allow_private=settings.webhook_allow_private),
                     ApiTokens(store, service.clock))
    finally:
        await store.close()


def uses_opened(handler: Callable[[Opened, argparse.Namespace], Awaitable[int]]) -> Runner:
    """Run an async handler against a freshly opened store's use cases, closing the store afterwards."""

    async def run_async(settings: Settings, args: argparse.Namespace) -> int:
        async with open_service(settings) as opened:
            return await handler(opened, args)

    def run(settings: Settings, args: argparse.Namespace) -> int:
        return asyncio.run(run_async(settings, args))

    return run


def uses_accounts(handler: AccountsHandler) -> Runner:
    """Run an async handler against a freshly opened service and accounts, closing the store afterwards."""
    return uses_opened(lambda opened, args: handler(opened.service, opened.accounts, args))


def uses_service(handler: ServiceHandler) -> Runner:
    """Run an async handler against a freshly opened service, closing the store afterwards."""

    async def with_accounts(service: Service, accounts: Accounts, args: argparse.Namespace) -> int:
        return await handler(service, args)

    return uses_accounts(with_accounts)


def whole(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None


def positive(text: str) -> int:
    if (value := whole(text)) < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number of at least 1, got {text!r}")
    return value


def port(text: str) -> int:
    if not 0 <= (value := whole(text)) <= 65535:
        raise argparse.ArgumentTypeError(f"expected a port number from 0 to 65535, got {text!r}")
    return value


def owner(args: argparse.Namespace) -> str | None:
    """The employee named by --employee, or None for the company (no --employee, or --company)."""
    if getattr(args, "company", False) and args.employee is not None:
        raise UsageError("give either --employee or --company, not both")
    return None if getattr(args, "company", False) else args.employee


# --- migrate, serve, demo -----------------------------------------------------------------------

def fail(message: str, status: int) -> int:
    print(f"{PROG}: error: {' '.join(message.splitlines()) or 'failed'}", file=sys.stderr)
    return status


# --- the command table ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Arg:
    flags: tuple[str, ...]
    options: dict[str, Any] = field(default_factory=dict)


def arg(*flags: str, **options: Any) -> Arg:
    return Arg(flags, options)


@dataclass(frozen=True)
class Command:
    words: tuple[str, ...]  # ("migrate",) or ("card", "issue")
    help: str
    run: Runner
    args: tuple[Arg, ...] = ()


JSON = arg("--json", action="store_true", help="print JSON instead of text")
EMPLOYEE = arg("--employee", required=True, metavar="EMAIL|ID", help="the employee, by email or numeric id")
ANY_EMPLOYEE = arg("--employee", metavar="EMAIL|ID", help="only this employee (email or numeric id)")
COMPANY = arg("--company", action="store_true", help="the company's general channels")
DAYS = arg("--days", type=whole, metavar="N", help="lifetime in days from now (default: the company's)")
LABEL = arg("--label", metavar="TEXT", help="a note for admins, e.g. where the card was handed out")
HOST = arg("--host", metavar="HOST", help="address to listen on (default: CONTACTCARD_HOST)")
PORT = arg("--port", type=port, metavar="PORT", help="port to listen on (default: CONTACTCARD_PORT)")
