"""The "save contact" file: a vCard 3.0 built only from the employee, the company and channels.

3.0 rather than 4.0 because the iPhone and Android contact apps import 3.0 most reliably.
Every value comes from an admin form, so each one is escaped (phone numbers are instead
reduced to dialable characters): no value can end its property, start another property,
or close the card.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from urllib.parse import unquote

from contactcard.models import Channel, ChannelKind, Company, Employee

NOTE = "会社の窓口からご連絡ください"
# Octets per physical line, CRLF excluded (RFC 2425 5.8.1, RFC 6350 3.2).
LINE_LIMIT = 75

# Every line break becomes one \n. U+2028/2029 count as line breaks because
# str.splitlines() and some importers split on them.
_NEWLINES = re.compile(r"\r\n|[\r\u2028\u2029]")
# C0/C1 controls (tab, NUL, ESC, NEL...) and DEL, all but the \n kept above.
_CONTROLS = re.compile(r"[\x00-\x09\x0b-\x1f\x7f-\x9f]")
# A dialable number: digits, +, *, #, visual separators, and the comma pause before extensions.
_NOT_DIALABLE = re.compile(r"[^0-9+*#(). ,-]")
# An escape pair or one character: the units a fold may not split.
_UNITS = re.compile(r"\\.|.", re.DOTALL)


def escape(value: str) -> str:
    """Escape a text value (RFC 2426 5): after this it can only ever be one property's value."""
    # A lone surrogate (possible in a str from JSON) cannot be written as UTF-8 at all.
    value = value.encode("utf-8", "replace").decode("utf-8")
    value = _CONTROLS.sub("", _NEWLINES.sub("\n", value))
    for char, escaped in (("\\", "\\\\"), (",", "\\,"), (";", "\\;"), ("\n", "\\n")):
        value = value.replace(
            char, escaped
        )  # backslash first, or it would double the rest
    return value


def fold(line: str) -> str:
    """Fold one content line to <= 75 UTF-8 octets per physical line, each ending in CRLF.

    Breaks fall between whole characters and never inside a backslash escape, so even an
    importer that unfolds badly does not see a broken multibyte character or escape.
    """
    out: list[str] = []
    current = ""
    size = 0
    for unit in _UNITS.findall(line):
        width = len(unit.encode("utf-8"))
        if size + width > LINE_LIMIT:
            out.append(current)
            current, size = " ", 1  # the leading space of a continuation counts
        current += unit
        size += width
    out.append(current)
    return "".join(part + "\r\n" for part in out)


def _prop(name: str, *components: str) -> str:
    return f"{name}:" + ";".join(escape(c) for c in components)


def _phone(target: str) -> str:
    """``tel:+81-3-1234-5678;ext=12`` -> ``+81-3-1234-5678,12`` (comma: pause, then extension)."""
    number, *params = unquote(re.sub(r"(?i)^tel:", "", target.strip())).split(";")
    for param in params:
        key, _, val = param.partition("=")
        if key.strip().lower() == "ext" and val:
            number += "," + val
    return _NOT_DIALABLE.sub("", number)


def _emails(target: str) -> list[str]:
    """``mailto:a@x.jp,b@x.jp?subject=..`` -> the addresses, without scheme or query."""
    addresses = re.sub(r"(?i)^mailto:", "", target.strip()).split("?", 1)[0]
    return [a for a in (unquote(x).strip() for x in addresses.split(",")) if a]


def _is_web(target: str) -> bool:
    # Only http(s) links become URL properties: a contact app would not open anything else.
    return re.match(r"(?i)https?://", target.strip()) is not None


def _ordered(channels: Iterable[Channel]) -> list[Channel]:
    return sorted(channels, key=lambda c: c.position)


def _contact_lines(channels: Sequence[Channel]) -> list[str]:
    lines: list[str] = []
    for ch in channels:
        if ch.kind == ChannelKind.PHONE and (number := _phone(ch.target)):
            # Not escaped: TEL is a phone-number, not text, and _phone left only dialable
            # characters. An escaped "\," might reach the dialler as a literal backslash.
            lines.append("TEL;TYPE=WORK,VOICE:" + number)
        elif ch.kind == ChannelKind.EMAIL:
            lines.extend(
                _prop("EMAIL;TYPE=INTERNET,WORK", a) for a in _emails(ch.target)
            )
    return lines


def render(
    employee: Employee, company: Company, *, card_url: str, channels: Sequence[Channel]
) -> str:
    """The vCard 3.0 text of ``employee``, CRLF line endings, folded at 75 octets."""
    own = _ordered(channels)
    contact = _contact_lines(own)
    if not contact:
        # No direct line or address: the company's general ones keep the customer reachable.
        contact = _contact_lines(_ordered(company.channels))

    lines = ["BEGIN:VCARD", "VERSION:3.0"]
    lines.append(_prop("N", employee.family_name, employee.given_name, "", "", ""))
    lines.append(_prop("FN", employee.display_name))
    if employee.given_kana:
        lines.append(_prop("X-PHONETIC-FIRST-NAME", employee.given_kana))  # iPhone
    if employee.family_kana:
        lines.append(_prop("X-PHONETIC-LAST-NAME", employee.family_kana))  # iPhone
    if employee.kana_name:
        lines.append(_prop("SORT-STRING", employee.kana_name))  # RFC 2426 sort key
        kana = (employee.family_kana, employee.given_kana, "", "", "")
        lines.append(_prop("SOUND;X-IRMC-N;CHARSET=UTF-8", *kana))  # what Android reads
    org = [c for c in (company.name, employee.department) if c]
    if company.name:
        lines.append(_prop("ORG", *org))
    if employee.title:
        lines.append(_prop("TITLE", employee.title))
    lines.extend(contact)
    if card_url:
        lines.append(_prop("URL", card_url))
    for ch in own:
        if ch.kind in (ChannelKind.WEB, ChannelKind.BOOKING) and _is_web(ch.target):
            lines.append(_prop("URL;TYPE=WORK", ch.target.strip()))
        elif ch.kind == ChannelKind.LINE and ch.target.strip():
            lines.append(_prop("X-SOCIALPROFILE;TYPE=line", ch.target.strip()))
    lines.append(_prop("NOTE", NOTE))
    lines.append("END:VCARD")

    # dict.fromkeys drops a repeated line (the same number on two channels), keeping order.
    return "".join(fold(ln) for ln in dict.fromkeys(lines))


def filename(employee: Employee) -> str:
    """An ASCII file name for the download; the id is an int, so nothing needs quoting."""
    return f"contact-{int(employee.id)}.vcf"
