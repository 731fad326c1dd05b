"""Which targets a channel may carry: well-formed for its kind, and a company channel under the policy.

A target is checked twice: its shape (https URLs, ``tel:``, ``mailto:``, LINE's own links; ``javascript:``,
``data:`` and the rest refused) and, when the company has set a policy, whether it is the company's own
(email domain, phone prefix in E.164, LINE Official Account id, LINE WORKS domain). LINE and WhatsApp
hosts are checked whatever kind the admin picked, so a personal LINE ID cannot slip in as a "custom link".
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from urllib.parse import parse_qs, unquote, urlsplit

from .models import ChannelKind, Company, PolicyError, ValidationError

MAX_TARGET = 2000
_EMAIL_RE = re.compile(r"[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@([A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+)")
_PHONE_CHARS_RE = re.compile(r"\+?[0-9()\- .]{4,30}")
_LINE_HOSTS = {"line.me", "liff.line.me", "page.line.me", "lin.ee"}
_LINE_WORKS_HOSTS = {"works.do"}
_WHATSAPP_HOSTS = {"wa.me", "api.whatsapp.com"}
_TEAMS_HOSTS = {"teams.microsoft.com", "teams.live.com"}


def is_email(address: str) -> bool:
    return _EMAIL_RE.fullmatch(address) is not None


def normalise_e164(number: str, default_country: str = "81") -> str:
    """``03-1234-5678`` and ``+81-3-1234-5678`` both become ``+81312345678`` (Japan by default)."""
    raw = number.strip()
    if not _PHONE_CHARS_RE.fullmatch(raw):
        raise ValidationError(f"not a phone number: {number!r}")
    digits = re.sub(r"[^0-9]", "", raw)
    if raw.startswith("+"):
        e164 = "+" + digits
    elif digits.startswith("00"):
        e164 = "+" + digits[2:]
    elif digits.startswith("0"):
        e164 = "+" + default_country + digits[1:]
    else:
        raise ValidationError(f"phone number needs a leading 0 or a +country code: {number!r}")
    if not 8 <= len(e164) <= 16:
        raise ValidationError(f"phone number has the wrong number of digits: {number!r}")
    return e164


def display_phone(target: str) -> str:
    """How a Japanese reader expects to see a number: ``tel:+81312345678`` shows as ``03-1234-5678``.

    Grouping covers the common forms (2-digit Tokyo/Osaka area codes, mobile and IP phones, 0120/0800
    toll-free); any other Japanese number shows as plain national digits, other countries stay in E.164.
    """
    number = target.removeprefix("tel:")
    if not number.startswith("+81"):
        return number
    national = "0" + number[3:]
    if national[:4] in ("0120", "0800") and len(national) in (10, 11):
        return f"{national[:4]}-{national[4:7]}-{national[7:]}"
    if national[:3] in ("070", "080", "090", "050") and len(national) == 11:
        return f"{national[:3]}-{national[3:7]}-{national[7:]}"
    if national[:2] in ("03", "06") and len(national) == 10:
        return f"{national[:2]}-{national[2:6]}-{national[6:]}"
    return national


def normalise_prefix(prefix: str) -> str:
    """Policy prefixes are compared on E.164: ``03`` and ``+813`` mean the same."""
    digits = re.sub(r"[^0-9]", "", prefix)
    if not digits:
        raise ValidationError(f"not a phone prefix: {prefix!r}")
    if prefix.strip().startswith("+"):
        return "+" + digits
    if digits.startswith("0"):
        return "+81" + digits[1:]
    raise ValidationError(f"phone prefix needs a leading 0 or +country code: {prefix!r}")


def normalise_domain(domain: str) -> str:
    d = domain.strip().lower().lstrip("@")
    if not re.fullmatch(r"[a-z0-9-]+(\.[a-z0-9-]+)+", d):
        raise ValidationError(f"not a domain: {domain!r}")
    return d


def normalise_line_works_domain(domain: str) -> str:
    """The part after the @ of a LINE WORKS member id (``taro@acme``); it need not contain a dot."""
    d = domain.strip().lower().lstrip("@")
    if not re.fullmatch(r"[a-z0-9][a-z0-9.-]{0,62}", d):
        raise ValidationError(f"not a LINE WORKS domain: {domain!r}")
    return d


def normalise_line_id(line_id: str) -> str:
    """LINE Official Account ids start with @; store them lower-case with the @."""
    v = unquote(line_id.strip()).lower()
    v = v if v.startswith("@") else "@" + v
    if not re.fullmatch(r"@[a-z0-9._-]{2,40}", v):
        raise ValidationError(f"not a LINE Official Account id: {line_id!r}")
    return v



# The company's policy lists (Company field -> how one entry is normalised), for every surface that edits them.
ALLOW_LISTS: Mapping[str, Callable[[str], str]] = {
    "allow_email_domains": normalise_domain,
    "allow_phone_prefixes": normalise_prefix,
    "allow_line_ids": normalise_line_id,
    "allow_line_works_domains": normalise_line_works_domain,
}

def clean_target(kind: ChannelKind, target: str) -> str:
    """The canonical form of a target for its kind, or ValidationError saying what is wrong."""
    t = target.strip()
    if not t:
        raise ValidationError("target is empty")
    if len(t) > MAX_TARGET:
        raise ValidationError(f"target is longer than {MAX_TARGET} characters")
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in t):
        raise ValidationError("target contains control characters")
    scheme = t.split(":", 1)[0].lower() if ":" in t else ""
    if kind is ChannelKind.PHONE:
        number = t[4:] if scheme == "tel" else t
        return "tel:" + normalise_e164(number)
    if any(c.isspace() for c in t):
        raise ValidationError("target contains spaces")
    if kind is ChannelKind.EMAIL:
        addr = t[7:] if scheme == "mailto" else t
        addr = addr.split("?", 1)[0]
        if not _EMAIL_RE.fullmatch(addr):
            raise ValidationError(f"not an email address: {addr!r}")
        return "mailto:" + addr
    if scheme != "https":
        raise ValidationError(f"a {kind.value} link must be an https:// URL (got {scheme or 'no'} scheme)")
    parts = urlsplit(t)
    if not parts.hostname or parts.username or parts.password:
        raise ValidationError("URL needs a host and must not carry a user name or password")
    host = parts.hostname.lower()
    if kind is ChannelKind.LINE and host not in _LINE_HOSTS:
        raise ValidationError("a LINE channel must be a line.me or lin.ee link, e.g. https://line.me/R/ti/p/@acme")
    if kind is ChannelKind.LINE_WORKS and host not in _LINE_WORKS_HOSTS:
        raise ValidationError("a LINE WORKS channel must be a works.do link, e.g. https://works.do/R/ti/p/taro@acme")
    if kind is ChannelKind.WHATSAPP and host not in _WHATSAPP_HOSTS:
        raise ValidationError("a WhatsApp Business channel must be a wa.me link")
    if kind is ChannelKind.TEAMS and host not in _TEAMS_HOSTS:
        raise ValidationError("a Microsoft Teams channel must be a teams.microsoft.com link")
    return t


def check_policy(company: Company, kind: ChannelKind, target: str) -> None:
    """Raise PolicyError when a cleaned target is not one of the company's own channels."""
    if not company.has_policy:
        return
    if target.startswith("tel:"):
        _check_phone(company, target[4:])
        return
    if target.startswith("mailto:"):
        _check_email(company, target[7:])
        return
    parts = urlsplit(target)
    host = (parts.hostname or "").lower()
    path = unquote(parts.path)
    if host in _LINE_HOSTS:
        _check_line(company, host, path)
    elif host in _LINE_WORKS_HOSTS:
        member = path.rstrip("/").rsplit("/", 1)[-1]
        domain = member.rsplit("@", 1)[-1].lower() if "@" in member else ""
        if domain not in company.allow_line_works_domains:
            raise PolicyError(f"LINE WORKS member {member!r} is not in the company's LINE WORKS domain")
    elif host in _WHATSAPP_HOSTS:
        number = path.strip("/") or parse_qs(parts.query).get("phone", [""])[0]
        _check_phone(company, "+" + number.lstrip("+"))
    elif host in _TEAMS_HOSTS:
        for user in ",".join(parse_qs(parts.query).get("users", [])).split(","):
            if user:
                _check_email(company, user)


def _check_email(company: Company, address: str) -> None:
    domain = address.rsplit("@", 1)[-1].lower()
    if domain not in company.allow_email_domains:
        raise PolicyError(f"{address} is not a company email address (allowed domains: "
                          f"{', '.join(company.allow_email_domains) or 'none set'})")


def _check_phone(company: Company, number: str) -> None:
    e164 = normalise_e164(number)
    if not any(e164.startswith(p) for p in company.allow_phone_prefixes):
        raise PolicyError(f"{number} is not a company phone number (allowed prefixes: "
                          f"{', '.join(company.allow_phone_prefixes) or 'none set'})")


def _check_line(company: Company, host: str, path: str) -> None:
    if host == "lin.ee":
        raise PolicyError("lin.ee short links cannot be checked; use https://line.me/R/ti/p/@your-account")
    tail = path.rstrip("/").rsplit("/", 1)[-1]
    line_id = tail.lower() if tail.startswith("@") else ""
    if line_id not in company.allow_line_ids:
        raise PolicyError(f"{tail or path!r} is not one of the company's LINE Official Accounts")
