"""card issue|rotate|revoke|extend|list|expiring|extend-expiring|qr."""

from __future__ import annotations

import argparse
import asyncio
from datetime import timedelta
from pathlib import Path

from ..models import Conflict, IssuedCard
from ..service import MAX_CARD_DAYS, Service
from . import format as fmt
from .base import (
    ACTOR,
    ANY_EMPLOYEE,
    DAYS,
    EMPLOYEE,
    JSON,
    LABEL,
    Command,
    UsageError,
    arg,
    emit,
    out,
    print_json,
    uses_service,
    whole,
)


async def _print_issued(service: Service, args: argparse.Namespace, issued: IssuedCard) -> int:
    employee = await service.find_employee(issued.card.employee_id)
    if args.json:
        print_json(fmt.card_json(issued, employee, service.clock()))
    else:
        out(issued.url)
        expires = issued.card.expires_at
        out(f"expires {fmt.iso(expires)} ({fmt.local(await service.company(), expires)})")
    return 0


async def _card_issue(service: Service, args: argparse.Namespace) -> int:
    return await _print_issued(service, args, await service.issue_card(args.employee, days=args.days,
                                                                        label=args.label or "", actor=ACTOR))


async def _card_rotate(service: Service, args: argparse.Namespace) -> int:
    return await _print_issued(service, args, await service.rotate_card(args.employee, days=args.days, actor=ACTOR))


async def _card_extend(service: Service, args: argparse.Namespace) -> int:
    return await _print_issued(service, args, await service.extend_card(args.employee, days=args.days, actor=ACTOR))


async def _card_revoke(service: Service, args: argparse.Namespace) -> int:
    card = await service.revoke_card(args.employee, actor=ACTOR)
    employee = await service.find_employee(card.employee_id)
    if args.json:
        print_json({"card_id": card.id, "employee": employee.email, "generation": card.generation,
               "status": "revoked", "revoked_at": fmt.iso(card.revoked_at), "expires_at": fmt.iso(card.expires_at)})
    else:
        out(f"revoked card generation {card.generation} of {employee.email} at {fmt.iso(card.revoked_at)}; "
             "the link now shows the company")
    return 0


async def _card_list(service: Service, args: argparse.Namespace) -> int:
    cards = await service.cards(args.employee)
    employees = {e.id: e for e in await service.employees()}
    now = service.clock()
    emit(args, [fmt.card_json(c, employees.get(c.card.employee_id), now) for c in cards],
          [fmt.card_line(c, employees.get(c.card.employee_id), now) for c in cards])
    return 0


async def _card_expiring(service: Service, args: argparse.Namespace) -> int:
    if args.within is not None and not 1 <= args.within <= MAX_CARD_DAYS:
        raise UsageError(f"--within must be 1 to {MAX_CARD_DAYS} days")
    expiring = await service.expiring_cards(None if args.within is None else timedelta(days=args.within))
    emit(args, [fmt.expiring_json(e) for e in expiring], [fmt.expiring_line(e) for e in expiring])
    return 0


async def _card_extend_expiring(service: Service, args: argparse.Namespace) -> int:
    extended = await service.extend_expiring(days=args.days, actor=ACTOR)
    if args.json:
        print_json({"extended": extended})
    else:
        out(f"extended {extended} link{'' if extended == 1 else 's'} about to expire")
    return 0


async def _card_qr(service: Service, args: argparse.Namespace) -> int:
    from .. import qr

    output = Path(args.output)
    kind = args.format or output.suffix.lower().lstrip(".")
    if kind not in ("png", "svg"):
        raise UsageError("give --format png or --format svg (or an --output ending in .png or .svg)")
    if kind == "svg" and args.box_size is not None:
        raise UsageError("--box-size applies to PNG output only")
    employee = await service.find_employee(args.employee)
    current = await service.current_card(employee.id)
    if current is None or not current.card.is_live(service.clock()):
        raise Conflict(f"{employee.email} has no live card; issue or extend one first")
    data = qr.png_bytes(current.url, box_size=args.box_size or 10) if kind == "png" else qr.svg_bytes(current.url)
    await asyncio.to_thread(output.write_bytes, data)
    if args.json:
        print_json({"path": str(output), "url": current.url, "format": kind, "employee": employee.email})
    else:
        out(str(output))
        out(current.url)
    return 0


COMMANDS: tuple[Command, ...] = (
    Command(("card", "issue"), "issue an employee's card link", uses_service(_card_issue),
            (EMPLOYEE, DAYS, LABEL, JSON)),
    Command(("card", "rotate"), "replace the link with a fresh one; the old one stops at once",
            uses_service(_card_rotate), (EMPLOYEE, DAYS, JSON)),
    Command(("card", "revoke"), "stop the link; it then shows the company", uses_service(_card_revoke),
            (EMPLOYEE, JSON)),
    Command(("card", "extend"), "set the link to expire N days from now", uses_service(_card_extend),
            (EMPLOYEE, DAYS, JSON)),
    Command(("card", "list"), "list cards and their links", uses_service(_card_list), (ANY_EMPLOYEE, JSON)),
    Command(("card", "expiring"), "list the live links that expire soon, soonest first",
            uses_service(_card_expiring), (
                arg("--within", type=whole, metavar="DAYS",
                    help="expiring within this many days (default: the notice the console and /me give, two weeks "
                         "or half the company's link lifetime when that is shorter)"),
                JSON)),
    Command(("card", "extend-expiring"), "extend every link that card expiring lists to N days from now",
            uses_service(_card_extend_expiring), (DAYS, JSON)),
    Command(("card", "qr"), "write the QR code of an employee's live link", uses_service(_card_qr), (
        EMPLOYEE,
        arg("--format", choices=["png", "svg"], help="image format (default: from the --output suffix)"),
        arg("--output", required=True, metavar="FILE", help="file to write"),
        arg("--box-size", type=whole, metavar="N", help="PNG pixels per module (default 10)"),
        JSON)),
)
