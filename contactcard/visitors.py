"""Who fetched a link: the ``Visitor`` recorded for a hit, and what its user agent says (device type, OS,
browser, bot or not).

``Visitor.from_headers`` is the one place a request's headers become a recordable visitor: the headers kept
are decoded as UTF-8 (with replacement) and cropped, the client address only feeds the day's pseudonym and
is dropped, and a request with any oversized header is marked as a bot (it is answered 431).

Link-preview fetchers (LINE, Slack, Teams/Skype, Facebook and Messenger, X, Discord, WhatsApp, ...),
search crawlers and generic bots are recorded like everyone else but marked ``is_bot`` and left out of
every count of people. A HEAD request and an empty user agent are bots too: no phone sends either.

Parsing uses ua-parser's maintained regexes; results are cached per user-agent string, so the hot path
pays a dictionary lookup for the user agents it has seen. Only a cropped prefix of the header is ever
parsed, so a huge header cannot cost more than a normal one.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache
from typing import Protocol

import ua_parser

MAX_PARSED = 512
CACHE_SIZE = 4096
MAX_USER_AGENT = 512
MAX_REFERRER = 512
MAX_ACCEPT_LANGUAGE = 128
MAX_HEADER = 8 * 1024  # a longer header (any) is answered 431, the hit still recorded, cropped, as a bot
_KEPT = {b"user-agent": MAX_USER_AGENT, b"referer": MAX_REFERRER, b"accept-language": MAX_ACCEPT_LANGUAGE}

# Preview fetchers and crawlers, named where they are known; then generic words. Not "Line/" (LINE's
# in-app browser is a person) and not "FBAN" (Facebook's in-app browser): those are people.
_BOT_RE = re.compile(
    r"facebookexternalhit|facebot|facebookcatalog|meta-externalagent|line-poker|linebot"
    r"|slackbot|slack-imgproxy|skypeuripreview|microsoftpreview|teamsbot|msteams-?preview|bingpreview"
    r"|twitterbot|discordbot|whatsapp/|telegrambot|googlebot|google-inspectiontool|googleother"
    r"|adsbot-google|mediapartners-google|feedfetcher-google|google-read-aloud|bingbot|msnbot|yandex"
    r"|baiduspider|duckduckbot|applebot|linkedinbot|pinterest|embedly|iframely|redditbot|petalbot"
    r"|headlesschrome|python-requests|python-httpx|aiohttp|curl/|wget/|go-http-client|okhttp|java/|libwww"
    r"|(?<!cu)bot\b|bot[/;)_-]|crawl|spider|slurp|preview|fetcher|scraper|archiver|monitor",
    re.IGNORECASE,
)
_DESKTOP_OS = {"Windows", "Mac OS X", "Linux", "Ubuntu", "Fedora", "Chrome OS", "FreeBSD", "Debian"}


class Pseudonyms(Protocol):
    def key(self, day: str, ip: str, user_agent: str) -> str: ...


@dataclass(frozen=True)
class Agent:
    """What the user agent tells about a visitor; never the person."""

    is_bot: bool
    device: str  # mobile, tablet, desktop, bot, other
    os: str
    browser: str


@dataclass(frozen=True)
class Visitor:
    """The visitor of one hit as it is recorded: cropped headers, what they say, a daily pseudonym; no IP."""

    user_agent: str
    referrer: str
    accept_language: str
    key: str  # the day's pseudonym of (client address, user agent)
    is_bot: bool
    device: str
    os: str
    browser: str
    oversized: bool  # some header was longer than MAX_HEADER: recorded as a bot, answered 431

    @classmethod
    def from_headers(cls, raw_headers: Iterable[tuple[bytes, bytes]], method: str, client_ip: str,
                     keys: Pseudonyms, day: str) -> Visitor:
        """``raw_headers`` as ASGI gives them; the first of a repeated header wins; ``day`` is the company's."""
        kept: dict[bytes, str] = {}
        oversized = False
        for name, value in raw_headers:
            if len(value) > MAX_HEADER:
                oversized = True
            limit = _KEPT.get(name)
            if limit is not None and name not in kept:
                kept[name] = crop(value[:4 * limit].decode("utf-8", "replace"), limit)
        user_agent = kept.get(b"user-agent", "")
        agent = classify(user_agent, method)
        return cls(user_agent=user_agent, referrer=kept.get(b"referer", ""),
                   accept_language=kept.get(b"accept-language", ""), key=keys.key(day, client_ip, user_agent),
                   is_bot=agent.is_bot or oversized, device="bot" if oversized else agent.device, os=agent.os,
                   browser=agent.browser, oversized=oversized)


def crop(value: str, limit: int) -> str:
    """Keep a bounded, printable prefix of a header value."""
    value = value[:limit]
    if value.isprintable():
        return value
    return "".join(c if c.isprintable() else "\ufffd" for c in value)


def classify(user_agent: str, method: str = "GET") -> Agent:
    """What a request's user agent says. ``user_agent`` is cropped before parsing."""
    parsed = _parse(user_agent[:MAX_PARSED])
    if method.upper() == "HEAD" and not parsed.is_bot:
        return Agent(True, "bot", parsed.os, parsed.browser)
    return parsed


@lru_cache(maxsize=CACHE_SIZE)
def _parse(user_agent: str) -> Agent:
    result = ua_parser.parse(user_agent)
    browser = result.user_agent.family if result.user_agent else ""
    os_name = result.os.family if result.os else ""
    device_family = result.device.family if result.device else ""
    browser = "" if browser == "Other" else browser
    os_name = "" if os_name == "Other" else os_name
    if not user_agent.strip() or device_family == "Spider" or _BOT_RE.search(user_agent):
        return Agent(True, "bot", os_name, browser)
    return Agent(False, _device_type(user_agent, os_name, device_family), os_name, browser)


def _device_type(user_agent: str, os_name: str, device_family: str) -> str:
    lowered = user_agent.lower()
    if "ipad" in lowered or "tablet" in lowered or device_family.startswith("iPad"):
        return "tablet"
    if os_name == "Android":
        return "mobile" if "mobile" in lowered else "tablet"
    if os_name in ("iOS", "Windows Phone", "BlackBerry OS", "KaiOS") or "mobile" in lowered:
        return "mobile"
    if os_name in _DESKTOP_OS:
        return "desktop"
    return "other"


def warm() -> None:
    """Load ua-parser's regexes now (about 0.1 s) rather than on the first scan."""
    _parse("Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 Mobile/15E148")
