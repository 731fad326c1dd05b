"""The ``contactcard`` command line: thin adapters over the service, for admins and their scripts.

Every command reads ``Settings`` from the environment, opens the store (which applies migrations), loads
the secret, runs one use case and closes the store. Any error becomes one line on stderr,
``contactcard: error: <message>``, with exit status 2 for a bad command line and 1 for everything else.
The plain and ``--json`` outputs are a scripting contract (see ``format``). Each area's module ends with its
own ``COMMANDS`` table; this module joins them into one parser.
"""

from __future__ import annotations

import argparse
import sqlite3

from ..config import Settings
from ..models import ContactcardError
from . import accounts, api, cards, company, ops, people, scans, scim, server, webhooks
from .base import NO_POLICY_WARNING, PROG, Command, Parser, Runner, UsageError, fail
from .people import split_name

__all__ = ["NO_POLICY_WARNING", "build_parser", "main", "split_name"]

COMMANDS: tuple[Command, ...] = (*server.COMMANDS, *company.COMMANDS, *people.COMMANDS, *cards.COMMANDS,
                                 *scans.COMMANDS, *accounts.COMMANDS, *scim.COMMANDS, *ops.COMMANDS,
                                 *webhooks.COMMANDS, *api.COMMANDS)

_GROUP_HELP = {"company": "the company profile and channel policy", "employee": "employees",
               "channel": "contact channels", "card": "card links and QR codes", "scans": "scan records",
               "user": "sign-in accounts: invitations and password resets",
               "webhook": "webhook endpoints: signed events for a CRM, chat notifications", "api": "the JSON API",
               "api token": "API tokens: create (shown once), list, revoke",
               "scim": "SCIM provisioning from the identity provider", "scim token": "SCIM bearer tokens"}


def build_parser() -> Parser:
    parser = Parser(prog=PROG, description="Expiring, QR-coded business contact links.")
    parser.add_argument("--debug", action="store_true", help=argparse.SUPPRESS)
    top = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    groups: dict[tuple[str, ...], argparse._SubParsersAction[Parser]] = {(): top}
    for command in COMMANDS:
        *group, name = command.words
        for depth in range(1, len(group) + 1):  # "api token create": the groups "api", then "api token"
            path = tuple(group[:depth])
            if path not in groups:
                text = _GROUP_HELP[" ".join(path)]
                group_parser = groups[path[:-1]].add_parser(path[-1], help=text, description=text)
                groups[path] = group_parser.add_subparsers(dest="action" if depth == 1 else f"action{depth}",
                                                           metavar="ACTION", required=True)
        sub = groups[tuple(group)].add_parser(name, help=command.help, description=command.help)
        for option in command.args:
            sub.add_argument(*option.flags, **option.options)
        sub.set_defaults(run=command.run)
    return parser


def _os_message(exc: OSError) -> str:
    if exc.filename is not None and exc.strerror:
        return f"{exc.filename}: {exc.strerror}"
    return str(exc)


def main(argv: list[str] | None = None) -> int:
    try:
        args = build_parser().parse_args(argv)
    except UsageError as exc:
        return fail(str(exc), 2)
    except SystemExit as exc:  # --help
        return exc.code if isinstance(exc.code, int) else 0
    run: Runner = args.run
    try:
        return run(Settings.from_env(), args)
    except UsageError as exc:
        return fail(str(exc), 2)
    except ContactcardError as exc:
        return fail(str(exc), 1)
    except OSError as exc:
        return fail(_os_message(exc), 1)
    except sqlite3.Error as exc:
        return fail(f"database error: {exc}", 1)
    except KeyboardInterrupt:
        return fail("interrupted", 130)
    except Exception as exc:
        if args.debug:
            raise
        return fail(f"unexpected {type(exc).__name__}: {exc} (run with --debug for details)", 1)

