"""Who fetched a link: device type, OS and browser from the user agent, and whether it was a bot.

Link-preview fetchers (LINE, Slack, Teams/Skype, Facebook and Messenger, X, Discord, WhatsApp, ...),
search crawlers and generic bots are recorded like everyone else but marked ``is_bot`` and left out of
every count of people. A HEAD request and an empty user agent are bots too: no phone sends either.

Parsing uses ua-parser's maintained regexes; results are cached per user-agent string, so the hot path
pays a dictionary lookup for the user agents it has seen. Only a cropped prefix of the header is ever
parsed, so a huge header cannot cost more than a normal one.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

import ua_parser

MAX_PARSED = 512
CACHE_SIZE = 4096

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


@dataclass(frozen=True)
class Visitor:
    """What the user agent tells about a visitor; never the person."""

    is_bot: bool
    device: str  # mobile, tablet, desktop, bot, other
    os: str
    browser: str


def classify(user_agent: str, method: str = "GET") -> Visitor:
    """The visitor behind a request. ``user_agent`` is cropped before parsing."""
    parsed = _parse(user_agent[:MAX_PARSED])
    if method.upper() == "HEAD" and not parsed.is_bot:
        return Visitor(True, "bot", parsed.os, parsed.browser)
    return parsed


@lru_cache(maxsize=CACHE_SIZE)
def _parse(user_agent: str) -> Visitor:
    result = ua_parser.parse(user_agent)
    browser = result.user_agent.family if result.user_agent else ""
    os_name = result.os.family if result.os else ""
    device_family = result.device.family if result.device else ""
    browser = "" if browser == "Other" else browser
    os_name = "" if os_name == "Other" else os_name
    if not user_agent.strip() or device_family == "Spider" or _BOT_RE.search(user_agent):
        return Visitor(True, "bot", os_name, browser)
    return Visitor(False, _device_type(user_agent, os_name, device_family), os_name, browser)


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
