"""Read an ``https://`` URL the way a browser will, so the policy judges the host and path a phone opens.

A browser does not open the host as typed: it percent-decodes it, applies the IDNA/UTS-46 mapping (NFKC folds
full-width letters and ``．``; ``。`` and ``｡`` become dots), lower-cases it and treats a trailing dot as the same
site; in the path it resolves ``.``/``..`` segments, ``%2e`` spellings included. ``parse_https`` does the same
and gives back the canonical URL. The service stores that canonical URL, so the string the policy approved is
the one redirected to and put in the vCard, and no second parser (browser, mail app, LINE) can read it
differently: it is plain lower-case ASCII in the host and has no dot segments left.

Forms no business card needs are refused rather than interpreted: a user name or password, an IP address, a
backslash (browsers read it as ``/``), a host of one label, and a host IDNA rejects (``_``, symbols, empty
labels).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import unquote

import idna

from .models import Message, ValidationError

MAX_HOST = 253
_SCHEME_RE = re.compile(r"(?i)https://")
_SINGLE_DOT = frozenset({".", "%2e"})
_DOUBLE_DOT = frozenset({"..", ".%2e", "%2e.", "%2e%2e"})


@dataclass(frozen=True)
class WebUrl:
    host: str  # ASCII (punycode for IDN), lower-case, no trailing dot
    port: int | None  # None: the default, 443
    path: str  # dot segments resolved, percent-escapes kept as typed; "/" at least
    query: str | None  # None: no "?" at all
    fragment: str | None

    @property
    def text(self) -> str:
        port = "" if self.port is None else f":{self.port}"
        query = "" if self.query is None else "?" + self.query
        fragment = "" if self.fragment is None else "#" + self.fragment
        return f"https://{self.host}{port}{self.path}{query}{fragment}"

    def decoded_path(self) -> str:
        """The path with one round of percent-decoding, as the server at the other end reads it."""
        return percent_decode(self.path, Message("path"))

    def on(self, domain: str) -> bool:
        """Whether the host is ``domain`` or one of its subdomains."""
        return self.host == domain or self.host.endswith("." + domain)


def percent_decode(text: str, what: Message) -> str:
    try:
        return unquote(text, errors="strict")
    except UnicodeDecodeError:
        raise ValidationError("the %(what)s has percent-escapes that are not UTF-8", what=what) from None


def parse_https(target: str) -> WebUrl:
    """The URL a browser would open for ``target``, or ValidationError saying why it is not acceptable."""
    if not _SCHEME_RE.match(target):
        raise ValidationError("the link must start with https://")
    if "\\" in target:
        raise ValidationError("the link must not contain a backslash")
    rest = target[len("https://"):]
    authority, rest = _split_at(rest, "/?#")
    path, rest = _split_at(rest, "?#")
    query: str | None = None
    fragment: str | None = None
    if rest.startswith("?"):
        query, _, tail = rest[1:].partition("#")
        fragment = tail if "#" in rest else None
    elif rest.startswith("#"):
        fragment = rest[1:]
    if "@" in authority:
        raise ValidationError("the link must not carry a user name or password")
    host_text, port = _split_port(authority)
    return WebUrl(host=normalise_host(host_text), port=port, path=_resolve_dots(path), query=query,
                  fragment=fragment)


def normalise_host(text: str) -> str:
    """``ｌｉｎｅ。me``, ``line%2eme`` and ``LINE.ME.`` all become ``line.me``; refuses what no browser opens."""
    if not text:
        raise ValidationError("the link needs a host")
    if text.startswith("["):
        raise ValidationError("the link must name a host, not an IP address")
    decoded = percent_decode(text, Message("host"))
    try:
        host = idna.encode(decoded, uts46=True, std3_rules=True, transitional=False).decode("ascii")
    except (idna.IDNAError, UnicodeError):
        raise ValidationError("not a valid host name: %(host)r", host=text) from None
    host = host.removesuffix(".")  # "line.me." is the same site as "line.me"
    labels = host.split(".")
    if len(labels) < 2 or not all(labels):
        raise ValidationError("not a full host name: %(host)r", host=text)
    if len(host) > MAX_HOST:
        raise ValidationError("the host name is too long")
    # A browser reads a host whose last label is a number (decimal or 0x hex) as an IPv4 address.
    if re.fullmatch(r"[0-9]+|0x[0-9a-f]*", labels[-1]):
        raise ValidationError("the link must name a host, not an IP address")
    return host


def _split_at(text: str, stops: str) -> tuple[str, str]:
    for i, c in enumerate(text):
        if c in stops:
            return text[:i], text[i:]
    return text, ""


def _split_port(authority: str) -> tuple[str, int | None]:
    host, colon, port = authority.rpartition(":")
    if not colon:
        return authority, None
    if not port:  # "host:" is the default port, as in a browser
        return host, None
    if not port.isascii() or not port.isdigit() or len(port) > 5 or int(port) > 65535:
        raise ValidationError("not a port number: %(port)r", port=port)
    return host, None if int(port) == 443 else int(port)


def _resolve_dots(path: str) -> str:
    """Resolve ``.`` and ``..`` segments (``%2e`` spellings too) the way a browser's URL parser does."""
    if not path:
        return "/"
    out: list[str] = []
    segments = path[1:].split("/")
    for i, segment in enumerate(segments):
        last = i == len(segments) - 1
        lowered = segment.lower()
        if lowered in _DOUBLE_DOT:
            if out:
                out.pop()
            if last:
                out.append("")
        elif lowered in _SINGLE_DOT:
            if last:
                out.append("")
        else:
            out.append(segment)
    return "/" + "/".join(out)
