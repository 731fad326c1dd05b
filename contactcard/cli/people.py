"""employee add|list|depart and channel add|list|remove."""

from __future__ import annotations

import argparse
import re

from ..models import ChannelKind, EmployeeProfile
from ..service import Service
from . import format as fmt
from .base import (
    ACTOR,
    ANY_EMPLOYEE,
    COMPANY,
    EMPLOYEE,
    JSON,
    NO_POLICY_WARNING,
    Command,
    arg,
    emit,
    out,
    owner,
    print_json,
    uses_service,
    warn,
    whole,
)

_NAME_SPLIT = re.compile(r"[ \u3000]+")

def split_name(full: str, given: str | None) -> tuple[str, str]:
    """(family, given) from a full name written family first; --given, when present, wins."""
    full = full.strip()
    parts = _NAME_SPLIT.split(full, maxsplit=1)
    if given is None:
        return (parts[0], parts[1]) if len(parts) == 2 else (full, "")
    if len(parts) == 2 and parts[1].split() == given.split():
        return parts[0], given
    return full, given


async def _employee_add(service: Service, args: argparse.Namespace) -> int:
    family, given = split_name(args.name, args.given)
    family_kana, given_kana = split_name(args.kana, args.given_kana) if args.kana else ("", args.given_kana or "")
    employee = await service.add_employee(EmployeeProfile(
        email=args.email, family_name=family, given_name=given, family_kana=family_kana, given_kana=given_kana,
        latin_name=args.latin or "", title=args.title or "", department=args.department or "",
    ), actor=ACTOR)
    emit(args, fmt.employee_json(employee), [fmt.employee_line(employee)])
    return 0


async def _employee_list(service: Service, args: argparse.Namespace) -> int:
    employees = await service.employees()
    by_id = {e.id: e for e in employees}
    emit(args, [fmt.employee_json(e, by_id.get(e.successor_id or 0)) for e in employees],
          map(fmt.employee_line, employees))
    return 0


async def _employee_depart(service: Service, args: argparse.Namespace) -> int:
    employee = await service.depart(args.employee, args.successor, actor=ACTOR)
    successor = None if employee.successor_id is None else await service.find_employee(employee.successor_id)
    if args.json:
        print_json(fmt.employee_json(employee, successor))
    else:
        heir = "the company" if successor is None else f"{successor.display_name} <{successor.email}>"
        out(f"{employee.email} departed; their link now introduces {heir}")
    return 0


# --- channels -----------------------------------------------------------------------------------


async def _channel_add(service: Service, args: argparse.Namespace) -> int:
    channel = await service.add_channel(owner(args), args.kind, args.target, args.label or "", actor=ACTOR)
    emit(args, fmt.channel_json(channel), [fmt.channel_line(channel)])
    if not (await service.company()).has_policy:
        warn(NO_POLICY_WARNING)
    return 0


async def _channel_list(service: Service, args: argparse.Namespace) -> int:
    channels = await service.channels(owner(args))
    emit(args, [fmt.channel_json(c) for c in channels], map(fmt.channel_line, channels))
    return 0


async def _channel_remove(service: Service, args: argparse.Namespace) -> int:
    channel = await service.remove_channel(args.id, args.employee, actor=ACTOR)
    emit(args, fmt.channel_json(channel), [f"removed {fmt.channel_line(channel)}"])
    return 0


COMMANDS: tuple[Command, ...] = (
    Command(("employee", "add"), "add an employee", uses_service(_employee_add), (
        arg("--email", required=True, metavar="EMAIL", help="work email address (unique)"),
        arg("--name", required=True, metavar="NAME", help="full name, family name first, e.g. '山田 太郎'"),
        arg("--given", metavar="NAME", help="given name (default: after the first space of --name)"),
        arg("--kana", metavar="KANA", help="reading, family first, e.g. 'ヤマダ タロウ'"),
        arg("--given-kana", metavar="KANA", help="reading of the given name"),
        arg("--latin", metavar="NAME", help="name in Latin letters for readers abroad, e.g. 'Taro Yamada'"),
        arg("--title", metavar="TEXT", help="job title"),
        arg("--department", metavar="TEXT", help="department"),
        JSON)),
    Command(("employee", "list"), "list employees", uses_service(_employee_list), (JSON,)),
    Command(("employee", "depart"), "mark an employee as departed; their link then introduces the successor",
            uses_service(_employee_depart),
            (EMPLOYEE, arg("--successor", metavar="EMAIL|ID", help="who takes over their customers"), JSON)),
    Command(("channel", "add"), "add a contact channel to an employee (or to the company)",
            uses_service(_channel_add), (
                ANY_EMPLOYEE, COMPANY,
                arg("--kind", required=True, choices=[k.value for k in ChannelKind], help="channel kind"),
                arg("--target", required=True, metavar="TARGET", help="https:// link, tel: number or mailto: address"),
                arg("--label", metavar="TEXT", help="button label (default: by kind)"),
                JSON)),
    Command(("channel", "list"), "list an employee's (or the company's) channels", uses_service(_channel_list),
            (ANY_EMPLOYEE, COMPANY, JSON)),
    Command(("channel", "remove"), "remove a channel", uses_service(_channel_remove),
            (arg("--id", required=True, type=whole, metavar="N", help="channel id"), ANY_EMPLOYEE, JSON)),
)
