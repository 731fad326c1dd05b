"""migrate, serve and demo: the commands that open the database for the server or seed it."""

from __future__ import annotations

import argparse
import dataclasses
import ipaddress
import sys

from .. import config, demo
from ..accounts import Accounts
from ..config import Settings
from ..service import Service
from .base import HOST, JSON, PORT, Command, UsageError, arg, emit, fail, out, uses_accounts, uses_service


async def _migrate(service: Service, args: argparse.Namespace) -> int:
    version = await service.schema_version()
    emit(args, {"schema_version": version}, [f"schema version {version}"])
    return 0


def _listening(settings: Settings, host: str | None, port: int | None) -> Settings:
    """Apply --host/--port; an unset base URL (the default derived from host and port) follows them."""
    host = settings.host if host is None else host
    port = settings.port if port is None else port
    base_url = settings.base_url
    if base_url == f"http://{settings.host}:{settings.port}":
        base_url = f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"
    return dataclasses.replace(settings, host=host, port=port, base_url=base_url)


def _edge(settings: Settings, args: argparse.Namespace) -> Settings:
    """Apply --log-format and --trusted-proxy (added to CONTACTCARD_TRUSTED_PROXIES); refuse to serve plain http
    beyond this machine unless --insecure: session cookies and passwords would cross the network in clear."""
    extra = config.trusted_proxies(args.trusted_proxy or [])
    settings = dataclasses.replace(settings, log_format=args.log_format or settings.log_format,
                                   trusted_proxies=settings.trusted_proxies + extra)
    if not settings.secure_cookies and not _is_loopback(settings.host) and not args.insecure:
        raise UsageError(f"refusing to serve http on non-loopback address {settings.host}: set an https "
                         "CONTACTCARD_BASE_URL (behind a TLS proxy) or pass --insecure")
    return settings


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _run_server(settings: Settings) -> int:
    from .. import serving
    from ..app import create_app

    try:
        serving.run(create_app(settings), settings)
    except SystemExit as exc:  # uvicorn exits this way when it cannot bind or the app fails to start
        return fail("the server could not start (see the log above)", exc.code if isinstance(exc.code, int) else 1)
    except KeyboardInterrupt:  # uvicorn has shut down gracefully, then re-raised the Ctrl-C it caught
        pass
    return 0


def _serve(settings: Settings, args: argparse.Namespace) -> int:
    settings = _edge(_listening(settings, args.host, args.port), args)
    uses_service(_preflight)(settings, args)  # a bad secret or database fails here, as one line
    out(settings.base_url)
    out(f"listening on {settings.host}:{settings.port}")
    sys.stdout.flush()
    return _run_server(settings)


async def _preflight(service: Service, args: argparse.Namespace) -> int:
    """Nothing to do: opening the service has loaded the secret and migrated the database."""
    return 0


async def _demo_seed(service: Service, accounts: Accounts, args: argparse.Namespace) -> int:
    cards = await demo.seed(service)
    company = await service.company()
    employees = {e.id: e for e in await service.employees()}
    out(f"{company.name} ({company.name_en})" if company.name_en else company.name)
    for issued in cards:
        employee = employees[issued.card.employee_id]
        out(f"{employee.display_name} <{employee.email}>: {issued.url}")
    out("open:")
    for url in [*(c.url for c in cards), f"{service.base_url}/admin"]:
        out(f"  {url}")
    admin = await accounts.user_by_email(demo.ADMIN_EMAIL)
    link = (await accounts.create_admin(demo.ADMIN_EMAIL, actor=demo.ACTOR) if admin is None
            else await accounts.reset_link(admin.id, actor=demo.ACTOR))
    assert link is not None
    out(f"sign in as admin {demo.ADMIN_EMAIL}: set a password at {link.url}")
    first = employees[cards[0].card.employee_id]
    invite = await accounts.invite_employee(first.id, actor=demo.ACTOR)
    out(f"sign in as {first.email} (the /me page with the QR): set a password at {invite.url}")
    out("(each run gives fresh one-time links, valid 72 hours)")
    return 0


def _demo(settings: Settings, args: argparse.Namespace) -> int:
    settings = _edge(_listening(settings, args.host, args.port), args)
    uses_accounts(_demo_seed)(settings, args)
    if args.no_serve:
        return 0
    out(f"serving {settings.base_url} (listening on {settings.host}:{settings.port})")
    sys.stdout.flush()
    return _run_server(settings)


_EDGE = (
    arg("--log-format", choices=config.LOG_FORMATS, help="text lines or JSON objects, one per line "
        "(default: CONTACTCARD_LOG_FORMAT or text)"),
    arg("--trusted-proxy", action="append", metavar="CIDR", help="a reverse proxy whose X-Forwarded-For/-Proto "
        "or Forwarded headers are believed; repeatable, added to CONTACTCARD_TRUSTED_PROXIES"),
    arg("--insecure", action="store_true", help="allow plain http on a non-loopback address"),
)

COMMANDS: tuple[Command, ...] = (
    Command(("migrate",), "apply database migrations and print the schema version", uses_service(_migrate),
            (JSON,)),
    Command(("serve",), "run the web server", _serve, (HOST, PORT, *_EDGE)),
    Command(("demo",), "create a sample company, two employees and their cards, then serve", _demo,
            (HOST, PORT, *_EDGE, arg("--no-serve", action="store_true", help="seed and print the links only"))),
)
