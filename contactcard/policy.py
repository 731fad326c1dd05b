"""Which targets a channel may carry: well-formed for its kind, and a company channel under the policy.

A target is checked twice: its shape (https URLs, ``tel:``, ``mailto:``, LINE's own links; ``javascript:``,
``data:`` and the rest refused) and, when the company has set a policy, whether it is the company's own
(email domain, phone prefix in E.164, LINE Official Account id, LINE WORKS domain, web host).

Every comparison is made on what the customer's phone will open, not on what was typed: URLs go through
``urls.parse_https`` (IDNA/UTS-46, percent-decoding, trailing dot, dot segments) and ``clean_target`` returns
that canonical form, which is what gets stored; a ``mailto:`` address is percent-decoded and must be one
address. Hosts are classified by owner whatever kind the admin picked: every LINE-, LINE WORKS-, WhatsApp- and
Teams-owned host must be a canonical link to a company account, and redirectors, shorteners, link-in-bio
pages, personal messengers and webmail compose links are refused outright, since the policy cannot see
where they lead. ``check_policy`` cleans again, so a row saved by an older, laxer version is judged by
today's rules before a customer sees it.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Mapping
from urllib.parse import parse_qs, unquote

from . import urls
from .models import ChannelKind, Company, Message, PolicyError, ValidationError
from .urls import WebUrl

MAX_TARGET = 2000
# No "%" (a mail app percent-decodes a mailto: address, so "%40" would be a second "@"), no "#" or "?"
# (URL delimiters in a mailto: link), no "," or ";" (recipient separators).
_EMAIL_RE = re.compile(r"[A-Za-z0-9.!$&'*+/=^_`{|}~-]+@([A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+)")
_PHONE_CHARS_RE = re.compile(r"\+?[0-9()\- .]{4,30}")


def is_email(address: str) -> bool:
    return _EMAIL_RE.fullmatch(address) is not None


def normalise_e164(number: str, default_country: str = "81") -> str:
    """``03-1234-5678`` and ``+81-3-1234-5678`` both become ``+81312345678`` (Japan by default)."""
    raw = number.strip()
    if not _PHONE_CHARS_RE.fullmatch(raw):
        raise ValidationError("not a phone number: %(number)r", number=number)
    digits = re.sub(r"[^0-9]", "", raw)
    if raw.startswith("+"):
        e164 = "+" + digits
    elif digits.startswith("00"):
        e164 = "+" + digits[2:]
    elif digits.startswith("0"):
        e164 = "+" + default_country + digits[1:]
    else:
        raise ValidationError("phone number needs a leading 0 or a +country code: %(number)r", number=number)
    if not 8 <= len(e164) <= 16:
        raise ValidationError("phone number has the wrong number of digits: %(number)r", number=number)
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
        raise ValidationError("not a phone prefix: %(prefix)r", prefix=prefix)
    if prefix.strip().startswith("+"):
        return "+" + digits
    if digits.startswith("0"):
        return "+81" + digits[1:]
    raise ValidationError("phone prefix needs a leading 0 or +country code: %(prefix)r", prefix=prefix)


def normalise_domain(domain: str) -> str:
    d = domain.strip().lower().lstrip("@")
    if not re.fullmatch(r"[a-z0-9-]+(\.[a-z0-9-]+)+", d):
        raise ValidationError("not a domain: %(domain)r", domain=domain)
    return d


def normalise_line_works_domain(domain: str) -> str:
    """The part after the @ of a LINE WORKS member id (``taro@acme``); it need not contain a dot."""
    d = domain.strip().lower().lstrip("@")
    if not re.fullmatch(r"[a-z0-9][a-z0-9.-]{0,62}", d):
        raise ValidationError("not a LINE WORKS domain: %(domain)r", domain=domain)
    return d


def normalise_line_id(line_id: str) -> str:
    """LINE Official Account ids start with @; store them lower-case with the @."""
    v = unquote(line_id.strip()).lower()
    v = v if v.startswith("@") else "@" + v
    if not re.fullmatch(r"@[a-z0-9._-]{2,40}", v):
        raise ValidationError("not a LINE Official Account id: %(id)r", id=line_id)
    return v



def normalise_web_host(host: str) -> str:
    """An entry of the web allow-list: ``acme.co.jp`` (its subdomains too), as a browser spells the host."""
    text = host.strip()
    text = re.sub(r"(?i)^https://", "", text).split("/", 1)[0].removeprefix("*.")
    normalised = urls.normalise_host(text)
    if blocked := _blocked_everywhere(normalised):
        raise ValidationError("%(host)s is %(why)s; it cannot be on the company's web allow-list", host=normalised,
                              why=blocked)
    return normalised


# The company's policy lists (Company field -> how one entry is normalised), for every surface that edits them.
ALLOW_LISTS: Mapping[str, Callable[[str], str]] = {
    "allow_email_domains": normalise_domain,
    "allow_phone_prefixes": normalise_prefix,
    "allow_line_ids": normalise_line_id,
    "allow_line_works_domains": normalise_line_works_domain,
    "allow_web_hosts": normalise_web_host,
}

# --- who owns a host ----------------------------------------------------------------------------
# Matched on the host and every subdomain of it (``*.line.me``), after the browser's normalisation.

LINE_DOMAINS = ("line.me", "lin.ee", "line.naver.jp", "line.biz")
LINE_WORKS_DOMAINS = ("works.do", "worksmobile.com")
WHATSAPP_DOMAINS = ("wa.me", "whatsapp.com", "wa.link", "whatsapp.net")
TEAMS_DOMAINS = ("teams.microsoft.com", "teams.cloud.microsoft", "teams.live.com")

# Kinds that name no service of their own: any https host, subject to the lists below and allow_web_hosts.
WEB_KINDS = frozenset({ChannelKind.WEB, ChannelKind.CUSTOM, ChannelKind.BOOKING})

_SHORTENER = Message("a link shortener: it can forward to any address")
_REDIRECTOR = Message("a redirector: it forwards to whatever address it is given")
_LINK_PAGE = Message("a link-in-bio page: it lists whatever links its owner chooses")
_MESSENGER = Message("a personal messenger or social account: the policy cannot tell a company account from a "
                     "private one")
_WEBMAIL = Message("a webmail compose link: it writes to whatever address it names")

_NONE_SET = Message("none set")

# (domain, path prefix or "" for the whole host, why it can never be a company channel)
BLOCKED: tuple[tuple[str, str, Message], ...] = (
    *((d, "", _SHORTENER) for d in (
        "bit.ly", "bitly.com", "bit.do", "t.co", "tinyurl.com", "goo.gl", "ow.ly", "is.gd", "v.gd", "buff.ly",
        "lnkd.in", "rebrand.ly", "cutt.ly", "t.ly", "shorturl.at", "rb.gy", "tiny.cc", "tiny.one", "s.id", "x.gd",
        "qrco.de", "amzn.to", "amzn.asia", "db.tt", "adf.ly", "shorte.st", "ift.tt", "dlvr.it", "trib.al",
        "soo.gd", "clck.ru", "page.link", "app.link", "onelink.me", "urx.nu", "ux.nu", "g.co", "search.app",
        "fb.me", "naver.me", "kko.to", "me2.kr")),
    *((d, "", _LINK_PAGE) for d in (
        "linktr.ee", "lit.link", "lnk.bio", "bio.link", "beacons.ai", "linkin.bio", "taplink.cc", "solo.to")),
    *((d, "", _REDIRECTOR) for d in (
        "l.facebook.com", "lm.facebook.com", "l.instagram.com", "l.messenger.com", "out.reddit.com", "href.li",
        "t.umblr.com", "away.vk.com", "slack-redir.net", "safelinks.protection.outlook.com", "urldefense.com",
        "urldefense.proofpoint.com", "link.zhihu.com", "translate.goog", "webcache.googleusercontent.com",
        "r.search.yahoo.com")),
    ("youtube.com", "/redirect", _REDIRECTOR), ("youtube.com", "/attribution_link", _REDIRECTOR),
    ("facebook.com", "/l.php", _REDIRECTOR), ("linkedin.com", "/redir/", _REDIRECTOR),
    ("linkedin.com", "/safety/go", _REDIRECTOR), ("vk.com", "/away.php", _REDIRECTOR),
    ("steamcommunity.com", "/linkfilter", _REDIRECTOR), ("bing.com", "/ck/", _REDIRECTOR),
    ("duckduckgo.com", "/l/", _REDIRECTOR),
    *((d, "", _MESSENGER) for d in (
        "t.me", "telegram.me", "telegram.dog", "m.me", "messenger.com", "open.kakao.com", "qr.kakao.com",
        "u.wechat.com", "weixin.qq.com", "wx.qq.com", "ig.me", "instagram.com", "signal.me", "signal.group",
        "invite.viber.com", "discord.gg", "discord.com", "join.skype.com", "threema.id", "snapchat.com",
        "instagr.am", "zalo.me", "vk.me")),
    ("facebook.com", "/messages", _MESSENGER), ("fb.com", "/messages", _MESSENGER), ("x.com", "/messages", _MESSENGER),
    ("x.com", "/i/chat", _MESSENGER),
    ("twitter.com", "/messages", _MESSENGER),
    *((d, "", _WEBMAIL) for d in (
        "mail.google.com", "outlook.live.com", "mail.yahoo.com", "compose.mail.yahoo.com", "mail.yahoo.co.jp")),
    ("outlook.office.com", "/mail/deeplink/compose", _WEBMAIL),
    ("outlook.office365.com", "/mail/deeplink/compose", _WEBMAIL),
)
# google.com/url?q=…, maps.google.co.jp/url?q=…: every Google host of every country domain, and each of its paths
# that forwards to (or shows) another site: the redirector, the AMP viewer, Translate, Images and "I'm Feeling
# Lucky" (a search with btnI).
_GOOGLE_RE = re.compile(r"(?:[a-z0-9-]+\.)*google(?:\.[a-z]{2,3}){1,2}")
_GOOGLE_FORWARDS = re.compile(r"/(?:url|amp|translate|imgres)(?:/.*)?")


def _on(host: str, domains: tuple[str, ...]) -> bool:
    return any(host == d or host.endswith("." + d) for d in domains)


def _blocked_everywhere(host: str) -> Message | None:
    """Why every link on this host is refused (None when some are fine)."""
    return next((why for domain, prefix, why in BLOCKED if not prefix and _on(host, (domain,))), None)


def blocked_reason(url: WebUrl) -> Message | None:
    """Why this link can never be a company channel, or None when nothing in BLOCKED covers it."""
    path = url.decoded_path().lower()
    for domain, prefix, why in BLOCKED:
        if url.on(domain) and path.startswith(prefix):
            return why
    if _GOOGLE_RE.fullmatch(url.host) and (_GOOGLE_FORWARDS.fullmatch(path) or (
            path.startswith("/search") and "btni" in parse_qs((url.query or "").lower(), keep_blank_values=True))):
        return _REDIRECTOR
    return None


def clean_target(kind: ChannelKind, target: str) -> str:
    """The canonical form of a target for its kind, or ValidationError saying what is wrong."""
    t = target.strip()
    if not t:
        raise ValidationError("target is empty")
    if len(t) > MAX_TARGET:
        raise ValidationError("target is longer than %(most)d characters", most=MAX_TARGET)
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in t):
        raise ValidationError("target contains control characters")
    scheme = t.split(":", 1)[0].lower() if ":" in t else ""
    if kind is ChannelKind.PHONE:
        number = t[4:] if scheme == "tel" else t
        return "tel:" + normalise_e164(number)
    if any(c.isspace() for c in t):
        raise ValidationError("target contains spaces")
    if kind is ChannelKind.EMAIL:
        return "mailto:" + _mailbox(t[7:] if scheme == "mailto" else t)
    if scheme != "https":
        if not scheme:
            raise ValidationError("a %(kind)s link must be an https:// URL (got no scheme)", kind=kind.value)
        raise ValidationError("a %(kind)s link must be an https:// URL (got %(scheme)s scheme)", kind=kind.value,
                              scheme=scheme)
    url = urls.parse_https(t)
    if kind is ChannelKind.LINE and not _on(url.host, LINE_DOMAINS):
        raise ValidationError("a LINE channel must be a line.me link, e.g. https://line.me/R/ti/p/@acme")
    if kind is ChannelKind.LINE_WORKS and not _on(url.host, LINE_WORKS_DOMAINS):
        raise ValidationError("a LINE WORKS channel must be a works.do link, e.g. https://works.do/R/ti/p/taro@acme")
    if kind is ChannelKind.WHATSAPP and not _on(url.host, WHATSAPP_DOMAINS):
        raise ValidationError("a WhatsApp Business channel must be a wa.me link")
    if kind is ChannelKind.TEAMS and not _on(url.host, TEAMS_DOMAINS):
        raise ValidationError("a Microsoft Teams channel must be a teams.microsoft.com link")
    return url.text


def _mailbox(text: str) -> str:
    """The one address of a ``mailto:`` target, percent-decoded as a mail app reads it; the query is dropped."""
    address = urls.percent_decode(text.split("?", 1)[0], Message("address"))
    if "," in address or ";" in address:
        raise ValidationError("an email channel takes one address")
    if not _EMAIL_RE.fullmatch(address):
        raise ValidationError("not an email address: %(email)r", email=address)
    return address


def check_policy(company: Company, kind: ChannelKind, target: str) -> None:
    """Raise PolicyError (or ValidationError) when a target is not one of the company's own channels.

    The target is cleaned first, so a row stored by an older version is read the way a browser reads it.
    """
    if not company.has_policy:
        return
    target = clean_target(kind, target)
    if target.startswith("tel:"):
        _check_phone(company, target[4:])
        return
    if target.startswith("mailto:"):
        _check_email(company, target[7:])
        return
    url = urls.parse_https(target)
    if why := blocked_reason(url):
        raise PolicyError("%(host)s is %(why)s, so it cannot be a company channel", host=url.host, why=why)
    if url.port is not None and _on(url.host, LINE_DOMAINS + LINE_WORKS_DOMAINS + WHATSAPP_DOMAINS + TEAMS_DOMAINS):
        raise PolicyError("a %(host)s link has no port of its own; use the plain https://%(host)s/… link",
                          host=url.host)
    if _on(url.host, LINE_DOMAINS):
        _check_line(company, url)
    elif _on(url.host, LINE_WORKS_DOMAINS):
        _check_line_works(company, url)
    elif _on(url.host, WHATSAPP_DOMAINS):
        _check_whatsapp(company, url)
    elif _on(url.host, TEAMS_DOMAINS):
        _check_teams(company, url)
    if kind in WEB_KINDS and company.allow_web_hosts and not _on(url.host, company.allow_web_hosts):
        raise PolicyError("%(host)s is not one of the company's web hosts (allowed: %(allowed)s)", host=url.host,
                          allowed=", ".join(company.allow_web_hosts))


def _check_email(company: Company, address: str) -> None:
    domain = address.rsplit("@", 1)[-1].lower()
    if domain not in company.allow_email_domains:
        raise PolicyError("%(address)s is not a company email address (allowed domains: %(allowed)s)",
                          address=address, allowed=", ".join(company.allow_email_domains) or _NONE_SET)


def _check_phone(company: Company, number: str) -> None:
    e164 = normalise_e164(number)
    if not any(e164.startswith(p) for p in company.allow_phone_prefixes):
        raise PolicyError("%(number)s is not a company phone number (allowed prefixes: %(allowed)s)",
                          number=number, allowed=", ".join(company.allow_phone_prefixes) or _NONE_SET)


# The whole path of a LINE Official Account link (after one round of percent-decoding), not only its last
# segment: "/R/ti/p/~personal/@acme" names a personal ID first.
_LINE_OA_PATH = re.compile(r"/(?:R/)?ti/p/(@[A-Za-z0-9._-]+)/?|/R/oaMessage/(@[A-Za-z0-9._-]+)/?")


def _check_line(company: Company, url: WebUrl) -> None:
    if url.host != "line.me":
        raise PolicyError("%(host)s links cannot be checked (short links, LIFF apps and pages can lead to "
                          "anyone); use https://line.me/R/ti/p/@your-account", host=url.host)
    path = url.decoded_path()
    match = _LINE_OA_PATH.fullmatch(path)
    line_id = (match.group(1) or match.group(2)).lower() if match else ""
    if line_id not in company.allow_line_ids:
        raise PolicyError("%(path)r is not a link to one of the company's LINE Official Accounts "
                          "(use https://line.me/R/ti/p/@your-account)", path=path)


_LINE_WORKS_PATH = re.compile(r"/R/ti/p/[A-Za-z0-9._-]+@([A-Za-z0-9.-]+)/?")


def _check_line_works(company: Company, url: WebUrl) -> None:
    path = url.decoded_path()
    match = _LINE_WORKS_PATH.fullmatch(path) if url.host == "works.do" else None
    if match is None or match.group(1).lower() not in company.allow_line_works_domains:
        raise PolicyError("%(link)s is not a member of the company's LINE WORKS domain "
                          "(use https://works.do/R/ti/p/name@your-domain)", link=url.host + path)


def _check_whatsapp(company: Company, url: WebUrl) -> None:
    params = parse_qs(url.query or "", keep_blank_values=True)
    path = url.decoded_path()
    if url.host == "wa.me" and "phone" not in params and (match := re.fullmatch(r"/([0-9]{6,15})/?", path)):
        number = match.group(1)
    elif url.host == "api.whatsapp.com" and path in ("/send", "/send/") and len(params.get("phone", [])) == 1:
        number = params["phone"][0].strip().lstrip("+")
    else:
        raise PolicyError("%(link)s cannot be checked; use https://wa.me/<company number>", link=url.host + path)
    if not number.isascii() or not number.isdigit():
        raise PolicyError("%(number)r is not a phone number", number=number)
    _check_phone(company, "+" + number)


def _check_teams(company: Company, url: WebUrl) -> None:
    if url.on("teams.live.com"):
        raise PolicyError("teams.live.com links are Teams for personal accounts; use a teams.microsoft.com link")
    for users in parse_qs(url.query or "").get("users", []):
        for user in users.split(","):
            if user.strip():
                _check_email(company, user.strip())


# --- free text ---------------------------------------------------------------------------------------
# A channel label, a name, a title or a department is printed on the card next to the buttons, so it must not carry a
# contact the targets may not: "個人LINE: taro_private / 090-1234-5678". Text is read after NFKC (full-width
# digits, letters, "＠" and "：" fold) and lower-cased. Refused when it holds
#   - a run of 9 or more digits (separators allowed between them) that is not a number under an allowed prefix;
#   - an email address (or "(at)"/"[at]"/"アットマーク") whose domain is not allowed;
#   - a URL (scheme, "www." or host/path) that would not pass as a company web link, or a bare messenger,
#     shortener or redirector host ("lin.ee", "t.me");
#   - a LINE-style handle: "@id" that is not an allowed Official Account, or any "~id";
#   - a word joined by "_" ("taro_private"), the shape of a handle;
#   - a messenger name or "ID" followed by an ID: after ":", "=", "は" or "ID", or a token with a digit, "." or
#     "-"; after an unambiguous messenger brand (WhatsApp, WeChat, Telegram, ...) any word that is not ordinary
#     ("LINE公式アカウント", "LINE Official Account", "WhatsApp Business" and "Line Manager" stay fine); "LINE"
#     in capitals is that brand too ("LINE taro"), and kanji numerals count as digits ("〇九〇…").
_TEXT_DIGITS = re.compile(r"\+?\(?[0-9](?:[\s\-‐‑‒–—―−ー.()]{0,2}[0-9]){8,}")
_TEXT_EMAIL = re.compile(r"[a-z0-9._%+-]+@[a-z0-9-]+(?:\.[a-z0-9-]+)+")
_TEXT_AT_WORD = re.compile(r"\((?:at|アット)\)|\[(?:at|アット)\]|\{at\}|アットマーク|あっとまーく")
_TEXT_URL = re.compile(r"(?:https?://|www\.)\S+|(?<![a-z0-9@._-])[a-z0-9-]+(?:\.[a-z0-9-]+)*\.[a-z][a-z0-9-]*/\S*")
_TEXT_HOST = re.compile(r"(?<![a-z0-9@._-])[a-z0-9-]+(?:\.[a-z0-9-]+)+(?![a-z0-9_-])")
_TEXT_HANDLE = re.compile(r"(?<![a-z0-9._%+-])([@~])([a-z0-9._-]{2,})")
_BRANDS = ("whatsapp", "ワッツアップ", "wechat", "weixin", "微信", "telegram", "テレグラム", "kakaotalk", "kakao",
           "カカオトーク", "カカオ", "messenger", "メッセンジャー", "instagram", "インスタグラム", "インスタ", "viber",
           "skype", "スカイプ", "discord", "threema", "snapchat", "ライン", "らいん")
_AMBIGUOUS = ("line", "signal", "id")  # ordinary English words too: an ID must look like one
_TEXT_MESSENGER_ID = re.compile(
    r"(?<![a-z0-9])(?P<word>" + "|".join(map(re.escape, _BRANDS + _AMBIGUOUS)) + r")(?![a-z0-9])"
    r"\s*(?P<id>id(?![a-z0-9]))?\s*(?P<sep>[:=→]|->|は|が|=>)?\s*(?P<token>[a-z0-9][a-z0-9._-]*)?")
# "taro_private" on its own: an underscore joins the parts of a handle, never of a title or a department name.
_TEXT_UNDERSCORE = re.compile(r"(?<![a-z0-9._@~-])(?=[a-z0-9._-]*[a-z0-9])[a-z0-9.-]*_[a-z0-9._-]*")
_ORDINARY_WORDS = frozenset({
    "official", "account", "accounts", "oa", "works", "business", "chat", "call", "calls", "channel", "page",
    "pay", "ads", "app", "support", "desk", "team", "for", "and", "or", "de", "with", "us", "the", "our", "to",
    "manager", "lead", "marketing", "sales", "staff", "operator", "admin",
})
# "LINE" written in capitals is the messenger, never the English word: "LINE taro" names an account.
_LINE_IN_CAPITALS = re.compile(r"(?<![A-Za-z0-9])LINE(?![A-Za-z0-9])")
# Kanji numerals spell a phone number as well as digits do: "〇九〇-一二三四-五六七八".
_KANJI_DIGITS = str.maketrans("〇零一二三四五六七八九", "00123456789")


def check_text(company: Company, what: Message, text: str) -> None:
    """Raise PolicyError when free text printed on the card carries a contact outside the policy."""
    if not company.has_policy or not text:
        return
    normal = unicodedata.normalize("NFKC", text)
    problem = _text_problem(company, normal.lower(), line_is_brand=bool(_LINE_IN_CAPITALS.search(normal)))
    if problem:
        raise PolicyError("the %(what)s must not carry %(problem)s; put company contacts in channels instead",
                          what=what, problem=problem)


def _text_problem(company: Company, text: str, *, line_is_brand: bool) -> Message | None:
    for run in _TEXT_DIGITS.finditer(text.translate(_KANJI_DIGITS)):
        number = re.sub(r"[‐‑‒–—―−ー]", "-", run.group())
        try:
            _check_phone(company, number)
        except ValidationError:
            return Message("a phone number outside the policy (%(found)s)", found=run.group())
    for address in _TEXT_EMAIL.finditer(text):
        if address.group().rsplit("@", 1)[-1] not in company.allow_email_domains:
            return Message("an email address outside the policy (%(found)s)", found=address.group())
    if _TEXT_AT_WORD.search(text):
        return Message("a spelled-out email address")
    for link in _TEXT_URL.finditer(text):
        url = link.group()
        try:
            check_policy(company, ChannelKind.WEB, url if url.startswith("http") else "https://" + url)
        except ValidationError:
            return Message("a link outside the policy (%(found)s)", found=url)
    for host in _TEXT_HOST.finditer(text):
        name = host.group()
        if _blocked_everywhere(name) or _on(name, LINE_DOMAINS + WHATSAPP_DOMAINS + LINE_WORKS_DOMAINS):
            return Message("a messenger or redirect host (%(found)s)", found=name)
    for handle in _TEXT_HANDLE.finditer(text):
        if handle.group(1) == "~" or handle.group() not in company.allow_line_ids:
            return Message("a LINE ID outside the policy (%(found)s)", found=handle.group())
    for word in _TEXT_UNDERSCORE.finditer(text):
        if "@" + word.group() not in company.allow_line_ids:
            return Message("an ID-like word (%(found)s)", found=word.group())
    for mention in _TEXT_MESSENGER_ID.finditer(text):
        token = mention.group("token")
        if not token or token in _ORDINARY_WORDS or "@" + token in company.allow_line_ids:
            continue
        id_like = mention.group("id") or mention.group("sep") or re.search(r"[0-9._-]", token)
        brand = mention.group("word")
        if id_like or brand not in _AMBIGUOUS or (brand == "line" and line_is_brand):
            return Message("a messenger ID (%(found)s)", found=mention.group().strip())
    return None
