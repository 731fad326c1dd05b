"""The "save contact" file: a vCard 3.0 built only from the employee, the company and channels.

3.0 rather than 4.0 because the iPhone and Android contact apps import 3.0 most reliably, and
strictly 3.0 (RFC 2426): a strict validator and Mozilla's ical.js (Thunderbird) read every line as
written (tests/test_vcard_clients.py). Every value comes from an admin form, so each one is escaped
(phone numbers are instead reduced to dialable characters): no value can end its property, start
another property, or close the card.

The kana readings go where the phones read them: ``X-PHONETIC-FIRST-NAME``/``-LAST-NAME`` (the
iPhone's own export, and Android's importer reads them before anything else), plus RFC 2426's
``SORT-STRING``. No ``SOUND;X-IRMC-N``: that is vCard 2.1 syntax (a parameter without a value),
which a 3.0 parser reads as a binary sound, and Android ignores it once the X-PHONETIC lines exist.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Iterable, Sequence
from urllib.parse import quote, unquote

from contactcard.models import Channel, ChannelKind, Company, Employee

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


# RFC 3986's reserved and unreserved characters, less "," and ";" (and "%", kept so escapes stay as stored).
_URI_SAFE = "!#$%&'()*+/:=?@[]~"


def _uri(name: str, url: str) -> str:
    """A URI value (URL, RFC 2426 3.6.8), not text: it has no backslash escapes, which ical.js would keep.

    So the two characters a text value would escape are percent-encoded instead (as is anything outside
    ASCII, and spaces): every parser then reads the same URI, and vobject no longer cuts it at a comma.
    """
    return f"{name}:" + quote(url.strip(), safe=_URI_SAFE)


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
            # _phone left only dialable characters; of those, the comma (a pause before the
            # extension) separates values in RFC 2426's grammar, so it is escaped, as ical.js
            # writes it too (its phone-number type reads "\," back as a comma; so do Android and iOS).
            lines.append("TEL;TYPE=WORK,VOICE:" + number.replace(",", "\\,"))
        elif ch.kind == ChannelKind.EMAIL:
            lines.extend(
                _prop("EMAIL;TYPE=INTERNET,WORK", a) for a in _emails(ch.target)
            )
    return lines


def render(
    employee: Employee, company: Company, *, card_url: str, channels: Sequence[Channel], note: str,
    lang: str = "ja", photo: bytes | None = None,
) -> str:
    """The vCard 3.0 text of ``employee``, CRLF line endings, folded at 75 octets.

    ``note``: the line to the customer, in their language. ``lang``: the reader's language: anyone but a
    Japanese reader gets the Latin-script names as FN (the name Android and Outlook show) and ORG, when given;
    N and the kana readings stay Japanese. ``photo``: the employee's stored photo (always a JPEG,
    ``images.photo_jpeg``), embedded inline.
    """
    own = _ordered(channels)
    contact = _contact_lines(own)
    if not contact:
        # No direct line or address: the company's general ones keep the customer reachable.
        contact = _contact_lines(_ordered(company.channels))

    lines = ["BEGIN:VCARD", "VERSION:3.0"]
    lines.append(_prop("N", employee.family_name, employee.given_name, "", "", ""))
    lines.append(_prop("FN", employee.name_for(lang)))
    if employee.given_kana:
        lines.append(_prop("X-PHONETIC-FIRST-NAME", employee.given_kana))  # iPhone
    if employee.family_kana:
        lines.append(_prop("X-PHONETIC-LAST-NAME", employee.family_kana))  # iPhone
    if employee.kana_name:
        lines.append(_prop("SORT-STRING", employee.kana_name))  # RFC 2426 sort key
    org = [c for c in (company.name_for(lang), employee.department) if c]
    if company.name:
        lines.append(_prop("ORG", *org))
    if employee.title:
        lines.append(_prop("TITLE", employee.title))
    lines.extend(contact)
    if card_url:
        lines.append(_uri("URL", card_url))
    for ch in own:
        if ch.kind in (ChannelKind.WEB, ChannelKind.BOOKING) and _is_web(ch.target):
            lines.append(_uri("URL", ch.target))  # 3.0 defines no TYPE for URL
        elif ch.kind == ChannelKind.LINE and ch.target.strip():
            lines.append(_uri("X-SOCIALPROFILE;TYPE=line", ch.target))
    lines.append(_prop("NOTE", note))
    if photo:
        # base64 has no character that needs escaping (RFC 2426 3.1.4, ENCODING=b).
        lines.append("PHOTO;ENCODING=b;TYPE=JPEG:" + base64.b64encode(photo).decode("ascii"))
    lines.append("END:VCARD")

    # dict.fromkeys drops a repeated line (the same number on two channels), keeping order.
    return "".join(fold(ln) for ln in dict.fromkeys(lines))


def filename(employee: Employee) -> str:
    """An ASCII file name for the download; the id is an int, so nothing needs quoting."""
    return f"contact-{int(employee.id)}.vcf"
