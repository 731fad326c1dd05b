"""The ``contactcard`` command line: thin adapters over the service, for admins and their scripts.

Every command reads ``Settings`` from the environment, opens the store (which applies migrations), loads
the secret, runs one use case and closes the store. Any error becomes one line on stderr,
``contactcard: error: <message>``, with exit status 2 for a bad command line and 1 for everything else.
The plain and ``--json`` outputs are a scripting contract (see ``cli_format``).
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import io
import re
import sqlite3
import sys
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, NoReturn

from . import cli_accounts, config, csvexport, demo, policy
from . import cli_format as fmt
from .accounts import Accounts
from .config import Settings
from .models import ChannelKind, Conflict, ContactcardError, IssuedCard, ValidationError
from .service import Service
from .store import Store

PROG = "contactcard"
NO_POLICY_WARNING = ("no company channel policy is set; any well-formed target is accepted "
                     "(see: contactcard company set --allow-...)")
EXPORT_PAGE = 500
DEFAULT_SCAN_LIMIT = 50
_NAME_SPLIT = re.compile(r"[ \u3000]+")

ServiceHandler = Callable[[Service, argparse.Namespace], Awaitable[int]]
Runner = Callable[[Settings, argparse.Namespace], int]


class UsageError(Exception):
    """A command line that cannot be run as given; exit status 2."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:  # argparse would print the usage block and exit
        raise UsageError(message)


# --- plumbing -----------------------------------------------------------------------------------


def _out(text: str = "") -> None:
    print(text)


def _json(value: object) -> None:
    print(fmt.dumps(value))


def _emit(args: argparse.Namespace, as_json: object, lines: Iterable[str]) -> None:
    """Print ``as_json`` with --json, else the text lines."""
    if args.json:
        _json(as_json)
    else:
        for line in lines:
            _out(line)


def _warn(message: str) -> None:
    print(f"{PROG}: warning: {message}", file=sys.stderr)


@asynccontextmanager
async def open_service(settings: Settings) -> AsyncIterator[Service]:
    secret = config.load_secret(settings.secret_file)
    store = await Store.open(settings.db_path)
    try:
        yield Service(store, secret=secret, base_url=settings.base_url)
    finally:
        await store.close()


def uses_service(handler: ServiceHandler) -> Runner:
    """Run an async handler against a freshly opened service, closing the store afterwards."""

    async def run_async(settings: Settings, args: argparse.Namespace) -> int:
        async with open_service(settings) as service:
            return await handler(service, args)

    def run(settings: Settings, args: argparse.Namespace) -> int:
        return asyncio.run(run_async(settings, args))

    return run


def _whole(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None


def _positive(text: str) -> int:
    if (value := _whole(text)) < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number of at least 1, got {text!r}")
    return value


def _port(text: str) -> int:
    if not 0 <= (value := _whole(text)) <= 65535:
        raise argparse.ArgumentTypeError(f"expected a port number from 0 to 65535, got {text!r}")
    return value


def _owner(args: argparse.Namespace) -> str | None:
    """The employee named by --employee, or None for the company (no --employee, or --company)."""
    if getattr(args, "company", False) and args.employee is not None:
        raise UsageError("give either --employee or --company, not both")
    return None if getattr(args, "company", False) else args.employee


# --- migrate, serve, demo -----------------------------------------------------------------------


async def _migrate(service: Service, args: argparse.Namespace) -> int:
    version = await service.store.schema_version()
    _emit(args, {"schema_version": version}, [f"schema version {version}"])
    return 0


def _listening(settings: Settings, host: str | None, port: int | None) -> Settings:
    """Apply --host/--port; an unset base URL (the default derived from host and port) follows them."""
    host = settings.host if host is None else host
    port = settings.port if port is None else port
    base_url = settings.base_url
    if base_url == f"http://{settings.host}:{settings.port}":
        base_url = f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"
    return dataclasses.replace(settings, host=host, port=port, base_url=base_url)


def _run_server(settings: Settings) -> int:
    import uvicorn

    from .app import create_app

    server = uvicorn.Server(uvicorn.Config(create_app(settings), host=settings.host, port=settings.port,
                                           workers=1, proxy_headers=False, server_header=False,
                                           log_level="info"))
    try:
        server.run()
    except SystemExit as exc:  # uvicorn exits this way when it cannot bind or the app fails to start
        return _fail("the server could not start (see the log above)", exc.code if isinstance(exc.code, int) else 1)
    except KeyboardInterrupt:  # uvicorn has shut down gracefully, then re-raised the Ctrl-C it caught
        pass
    return 0


def _serve(settings: Settings, args: argparse.Namespace) -> int:
    settings = _listening(settings, args.host, args.port)
    uses_service(_preflight)(settings, args)  # a bad secret or database fails here, as one line
    _out(settings.base_url)
    _out(f"listening on {settings.host}:{settings.port}")
    sys.stdout.flush()
    return _run_server(settings)


async def _preflight(service: Service, args: argparse.Namespace) -> int:
    """Nothing to do: opening the service has loaded the secret and migrated the database."""
    return 0


async def _demo_seed(service: Service, args: argparse.Namespace) -> int:
    cards = await demo.seed(service)
    company = await service.company()
    employees = {e.id: e for e in await service.employees()}
    _out(f"{company.name} ({company.name_en})" if company.name_en else company.name)
    for issued in cards:
        employee = employees[issued.card.employee_id]
        _out(f"{employee.display_name} <{employee.email}>: {issued.url}")
    _out("open:")
    for url in [*(c.url for c in cards), f"{service.base_url}/admin"]:
        _out(f"  {url}")
    accounts = Accounts(service.store, service.secret, service.clock, base_url=service.base_url)
    admin = await service.store.user_by_email(demo.ADMIN_EMAIL)
    link = (await accounts.create_admin(demo.ADMIN_EMAIL, actor="demo") if admin is None
            else await accounts.reset_link(admin.user.id, actor="demo"))
    assert link is not None
    _out(f"sign in as admin {demo.ADMIN_EMAIL}: set a password at {link.url}")
    first = employees[cards[0].card.employee_id]
    invite = await accounts.invite_employee(first.id, actor="demo")
    _out(f"sign in as {first.email} (the /me page with the QR): set a password at {invite.url}")
    _out("(each run gives fresh one-time links, valid 72 hours)")
    return 0


def _demo(settings: Settings, args: argparse.Namespace) -> int:
    settings = _listening(settings, args.host, args.port)
    uses_service(_demo_seed)(settings, args)
    if args.no_serve:
        return 0
    _out(f"serving {settings.base_url} (listening on {settings.host}:{settings.port})")
    sys.stdout.flush()
    return _run_server(settings)


# --- company ------------------------------------------------------------------------------------

_COMPANY_FIELDS = (("name", "name"), ("name_en", "name_en"), ("hours", "business_hours"),
                   ("hours_en", "business_hours_en"), ("timezone", "timezone"),
                   ("card_days", "default_card_days"), ("retention_days", "retention_days"))
_GENERAL_CHANNELS = (("phone", ChannelKind.PHONE), ("email", ChannelKind.EMAIL), ("web", ChannelKind.WEB),
                     ("booking", ChannelKind.BOOKING), ("line", ChannelKind.LINE))


_POLICY_LISTS: tuple[tuple[str, str, Callable[[str], str]], ...] = tuple(
    (opt, name, policy.ALLOW_LISTS[name]) for opt, name in (
        ("allow_email_domain", "allow_email_domains"),
        ("allow_phone_prefix", "allow_phone_prefixes"),
        ("allow_line_id", "allow_line_ids"),
        ("allow_line_works_domain", "allow_line_works_domains"),
    )
)


def _unique(values: Iterable[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(values))


def _company_changes(args: argparse.Namespace) -> dict[str, Any]:
    changes: dict[str, Any] = {name: getattr(args, opt) for opt, name in _COMPANY_FIELDS
                               if getattr(args, opt) is not None}
    if args.brand_color is not None:
        changes["brand_color"] = args.brand_color
    for opt, name, normalise in _POLICY_LISTS:
        given: list[str] | None = getattr(args, opt)
        if given is not None:  # a list given replaces the stored one; an empty value clears it
            changes[name] = _unique(normalise(v) for v in given if v.strip())
    return changes


async def _company_set(service: Service, args: argparse.Namespace) -> int:
    if args.name is None and await service.store.company() is None:
        raise ValidationError("the company has no profile yet; give its name with --name")
    company = dataclasses.replace(await service.company(), **_company_changes(args))
    general = {kind: getattr(args, opt) for opt, kind in _GENERAL_CHANNELS if getattr(args, opt) is not None}
    saved = await service.save_company(company, general=general)
    _emit(args, fmt.company_json(saved, configured=True), fmt.company_lines(saved, configured=True))
    if general and not saved.has_policy:
        _warn(NO_POLICY_WARNING)
    return 0


async def _company_show(service: Service, args: argparse.Namespace) -> int:
    configured = await service.store.company() is not None
    company = await service.company()
    _emit(args, fmt.company_json(company, configured=configured), fmt.company_lines(company, configured=configured))
    return 0


# --- employees ----------------------------------------------------------------------------------


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
    employee = await service.add_employee(
        email=args.email, family_name=family, given_name=given, family_kana=family_kana, given_kana=given_kana,
        latin_name=args.latin or "", title=args.title or "", department=args.department or "",
    )
    _emit(args, fmt.employee_json(employee), [fmt.employee_line(employee)])
    return 0


async def _employee_list(service: Service, args: argparse.Namespace) -> int:
    employees = await service.employees()
    by_id = {e.id: e for e in employees}
    _emit(args, [fmt.employee_json(e, by_id.get(e.successor_id or 0)) for e in employees],
          map(fmt.employee_line, employees))
    return 0


async def _employee_depart(service: Service, args: argparse.Namespace) -> int:
    employee = await service.depart(args.employee, args.successor)
    successor = None if employee.successor_id is None else await service.find_employee(employee.successor_id)
    if args.json:
        _json(fmt.employee_json(employee, successor))
    else:
        heir = "the company" if successor is None else f"{successor.display_name} <{successor.email}>"
        _out(f"{employee.email} departed; their link now introduces {heir}")
    return 0


# --- channels -----------------------------------------------------------------------------------


async def _channel_add(service: Service, args: argparse.Namespace) -> int:
    channel = await service.add_channel(_owner(args), args.kind, args.target, args.label or "")
    _emit(args, fmt.channel_json(channel), [fmt.channel_line(channel)])
    if not (await service.company()).has_policy:
        _warn(NO_POLICY_WARNING)
    return 0


async def _channel_list(service: Service, args: argparse.Namespace) -> int:
    channels = await service.channels(_owner(args))
    _emit(args, [fmt.channel_json(c) for c in channels], map(fmt.channel_line, channels))
    return 0


async def _channel_remove(service: Service, args: argparse.Namespace) -> int:
    channel = await service.remove_channel(args.id, args.employee)
    _emit(args, fmt.channel_json(channel), [f"removed {fmt.channel_line(channel)}"])
    return 0


# --- cards --------------------------------------------------------------------------------------


async def _print_issued(service: Service, args: argparse.Namespace, issued: IssuedCard) -> int:
    employee = await service.find_employee(issued.card.employee_id)
    if args.json:
        _json(fmt.card_json(issued, employee, service.clock()))
    else:
        _out(issued.url)
        expires = issued.card.expires_at
        _out(f"expires {fmt.iso(expires)} ({fmt.local(await service.company(), expires)})")
    return 0


async def _card_issue(service: Service, args: argparse.Namespace) -> int:
    return await _print_issued(service, args, await service.issue_card(args.employee, days=args.days,
                                                                        label=args.label or ""))


async def _card_rotate(service: Service, args: argparse.Namespace) -> int:
    return await _print_issued(service, args, await service.rotate_card(args.employee, days=args.days))


async def _card_extend(service: Service, args: argparse.Namespace) -> int:
    return await _print_issued(service, args, await service.extend_card(args.employee, days=args.days))


async def _card_revoke(service: Service, args: argparse.Namespace) -> int:
    card = await service.revoke_card(args.employee)
    employee = await service.find_employee(card.employee_id)
    if args.json:
        _json({"card_id": card.id, "employee": employee.email, "generation": card.generation,
               "status": "revoked", "revoked_at": fmt.iso(card.revoked_at), "expires_at": fmt.iso(card.expires_at)})
    else:
        _out(f"revoked card generation {card.generation} of {employee.email} at {fmt.iso(card.revoked_at)}; "
             "the link now shows the company")
    return 0


async def _card_list(service: Service, args: argparse.Namespace) -> int:
    cards = await service.cards(args.employee)
    employees = {e.id: e for e in await service.employees()}
    now = service.clock()
    _emit(args, [fmt.card_json(c, employees.get(c.card.employee_id), now) for c in cards],
          [fmt.card_line(c, employees.get(c.card.employee_id), now) for c in cards])
    return 0


async def _card_qr(service: Service, args: argparse.Namespace) -> int:
    from . import qr

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
        _json({"path": str(output), "url": current.url, "format": kind, "employee": employee.email})
    else:
        _out(str(output))
        _out(current.url)
    return 0


# --- scans --------------------------------------------------------------------------------------


async def _employee_id(service: Service, ref: str | None) -> int | None:
    return None if ref is None else (await service.find_employee(ref)).id


async def _scans_stats(service: Service, args: argparse.Namespace) -> int:
    from . import stats

    result = await stats.stats(service, employee_id=await _employee_id(service, args.employee), days=args.days)
    total = result.total
    _emit(args, result.as_json(), [
        *(f"{d.day}  scans {d.scans}  visitors {d.visitors}  clicks {d.clicks}  vcards {d.vcards}  bots {d.bots}"
          for d in result.days),
        f"total  scans {total.scans}  visitors {total.visitors}  clicks {total.clicks}  vcards {total.vcards}  "
        f"bots {total.bots}  click rate {total.click_rate:.0%}",
    ])
    return 0


async def _purge(service: Service, args: argparse.Namespace) -> int:
    from . import stats

    deleted = await stats.purge(service)
    days = (await service.company()).retention_days
    _emit(args, {"deleted": deleted, "retention_days": days},
          [f"deleted {deleted} scan events older than {days} days; daily totals kept"])
    return 0


async def _scans_list(service: Service, args: argparse.Namespace) -> int:
    events = await service.store.events(employee_id=await _employee_id(service, args.employee), limit=args.limit)
    _emit(args, [fmt.event_json(e) for e in events], map(fmt.event_line, events))
    return 0


async def _write_events_csv(service: Service, out: IO[str], employee_id: int | None) -> int:
    """Every event, newest first, paged; returns the number of rows written."""
    writer = csvexport.Writer(out)
    writer.writerow(csvexport.EVENT_HEADER)
    count, offset, below = 0, 0, None
    while page := await service.store.events(employee_id=employee_id, limit=EXPORT_PAGE, offset=offset):
        offset += len(page)
        # scans committed during the export push older rows down a page: skip any already written
        fresh = [e for e in page if below is None or e.id < below]
        writer.writerows(csvexport.event_row(e) for e in fresh)
        count += len(fresh)
        below = min([e.id for e in fresh], default=below)
    return count


def _scans_export(settings: Settings, args: argparse.Namespace) -> int:
    """Files are opened here, outside the event loop; the rows are written by an async handler."""
    if not args.csv:
        raise UsageError("choose a format: --csv")

    def export_to(out: IO[str]) -> int:
        async def handler(service: Service, args: argparse.Namespace) -> int:
            return await _write_events_csv(service, out, await _employee_id(service, args.employee))

        return uses_service(handler)(settings, args)

    if args.output is not None:
        with open(args.output, "w", encoding="utf-8-sig", newline="") as out:
            count = export_to(out)
        _out(f"wrote {count} scans to {args.output}")
        return 0
    sys.stdout.flush()
    buffer = getattr(sys.stdout, "buffer", None)
    if buffer is None:  # a replaced stdout with no bytes underneath
        sys.stdout.write("\ufeff")
        export_to(sys.stdout)
        return 0
    wrapper = io.TextIOWrapper(buffer, encoding="utf-8-sig", newline="")
    try:
        export_to(wrapper)
    finally:
        wrapper.flush()
        wrapper.detach()
    return 0


# --- the command table --------------------------------------------------------------------------


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
DAYS = arg("--days", type=_whole, metavar="N", help="lifetime in days from now (default: the company's)")
LABEL = arg("--label", metavar="TEXT", help="a note for admins, e.g. where the card was handed out")
HOST = arg("--host", metavar="HOST", help="address to listen on (default: CONTACTCARD_HOST)")
PORT = arg("--port", type=_port, metavar="PORT", help="port to listen on (default: CONTACTCARD_PORT)")


def _list_option(flag: str, what: str) -> Arg:
    return arg(flag, action="append", metavar="VALUE",
               help=f"allowed {what}; repeat for several; replaces the stored list ('' clears it)")


COMMANDS: tuple[Command, ...] = (
    Command(("migrate",), "apply database migrations and print the schema version", uses_service(_migrate),
            (JSON,)),
    Command(("serve",), "run the web server", _serve, (HOST, PORT)),
    Command(("demo",), "create a sample company, two employees and their cards, then serve", _demo,
            (HOST, PORT, arg("--no-serve", action="store_true", help="seed and print the links only"))),
    Command(("company", "set"), "create or change the company profile, policy and general channels",
            uses_service(_company_set), (
                arg("--name", metavar="NAME", help="company name (required the first time)"),
                arg("--name-en", metavar="NAME", help="English company name"),
                arg("--phone", metavar="TEL", help="general phone number"),
                arg("--email", metavar="EMAIL", help="general email address"),
                arg("--web", metavar="URL", help="web site (https://)"),
                arg("--booking", metavar="URL", help="booking page (https://)"),
                arg("--line", metavar="URL", help="LINE Official Account link"),
                _list_option("--allow-email-domain", "email domain"),
                _list_option("--allow-phone-prefix", "phone prefix, e.g. +813 or 03"),
                _list_option("--allow-line-id", "LINE Official Account id, e.g. @acme"),
                _list_option("--allow-line-works-domain", "LINE WORKS domain"),
                arg("--brand-color", metavar="#RRGGBB", help="brand colour"),
                arg("--hours", metavar="TEXT", help="business hours (Japanese)"),
                arg("--hours-en", metavar="TEXT", help="business hours (English)"),
                arg("--timezone", metavar="TZ", help="IANA time zone, e.g. Asia/Tokyo"),
                arg("--card-days", type=_whole, metavar="N", help="default link lifetime in days"),
                arg("--retention-days", type=_whole, metavar="N", help="days to keep scan records"),
                JSON)),
    Command(("company", "show"), "show the company profile", uses_service(_company_show), (JSON,)),
    Command(("employee", "add"), "add an employee", uses_service(_employee_add), (
        arg("--email", required=True, metavar="EMAIL", help="work email address (unique)"),
        arg("--name", required=True, metavar="NAME", help="full name, family name first, e.g. '山田 太郎'"),
        arg("--given", metavar="NAME", help="given name (default: after the first space of --name)"),
        arg("--kana", metavar="KANA", help="reading, family first, e.g. 'ヤマダ タロウ'"),
        arg("--given-kana", metavar="KANA", help="reading of the given name"),
        arg("--latin", metavar="NAME", help="name in Latin letters, e.g. 'Taro Yamada'"),
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
            (arg("--id", required=True, type=_whole, metavar="N", help="channel id"), ANY_EMPLOYEE, JSON)),
    Command(("card", "issue"), "issue an employee's card link", uses_service(_card_issue),
            (EMPLOYEE, DAYS, LABEL, JSON)),
    Command(("card", "rotate"), "replace the link with a fresh one; the old one stops at once",
            uses_service(_card_rotate), (EMPLOYEE, DAYS, JSON)),
    Command(("card", "revoke"), "stop the link; it then shows the company", uses_service(_card_revoke),
            (EMPLOYEE, JSON)),
    Command(("card", "extend"), "set the link to expire N days from now", uses_service(_card_extend),
            (EMPLOYEE, DAYS, JSON)),
    Command(("card", "list"), "list cards and their links", uses_service(_card_list), (ANY_EMPLOYEE, JSON)),
    Command(("card", "qr"), "write the QR code of an employee's live link", uses_service(_card_qr), (
        EMPLOYEE,
        arg("--format", choices=["png", "svg"], help="image format (default: from the --output suffix)"),
        arg("--output", required=True, metavar="FILE", help="file to write"),
        arg("--box-size", type=_whole, metavar="N", help="PNG pixels per module (default 10)"),
        JSON)),
    Command(("scans", "list"), "list recent scans, newest first", uses_service(_scans_list), (
        ANY_EMPLOYEE,
        arg("--limit", type=_positive, default=DEFAULT_SCAN_LIMIT, metavar="N",
            help=f"how many (default {DEFAULT_SCAN_LIMIT})"),
        JSON)),
    Command(("scans", "export"), "export every scan as CSV (UTF-8 with BOM, for spreadsheets)",
            _scans_export, (
                arg("--csv", action="store_true", help="CSV output (the only format)"),
                arg("--output", metavar="FILE", help="file to write (default: standard output)"),
                ANY_EMPLOYEE)),
    Command(("scans", "stats"), "people's scans, unique visitors, clicks and vCard saves per day (bots apart)",
            uses_service(_scans_stats), (
                ANY_EMPLOYEE,
                arg("--days", type=_positive, default=30, metavar="N", help="the last N days (default 30)"),
                JSON)),
    Command(("create-admin",), "create an admin; prints a one-time link to set the password",
            uses_service(cli_accounts.create_admin), (
                arg("--email", required=True, metavar="EMAIL", help="the admin's email address"),
                arg("--password-file", metavar="FILE", help="set the password from the first line of FILE instead"),
                JSON)),
    Command(("user", "invite"), "print a one-time link for an employee to set a password (72 hours)",
            uses_service(cli_accounts.user_invite), (EMPLOYEE, JSON)),
    Command(("user", "reset"), "print a one-time password-reset link for any user (72 hours)",
            uses_service(cli_accounts.user_reset),
            (arg("--email", required=True, metavar="EMAIL", help="the user's email address"), JSON)),
    Command(("purge",), "delete scan events older than the company's retention; daily totals are kept",
            uses_service(_purge), (JSON,)),
)

_GROUP_HELP = {"company": "the company profile and channel policy", "employee": "employees",
               "channel": "contact channels", "card": "card links and QR codes", "scans": "scan records",
               "user": "sign-in accounts: invitations and password resets"}


def build_parser() -> _Parser:
    parser = _Parser(prog=PROG, description="Expiring, QR-coded business contact links.")
    parser.add_argument("--debug", action="store_true", help=argparse.SUPPRESS)
    top = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    groups: dict[str, argparse._SubParsersAction[_Parser]] = {}
    for command in COMMANDS:
        *group, name = command.words
        if group and group[0] not in groups:
            group_parser = top.add_parser(group[0], help=_GROUP_HELP[group[0]], description=_GROUP_HELP[group[0]])
            groups[group[0]] = group_parser.add_subparsers(dest="action", metavar="ACTION", required=True)
        sub = (groups[group[0]] if group else top).add_parser(name, help=command.help, description=command.help)
        for option in command.args:
            sub.add_argument(*option.flags, **option.options)
        sub.set_defaults(run=command.run)
    return parser


def _fail(message: str, status: int) -> int:
    print(f"{PROG}: error: {' '.join(message.splitlines()) or 'failed'}", file=sys.stderr)
    return status


def _os_message(exc: OSError) -> str:
    if exc.filename is not None and exc.strerror:
        return f"{exc.filename}: {exc.strerror}"
    return str(exc)


def main(argv: list[str] | None = None) -> int:
    try:
        args = build_parser().parse_args(argv)
    except UsageError as exc:
        return _fail(str(exc), 2)
    except SystemExit as exc:  # --help
        return exc.code if isinstance(exc.code, int) else 0
    run: Runner = args.run
    try:
        return run(Settings.from_env(), args)
    except UsageError as exc:
        return _fail(str(exc), 2)
    except ContactcardError as exc:
        return _fail(str(exc), 1)
    except OSError as exc:
        return _fail(_os_message(exc), 1)
    except sqlite3.Error as exc:
        return _fail(f"database error: {exc}", 1)
    except KeyboardInterrupt:
        return _fail("interrupted", 130)
    except Exception as exc:
        if args.debug:
            raise
        return _fail(f"unexpected {type(exc).__name__}: {exc} (run with --debug for details)", 1)


if __name__ == "__main__":
    raise SystemExit(main())
