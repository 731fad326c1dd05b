"""CLI handlers for accounts: the first admin, employee invitations and password-reset links.

A one-time link is printed once; only its SHA-256 is stored, so it cannot be shown again: issue a new one.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from ..accounts import Accounts, OneTimeLink
from ..models import NotFound, ValidationError
from ..service import Service
from . import format as fmt
from .base import ACTOR, EMPLOYEE, JSON, Command, arg, uses_accounts


def _print_link(args: argparse.Namespace, link: OneTimeLink) -> int:
    if args.json:
        print(fmt.dumps({"email": link.user.email, "role": link.user.role, "purpose": link.purpose,
                         "url": link.url, "expires_at": link.expires_at.isoformat()}))
    else:
        print(link.url)
        print(f"one-time link for {link.user.email}; it expires {link.expires_at.isoformat(timespec='minutes')} "
              "and works once")
    return 0


def _read_password(path: str) -> str:
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise ValidationError(f"cannot read the password file: {exc.strerror or exc}") from None
    lines = text.splitlines()
    return lines[0] if lines else ""


async def create_admin(service: Service, accounts: Accounts, args: argparse.Namespace) -> int:
    password = None if args.password_file is None else _read_password(args.password_file)
    link = await accounts.create_admin(args.email, password=password, actor=ACTOR)
    if link is not None:
        return _print_link(args, link)
    if args.json:
        print(fmt.dumps({"email": args.email.strip(), "role": "admin", "password_set": True}))
    else:
        print(f"admin {args.email.strip()} created; sign in at {service.base_url}/login")
    return 0


async def user_invite(service: Service, accounts: Accounts, args: argparse.Namespace) -> int:
    employee = await service.find_employee(args.employee)
    return _print_link(args, await accounts.invite_employee(employee.id, actor=ACTOR))


async def user_reset(service: Service, accounts: Accounts, args: argparse.Namespace) -> int:
    user = await accounts.user_by_email(args.email)
    if user is None:
        raise NotFound(f"no user {args.email!r}")
    return _print_link(args, await accounts.reset_link(user.id, actor=ACTOR))


COMMANDS: tuple[Command, ...] = (
    Command(("create-admin",), "create an admin; prints a one-time link to set the password",
            uses_accounts(create_admin), (
                arg("--email", required=True, metavar="EMAIL", help="the admin's email address"),
                arg("--password-file", metavar="FILE", help="set the password from the first line of FILE instead"),
                JSON)),
    Command(("user", "invite"), "print a one-time link for an employee to set a password (72 hours)",
            uses_accounts(user_invite), (EMPLOYEE, JSON)),
    Command(("user", "reset"), "print a one-time password-reset link for any user (72 hours)",
            uses_accounts(user_reset),
            (arg("--email", required=True, metavar="EMAIL", help="the user's email address"), JSON)),
)
