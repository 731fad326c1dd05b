"""company set|show: the profile, the channel policy and the company's general channels."""

from __future__ import annotations

import argparse
import dataclasses
from collections.abc import Callable, Iterable
from typing import Any

from .. import policy
from ..accounts import Accounts
from ..config import Settings
from ..models import ChannelKind, Company, ValidationError
from ..service import Service
from . import format as fmt
from .base import ACTOR, JSON, NO_POLICY_WARNING, Arg, Command, arg, emit, uses_accounts, warn, whole

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
        ("allow_web_host", "allow_web_hosts"),
    )
)


def _unique(values: Iterable[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(values))


def _company_changes(args: argparse.Namespace) -> dict[str, Any]:
    changes: dict[str, Any] = {name: getattr(args, opt) for opt, name in _COMPANY_FIELDS
                               if getattr(args, opt) is not None}
    if args.brand_color is not None:
        changes["brand_color"] = args.brand_color
    if args.leads is not None:
        changes["leads_enabled"] = args.leads == "on"
    if args.preview_photo is not None:
        changes["preview_photo"] = args.preview_photo == "on"
    for opt, name, normalise in _POLICY_LISTS:
        given: list[str] | None = getattr(args, opt)
        if given is not None:  # a list given replaces the stored one; an empty value clears it
            changes[name] = _unique(normalise(v) for v in given if v.strip())
    return changes


async def _company_set(service: Service, accounts: Accounts, args: argparse.Namespace) -> int:
    changes = _company_changes(args)
    general = {kind: getattr(args, opt) for opt, kind in _GENERAL_CHANNELS if getattr(args, opt) is not None}
    profile = bool(changes or general) or args.sso_only is None
    if profile and args.name is None and not await service.is_configured():
        raise ValidationError("the company has no profile yet; give its name with --name")
    if args.sso_only is not None:
        await accounts.set_sso_only(args.sso_only == "on", actor=ACTOR)
    if profile:
        company = dataclasses.replace(await service.company(), **changes)
        await service.save_company(company, general=general, actor=ACTOR)
    await _show(service, accounts, args)
    if general and not (await service.company()).has_policy:
        warn(NO_POLICY_WARNING)
    return 0


SSO_NOT_CONFIGURED = ("--sso-only on: single sign-on is not configured for this command (CONTACTCARD_OIDC_ISSUER, "
                      "CONTACTCARD_OIDC_CLIENT_ID, CONTACTCARD_OIDC_CLIENT_SECRET_FILE), so employees could not sign "
                      "in at all; run it with the server's settings")
_set_with_accounts = uses_accounts(_company_set)


def _company_set_checked(settings: Settings, args: argparse.Namespace) -> int:
    """``company set``, refusing SSO only where no provider is configured: as on the settings page, employees
    would then have no way in at all."""
    if args.sso_only == "on" and settings.oidc is None:
        raise ValidationError(SSO_NOT_CONFIGURED)
    return _set_with_accounts(settings, args)


async def _show(service: Service, accounts: Accounts, args: argparse.Namespace) -> int:
    configured = await service.is_configured()
    company = await _with_stored_channels(service, await service.company())
    sso_only = await accounts.sso_only()
    emit(args, {**fmt.company_json(company, configured=configured), "sso_only": sso_only},
         [*fmt.company_lines(company, configured=configured), f"sso_only: {'on' if sso_only else 'off'}"])
    return 0


async def _with_stored_channels(service: Service, company: Company) -> Company:
    """Every general channel stored, for the admin: ``company()`` leaves out those outside today's policy."""
    return dataclasses.replace(company, channels=tuple(await service.channels(None)))




def _list_option(flag: str, what: str) -> Arg:
    return arg(flag, action="append", metavar="VALUE",
               help=f"allowed {what}; repeat for several; replaces the stored list ('' clears it)")


COMMANDS: tuple[Command, ...] = (
    Command(("company", "set"), "create or change the company profile, policy and general channels",
            _company_set_checked, (
                arg("--name", metavar="NAME", help="company name (required the first time)"),
                arg("--name-en", metavar="NAME", help="company name in Latin letters, for readers abroad"),
                arg("--phone", metavar="TEL", help="general phone number"),
                arg("--email", metavar="EMAIL", help="general email address"),
                arg("--web", metavar="URL", help="web site (https://)"),
                arg("--booking", metavar="URL", help="booking page (https://)"),
                arg("--line", metavar="URL", help="LINE Official Account link"),
                _list_option("--allow-email-domain", "email domain"),
                _list_option("--allow-phone-prefix", "phone prefix, e.g. +813 or 03"),
                _list_option("--allow-line-id", "LINE Official Account id, e.g. @acme"),
                _list_option("--allow-line-works-domain", "LINE WORKS domain"),
                _list_option("--allow-web-host", "host for web, booking and custom links (its subdomains too)"),
                arg("--brand-color", metavar="#RRGGBB", help="brand colour"),
                arg("--hours", metavar="TEXT", help="business hours (Japanese)"),
                arg("--hours-en", metavar="TEXT", help="business hours in English, for readers abroad"),
                arg("--timezone", metavar="TZ", help="IANA time zone, e.g. Asia/Tokyo"),
                arg("--card-days", type=whole, metavar="N", help="default link lifetime in days"),
                arg("--retention-days", type=whole, metavar="N", help="days to keep scan records and leads"),
                arg("--sso-only", choices=("on", "off"),
                    help="on: employees sign in only with the company's identity provider (admins keep passwords)"),
                arg("--leads", choices=("on", "off"),
                    help="offer customers the form to leave their contact for the company on card pages"),
                arg("--preview-photo", choices=("on", "off"),
                    help="link previews of a live card show the employee's photo (off: the company's image)"),
                JSON)),
    Command(("company", "show"), "show the company profile", uses_accounts(_show), (JSON,)),
)
