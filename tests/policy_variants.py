"""The November review's channel-policy attack list as data: every variant, the policy it runs under, the verdict.

Each row is (kind, target, preset, verdict, finding, note, stored). ``verdict`` is "accept" or "refuse";
``stored``, when given, is the canonical target an accepted row must be saved as. ``finding`` names the review
finding whose family of attacks a row belongs to ("held" for the families the review found refused already,
which must keep holding; "legit" for company channels that must stay accepted). Not every row of a finding's
family got through the old code (a disguised host under kind ``line`` was refused by its shape); the ones that
did are what the finding reports. Rows are written out where the review lists them and generated where a cross
product keeps the table honest: every host disguise x every messenger link x every kind it can be entered under.
``tests/test_policy_variants.py`` runs them all through ``policy.clean_target`` + ``policy.check_policy``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace

from contactcard.models import Company
from contactcard.service import DEFAULT_COMPANY

ACME = replace(DEFAULT_COMPANY, name="Acme", allow_email_domains=("acme.example",), allow_phone_prefixes=("+813",),
               allow_line_ids=("@acme",), allow_line_works_domains=("acme",))
PRESETS: dict[str, Company] = {
    "acme": ACME,  # the review's set-up: email domain, Tokyo prefix, LINE @acme, LINE WORKS acme
    "acme_web": replace(ACME, allow_web_hosts=("acme.example",)),  # plus --allow-web-host acme.example
    "none": DEFAULT_COMPANY,  # no policy: only the shape of a target is checked
}
WEB_KINDS = ("web", "custom", "booking")
URL_KINDS = ("line", "line_works", "whatsapp", "teams", *WEB_KINDS)


@dataclass(frozen=True)
class Variant:
    kind: str
    target: str
    preset: str
    verdict: str
    finding: str
    note: str
    stored: str = ""

    @property
    def id(self) -> str:
        return f"{self.finding}|{self.kind}|{self.preset}|{self.note}|{self.target}"


def _full_width(text: str) -> str:
    return "".join(chr(ord(c) + 0xFEE0) if c.isascii() and c.isalnum() else c for c in text)


# How the review disguised a host; each turns "line.me" into something a browser still opens as line.me.
DISGUISES: tuple[tuple[str, Callable[[str], str]], ...] = (
    ("full-width letters", _full_width),
    ("full-width letters and dots", lambda h: _full_width(h).replace(".", "．")),
    ("%2e dots", lambda h: h.replace(".", "%2e")),
    ("%2E dots", lambda h: h.replace(".", "%2E")),
    ("trailing dot", lambda h: h + "."),
    ("。 dots", lambda h: h.replace(".", "。")),
    ("． dots", lambda h: h.replace(".", "．")),
    ("｡ dots", lambda h: h.replace(".", "｡")),
    ("%EF%BC%8E dots", lambda h: h.replace(".", "%EF%BC%8E")),
    ("%E3%80%82 dots", lambda h: h.replace(".", "%E3%80%82")),
    ("upper case", str.upper),
    ("percent-encoded first letter", lambda h: f"%{ord(h[0]):02X}{h[1:]}"),
    ("full-width and trailing 。", lambda h: _full_width(h) + "。"),
    ("explicit :443", lambda h: h + ":443"),
    ("empty port", lambda h: h + ":"),
)


def _mapped(first: int) -> Callable[[str], str]:
    """Letters spelled with a run of Unicode letters that UTS-46 maps back to a-z (circled, mathematical bold)."""
    return lambda h: "".join(chr(first + ord(c) - 97) if "a" <= c <= "z" else c for c in h)


_MODIFIER = str.maketrans("lineawhtspmcor", "ˡⁱⁿᵉᵃʷʰᵗˢᵖᵐᶜᵒʳ")

# Disguises the review did not try, each a host a browser still opens as the messenger's (test_policy_variants asks
# a WHATWG URL parser, Node's, to confirm it): other letters UTS-46 maps to ASCII, and characters it ignores
# inside a label (soft hyphen, zero-width space, word joiner, byte order mark, variation selector, combining
# grapheme joiner, Mongolian variation selector), typed or percent-encoded.
MORE_DISGUISES: tuple[tuple[str, Callable[[str], str]], ...] = (
    ("circled letters", _mapped(0x24D0)),
    ("mathematical bold letters", _mapped(0x1D41A)),
    ("modifier letters", lambda h: h.translate(_MODIFIER)),
    *((f"{name} after the first letter", lambda h, c=char: h[0] + c + h[1:]) for name, char in (
        ("soft hyphen", "\u00ad"), ("zero-width space", "\u200b"), ("word joiner", "\u2060"),
        ("byte order mark", "\ufeff"), ("variation selector 16", "\ufe0f"), ("combining grapheme joiner", "\u034f"),
        ("Mongolian variation selector", "\u180b"), ("%C2%AD", "%C2%AD"), ("%E2%80%8B", "%E2%80%8B"))),
    ("%EF%BD%A1 dots", lambda h: h.replace(".", "%EF%BD%A1")),
    ("circled letters, 。 dots and a trailing dot", lambda h: _mapped(0x24D0)(h).replace(".", "。") + "."),
)

# Personal contacts behind a messenger, shortener or redirector host: refused under every kind.
PERSONAL_LINKS = (
    ("line.me", "/ti/p/~taro_private", ("line",)),
    ("line.me", "/R/ti/p/~taro_private", ("line",)),
    ("wa.me", "/819012345678", ("whatsapp",)),
    ("api.whatsapp.com", "/send?phone=819012345678", ("whatsapp",)),
    ("web.whatsapp.com", "/send?phone=819012345678", ("whatsapp",)),
    ("bit.ly", "/3xYzAbC", ()),
    ("t.me", "/taro_private", ()),
)
# The company's own accounts, disguised: accepted, and stored as the browser reads them.
COMPANY_LINKS = (
    ("line.me", "/R/ti/p/@acme", "line"),
    ("wa.me", "/81312345678", "whatsapp"),
    ("www.acme.example", "/", "web"),
)


def _disguised() -> Iterator[Variant]:
    for host, path, own_kinds in PERSONAL_LINKS:
        for name, disguise in (*DISGUISES, *MORE_DISGUISES):
            for kind in (*WEB_KINDS, *own_kinds):
                yield Variant(kind, f"https://{disguise(host)}{path}", "acme", "refuse", "1", f"disguised: {name}")
    for host, path, kind in COMPANY_LINKS:
        for name, disguise in DISGUISES:
            yield Variant(kind, f"https://{disguise(host)}{path}", "acme", "accept", "legit",
                          f"company link, disguised: {name}", stored=f"https://{host}{path}")


# Finding 5: the whole LINE path is checked, not its last segment.
NON_CANONICAL_LINE_PATHS = (
    ("/R/ti/p/~taro_private/@acme", "personal ID before the allowed one"),
    ("/ti/p/~taro_private/@acme", "personal ID before the allowed one, no /R"),
    ("/R/ti/p/%7Etaro_private%2F%40acme", "encoded ~, / and @"),
    ("/R/ti/p/%7etaro_private%2f%40acme", "encoded, lower-case escapes"),
    ("/R/ti/p/@acme/~taro_private", "personal ID after the allowed one"),
    ("/R/ti/p/@acme/%2e%2e/~taro_private", "%2e%2e segment back out of @acme"),
    ("/R/ti/p/@acme/../~taro_private", ".. segment back out of @acme"),
    ("/R/ti/p/@acme%2F~taro_private", "encoded slash inside the id"),
    ("/R/ti/p/@acme%2F..%2F~taro_private", "encoded ../ inside the id"),
    ("/R/ti/p/%2540acme", "double-encoded @"),
    ("/R/ti/p/~taro_private?@acme", "allowed id only in the query"),
    ("/R/ti/p/~taro_private#@acme", "allowed id only in the fragment"),
    ("/R/ti/p/@acme@taro_private", "two ids in one segment"),
    ("/R/oaMessage/@acme/~taro_private", "personal ID after an oaMessage link"),
    ("/R/oaMessage/~taro_private/@acme", "personal ID inside an oaMessage link"),
    ("/R/ti/g/AbCdEfGh", "group invitation"),
    ("/ti/g2/AbCdEfGhIjKl", "group invitation, new form"),
    ("/R/msg/text/?hello", "share-a-message link"),
    ("/R/home/public/main?id=taro_private", "personal timeline"),
    ("/R/nv/chat", "opens the customer's own chats"),
    ("/r/ti/p/@acme", "lower-case /r (not the canonical path)"),
    ("/R/ti/p/@acme/extra", "trailing segment"),
)


def _line_paths() -> Iterator[Variant]:
    for path, note in NON_CANONICAL_LINE_PATHS:
        for kind in ("line", *WEB_KINDS):
            yield Variant(kind, f"https://line.me{path}", "acme", "refuse", "5", note)
    for app in ("1657000000-abcdefgh/@acme", "1657000000-abcdefgh/~taro_private", "1657000000-abcdefgh"):
        for kind in ("line", *WEB_KINDS):
            yield Variant(kind, f"https://liff.line.me/{app}", "acme", "refuse", "5", "LIFF app: forwards anywhere")


# Finding 1: LINE-owned hosts other than line.me cannot be checked, whatever the kind and path.
LINE_OWNED_HOSTS = (
    "access.line.me", "timeline.line.me", "www.line.me", "line.naver.jp", "page.line.me", "lin.ee",
    "store.line.me", "social-plugins.line.me", "notify-bot.line.me", "admin-official.line.me", "qr-official.line.me",
    "manager.line.biz", "page.line.biz", "liff-gateway.lineml.jp.line.me", "line.me.line.naver.jp",
)


def _line_hosts() -> Iterator[Variant]:
    for host in LINE_OWNED_HOSTS:
        for path in ("/R/ti/p/@acme", "/taro_private"):
            for kind in ("line", *WEB_KINDS):
                yield Variant(kind, f"https://{host}{path}", "acme", "refuse", "1", "LINE-owned host")


# Finding 1: WhatsApp Web and the other WhatsApp-owned hosts and forms.
WHATSAPP_LINKS = (
    ("https://web.whatsapp.com/send?phone=819012345678", "WhatsApp Web, personal number"),
    ("https://web.whatsapp.com/send?phone=81312345678", "WhatsApp Web: only wa.me links are checked"),
    ("https://chat.whatsapp.com/AbCdEfGhIjK", "group invitation"),
    ("https://wa.link/abc123", "wa.link shortener"),
    ("https://whatsapp.com/send?phone=819012345678", "bare whatsapp.com"),
    ("https://www.whatsapp.com/send?phone=819012345678", "www.whatsapp.com"),
    ("https://api.whatsapp.com/send?phone=819012345678", "personal number via api"),
    ("https://api.whatsapp.com/send?phone=81312345678&phone=819012345678", "two phone parameters"),
    ("https://api.whatsapp.com/send?phone=%2B819012345678", "encoded +, personal"),
    ("https://api.whatsapp.com/message/ABCDEFG", "business short link"),
    ("https://wa.me/81312345678?phone=819012345678", "phone parameter next to the path number"),
    ("https://wa.me/message/ABCDEFG", "business short link"),
    ("https://wa.me/819012345678", "personal number"),
    ("https://wa.me/81312345678/819012345678", "second number in the path"),
    ("https://wa.me/%2B819012345678", "encoded + and personal number"),
    ("https://wa.me/", "no number"),
)


def _whatsapp() -> Iterator[Variant]:
    for target, note in WHATSAPP_LINKS:
        for kind in ("whatsapp", *WEB_KINDS):
            yield Variant(kind, target, "acme", "refuse", "1", note)


# Finding 2: a mail app percent-decodes the address and splits it on commas.
MAILTO_ATTACKS = (
    ("mailto:taro.private%40gmail.com%2Ctaro@acme.example", "encoded list, Gmail first"),
    ("mailto:taro@acme.example%2Ctaro.private%40gmail.com", "encoded list, Gmail second"),
    ("mailto:taro@acme.example%2ctaro.private@gmail.com", "encoded comma, lower-case escape"),
    ("mailto:taro@acme.example%3Btaro.private@gmail.com", "encoded semicolon"),
    ("mailto:taro.private%40gmail.com", "encoded @"),
    ("mailto:taro.private%2540gmail.com@acme.example", "double-encoded @"),
    ("mailto:%74aro.private@gmail.com", "encoded letter in a Gmail address"),
    ("mailto:taro.private@gmail%2Ecom", "encoded dot in the domain"),
    ("mailto:taro.private@gmail.com%2C@acme.example", "encoded comma before the company domain"),
    ("mailto:taro%25private@acme.example", "encoded %"),
    ("mailto:taro@acme.example%00x@gmail.com", "encoded NUL"),
    ("mailto:taro@acme.example%0Abcc:x@gmail.com", "encoded newline"),
    ("mailto:taro@acme%FF.example", "escape that is not UTF-8"),
)
GMAIL_SPELLINGS = (
    "taro.private@gmail.com", "mailto:taro.private@gmail.com", "TARO.PRIVATE@GMAIL.COM", "Taro.Private@Gmail.Com",
    "MAILTO:taro.private@gmail.com", "taro.private@googlemail.com", "taro@mail.gmail.com", "taro@gmail.com.",
    '"taro"@gmail.com', "taro@acme.example,taro.private@gmail.com", "taro.private@gmail.com,taro@acme.example",
    "mailto:?to=taro.private@gmail.com", "mailto:taro.private@gmail.com?to=taro@acme.example",
    "taro.private@gmail.com#@acme.example", "taro.private@gmail.com@acme.example", "taro@acme.example@gmail.com",
    "taro@ｇｍａｉｌ.com", "taro@acme.example.gmail.com", "taro@gmail.com?cc=taro@acme.example",
    "taro@acme.example;taro.private@gmail.com", "taro@[142.250.196.101]", "taro private@gmail.com",
)


def _mail() -> Iterator[Variant]:
    for target, note in MAILTO_ATTACKS:
        yield Variant("email", target, "acme", "refuse", "2", note)
    for target in GMAIL_SPELLINGS:
        yield Variant("email", target, "acme", "refuse", "held", "private Gmail spelling")


def _mobile_spellings(national: str) -> list[tuple[str, str]]:
    """The review's personal-mobile spellings of one 090/080/070 number (``national`` like 09012345678)."""
    a, b, c = national[:3], national[3:7], national[7:]
    intl = a[1:]
    return [
        (f"{a}-{b}-{c}", "national with dashes"),
        (national, "national digits"),
        (f"tel:{a}-{b}-{c}", "tel:"),
        (f"TEL:{national}", "TEL: upper case"),
        (f"+81 {intl} {b} {c}", "+81 with spaces"),
        (f"tel:+81-{intl}-{b}-{c}", "+81 with dashes"),
        (f"+81({intl}){b}-{c}", "+81(90)"),
        (f"+81-(0){intl}-{b}-{c}", "+81-(0)90"),
        (f"0081-{intl}-{b}-{c}", "0081 international prefix"),
        (f"010-81-{intl}-{b}-{c}", "010 international prefix"),
        (_full_width(f"{a}-{b}-{c}"), "full-width digits"),
        (f"tel:{a}-{b}-{c};ext=1", ";ext="),
        (f"tel:{national};phone-context=+81", ";phone-context="),
        (f"tel:%2B81{intl}{b}{c}", "%2B81"),
        (f"sms:{national}", "sms:"),
    ]


def _phones() -> Iterator[Variant]:
    for national in ("09012345678", "08012345678", "07012345678"):
        for target, note in _mobile_spellings(national):
            yield Variant("phone", target, "acme", "refuse", "held", f"personal mobile: {note}")
    yield Variant("phone", "(090)1234-5678", "acme", "refuse", "held", "personal mobile: (090)")
    for target, stored in (("03-1234-5678", "tel:+81312345678"), ("tel:+81-3-1234-5678", "tel:+81312345678"),
                           ("(03)1234-5678", "tel:+81312345678"), ("0081-3-1234-5678", "tel:+81312345678"),
                           ("+81 3 9012 3456", "tel:+81390123456")):
        yield Variant("phone", target, "acme", "accept", "legit", "Tokyo number", stored=stored)


# Finding 12: hosts whose links lead wherever someone else decides, or to a private account.
ELSEWHERE_LINKS = (
    ("https://google.com/url?q=https://line.me/ti/p/~x", "Google redirector"),
    ("https://www.google.com/url?q=https://line.me/ti/p/~x", "Google redirector, www"),
    ("https://www.google.co.jp/url?sa=t&url=https://line.me/ti/p/~x", "Google redirector, .co.jp"),
    ("https://www.google.com/a/../url?q=https://line.me/ti/p/~x", "Google redirector behind a dot segment"),
    ("https://bit.ly/3xYzAbC", "shortener"), ("https://t.co/AbCdEf", "shortener"),
    ("https://tinyurl.com/taro-line", "shortener"), ("https://goo.gl/AbCdEf", "shortener"),
    ("https://ow.ly/AbCd", "shortener"), ("https://is.gd/AbCd", "shortener"), ("https://buff.ly/AbCd", "shortener"),
    ("https://lnkd.in/AbCd", "shortener"), ("https://cutt.ly/AbCd", "shortener"),
    ("https://rebrand.ly/AbCd", "shortener"), ("https://x.gd/AbCd", "shortener"),
    ("https://acme.page.link/AbCd", "Firebase dynamic link"),
    ("https://linktr.ee/taro_private", "link-in-bio page"), ("https://lit.link/taroprivate", "link-in-bio page"),
    ("https://l.facebook.com/l.php?u=https://line.me/ti/p/~x", "Facebook redirector"),
    ("https://www.youtube.com/redirect?q=https://line.me/ti/p/~x", "YouTube redirector"),
    ("https://jpn01.safelinks.protection.outlook.com/?url=https://line.me/ti/p/~x", "Outlook safe link"),
    ("https://t.me/taro_private", "Telegram"), ("https://telegram.me/taro_private", "Telegram"),
    ("https://m.me/taro.private", "Messenger"), ("https://www.messenger.com/t/taro.private", "Messenger"),
    ("https://open.kakao.com/o/sAbCdEf", "KakaoTalk open chat"), ("https://qr.kakao.com/talk/AbCd", "KakaoTalk QR"),
    ("https://u.wechat.com/AbCdEf", "WeChat personal QR"), ("https://weixin.qq.com/r/AbCdEf", "WeChat personal QR"),
    ("https://ig.me/m/taro_private", "Instagram DM"), ("https://instagram.com/taro_private", "Instagram profile"),
    ("https://www.instagram.com/direct/t/123", "Instagram DM"),
    ("https://mail.google.com/mail/?view=cm&to=taro.private@gmail.com", "Gmail compose link"),
    ("https://outlook.live.com/mail/0/deeplink/compose?to=taro@outlook.jp", "Outlook.com compose link"),
    ("https://outlook.office.com/mail/deeplink/compose?to=taro.private@gmail.com", "Outlook compose link"),
    ("https://teams.live.com/l/invite/FEAAAAbCdEf", "Teams consumer link"),
    ("https://signal.me/#eu/AbCdEf", "Signal"), ("https://discord.gg/AbCdEf", "Discord"),
    ("https://join.skype.com/invite/AbCdEf", "Skype"), ("https://www.facebook.com/messages/t/taro", "Facebook DM"),
    ("https://x.com/messages/compose?recipient_id=123", "X DM"),
    # open redirectors and proxies on big platforms the review did not try (each forwards to, or shows, any site)
    ("https://maps.google.com/url?q=https://line.me/ti/p/~x", "Google redirector on another Google host"),
    ("https://images.google.co.jp/url?q=https://line.me/ti/p/~x", "Google redirector on another Google host"),
    ("https://www.google.com/amp/s/line.me/ti/p/~x", "Google AMP viewer (redirects a page that is not AMP)"),
    ("https://www.google.co.jp/amp/s/line.me/ti/p/~x", "Google AMP viewer, .co.jp"),
    ("https://translate.google.com/translate?u=https://line.me/ti/p/~x", "Google Translate proxy"),
    ("https://line-me.translate.goog/ti/p/~x", "Google Translate proxy host"),
    ("https://www.google.com/imgres?imgurl=x&imgrefurl=https://line.me/ti/p/~x", "Google Images redirector"),
    ("https://www.google.com/search?btnI=1&q=line.me/ti/p/~x", "Google I'm Feeling Lucky"),
    ("https://webcache.googleusercontent.com/search?q=cache:line.me/ti/p/~x", "Google cache proxy"),
    ("https://g.co/kgs/AbCdEf", "Google shortener"), ("https://search.app/AbCdEf", "Google shortener"),
    ("https://www.linkedin.com/redir/redirect?url=https%3A%2F%2Fline.me%2Fti%2Fp%2F~x", "LinkedIn redirector"),
    ("https://www.linkedin.com/safety/go?url=https%3A%2F%2Fline.me%2Fti%2Fp%2F~x", "LinkedIn redirector"),
    ("https://www.facebook.com/l.php?u=https://line.me/ti/p/~x", "Facebook redirector on www"),
    ("https://www.youtube.com/attribution_link?u=/redirect?q=https://line.me/ti/p/~x", "YouTube attribution link"),
    ("https://r.search.yahoo.com/_ylt=A/RU=https%3a%2f%2fline.me%2fti%2fp%2f~x/RK=0", "Yahoo search redirector"),
    ("https://fb.me/taro.private", "Facebook shortener"), ("https://naver.me/AbCdEf", "Naver shortener"),
    ("https://kko.to/AbCdEf", "Kakao shortener"), ("https://me2.kr/AbCd", "shortener"),
    ("https://instagr.am/taro_private", "Instagram's other domain"), ("https://zalo.me/0901234567", "Zalo"),
    ("https://vk.me/taro", "VK messenger"), ("https://fb.com/messages/t/taro", "Facebook DM on fb.com"),
    ("https://x.com/i/chat/123", "X chat"),
)


def _elsewhere() -> Iterator[Variant]:
    for target, note in ELSEWHERE_LINKS:
        for kind in WEB_KINDS:
            yield Variant(kind, target, "acme", "refuse", "12", note)
    yield Variant("teams", "https://teams.live.com/l/invite/FEAAAAbCdEf", "acme", "refuse", "12",
                  "Teams consumer link under teams")


# Finding 12: --allow-web-host acme.example limits web, custom and booking links to the company's hosts.
WEB_HOSTS = (
    ("https://acme.example/", "accept", "the host itself", "https://acme.example/"),
    ("https://www.acme.example/", "accept", "a subdomain", "https://www.acme.example/"),
    ("https://booking.acme.example/taro", "accept", "a subdomain with a path", "https://booking.acme.example/taro"),
    ("https://ＡＣＭＥ.example/", "accept", "full-width spelling of the host", "https://acme.example/"),
    ("https://WWW.ACME.EXAMPLE./", "accept", "upper case and trailing dot", "https://www.acme.example/"),
    ("https://evil.example/", "refuse", "another host", ""),
    ("https://acme.example.evil.example/", "refuse", "company host as a prefix", ""),
    ("https://evilacme.example/", "refuse", "company host as a suffix without a dot", ""),
    ("https://аcme.example/", "refuse", "Cyrillic а (a homograph)", ""),
    ("https://acme.example@evil.example/", "refuse", "company host as user name", ""),
    ("https://evil.example/acme.example", "refuse", "company host in the path", ""),
    ("https://evil.example/?acme.example", "refuse", "company host in the query", ""),
    ("https://line.me/R/ti/p/@acme", "refuse", "LINE link not on the web allow-list", ""),
)


def _web_hosts() -> Iterator[Variant]:
    for target, verdict, note, stored in WEB_HOSTS:
        for kind in WEB_KINDS:
            yield Variant(kind, target, "acme_web", verdict, "12" if verdict == "refuse" else "legit", note,
                          stored=stored)
    for kind in WEB_KINDS:  # without the list, any ordinary host stays acceptable
        yield Variant(kind, "https://booking.example.jp/acme/taro", "acme", "accept", "legit", "ordinary host",
                      stored="https://booking.example.jp/acme/taro")
        yield Variant(kind, "https://日本語.jp/予約", "acme", "accept", "legit", "IDN host",
                      stored="https://xn--wgv71a119e.jp/予約")
        yield Variant(kind, "https://www.google.com/maps/place/Tokyo", "acme", "accept", "legit",
                      "Google Maps is not a redirector", stored="https://www.google.com/maps/place/Tokyo")


# The review's "46 legitimate or harmless" accepted variants, which must stay accepted.
LEGIT = (
    ("line", "https://line.me/R/ti/p/@acme", "https://line.me/R/ti/p/@acme", "canonical"),
    ("line", "https://line.me/R/ti/p/@ACME", "https://line.me/R/ti/p/@ACME", "upper-case id"),
    ("line", "https://line.me/R/ti/p/%40acme", "https://line.me/R/ti/p/%40acme", "encoded @"),
    ("line", "https://line.me/ti/p/@acme", "https://line.me/ti/p/@acme", "without /R"),
    ("line", "https://line.me/R/ti/p/@acme/", "https://line.me/R/ti/p/@acme/", "trailing slash"),
    ("line", "https://line.me/R/ti/p/@acme?oat_content=url", "https://line.me/R/ti/p/@acme?oat_content=url",
     "with the Official Account manager's query"),
    ("line", "https://line.me/R/oaMessage/@acme/?%E3%81%93%E3%82%93%E3%81%AB%E3%81%A1%E3%81%AF",
     "https://line.me/R/oaMessage/@acme/?%E3%81%93%E3%82%93%E3%81%AB%E3%81%A1%E3%81%AF", "oaMessage with text"),
    ("line", "https://line.me/R/oaMessage/@acme", "https://line.me/R/oaMessage/@acme", "oaMessage"),
    ("web", "https://line.me/R/ti/p/@acme", "https://line.me/R/ti/p/@acme", "company LINE under web"),
    ("custom", "https://line.me/R/ti/p/@acme", "https://line.me/R/ti/p/@acme", "company LINE under custom"),
    ("line", "HTTPS://line.me/R/ti/p/@acme", "https://line.me/R/ti/p/@acme", "upper-case scheme"),
    ("whatsapp", "https://wa.me/81312345678", "https://wa.me/81312345678", "company number"),
    ("whatsapp", "https://wa.me/81312345678?text=%E3%81%93%E3%82%93", "https://wa.me/81312345678?text=%E3%81%93%E3%82%93",
     "company number with text"),
    ("whatsapp", "https://api.whatsapp.com/send?phone=81312345678", "https://api.whatsapp.com/send?phone=81312345678",
     "company number via api"),
    ("web", "https://wa.me/81312345678", "https://wa.me/81312345678", "company WhatsApp under web"),
    ("email", "TARO@ACME.EXAMPLE", "mailto:TARO@ACME.EXAMPLE", "upper case"),
    ("email", "taro+x@acme.example", "mailto:taro+x@acme.example", "plus address"),
    ("email", "mailto:taro@acme.example", "mailto:taro@acme.example", "mailto:"),
    ("email", "MAILTO:taro@acme.example", "mailto:taro@acme.example", "MAILTO:"),
    ("email", "mailto:taro%40acme.example", "mailto:taro@acme.example", "encoded @, stored decoded"),
    ("email", "mailto:taro@acme.example?cc=taro.private@gmail.com", "mailto:taro@acme.example", "?cc= is dropped"),
    ("email", "mailto:taro@acme.example?bcc=taro.private@gmail.com", "mailto:taro@acme.example", "?bcc= is dropped"),
    ("email", "mailto:taro@acme.example?subject=x&cc=a@gmail.com", "mailto:taro@acme.example", "&cc= is dropped"),
    ("line_works", "https://works.do/R/ti/p/taro@acme", "https://works.do/R/ti/p/taro@acme", "LINE WORKS member"),
    ("web", "https://www.google.com/maps/place/Acme/@35.68,139.76,17z", "https://www.google.com/maps/place/Acme/@35.68,139.76,17z",
     "the office on Google Maps"),
    ("web", "https://maps.google.com/maps?q=acme", "https://maps.google.com/maps?q=acme", "Google Maps search"),
    ("web", "https://www.linkedin.com/company/acme", "https://www.linkedin.com/company/acme", "company LinkedIn page"),
    ("teams", "https://teams.microsoft.com/l/chat/0/0?users=taro@acme.example",
     "https://teams.microsoft.com/l/chat/0/0?users=taro@acme.example", "Teams chat with a company user"),
)

# What already held in the review and must keep holding.
HELD = (
    ("line", "https://LINE.ME/ti/p/~taro_private", "upper-case host, personal ID"),
    ("line", "https://line.me:443/ti/p/~taro_private", ":443, personal ID"),
    ("web", "https://line.me@evil.example/ti/p/@acme", "userinfo: line.me as user name"),
    ("line", "https://evil@line.me/R/ti/p/@acme", "userinfo before line.me"),
    ("line", "https://x:y@line.me/R/ti/p/@acme", "user and password"),
    ("web", "javascript:alert(1)", "javascript:"),
    ("web", "data:text/html,<b>x</b>", "data:"),
    ("web", "http://www.acme.example/", "http:"),
    ("web", "//line.me/ti/p/~taro_private", "scheme-relative"),
    ("web", "https:line.me/ti/p/~taro_private", "https: without slashes (a browser adds them)"),
    ("web", "https:/line.me/ti/p/~taro_private", "https:/ with one slash"),
    ("web", "https:///line.me/ti/p/~taro_private", "https:/// with three slashes"),
    ("web", "https://evil.example\\@line.me/ti/p/@acme", "backslash before @"),
    ("web", "https://line.me/ti/p/~taro\x00", "control character"),
    ("web", "https://line.me/ti/p/~taro\x7f", "DEL"),
    ("web", "https://line.me/ti /p", "space"),
    ("line", "https://lin.ee/AbCdEfG", "lin.ee short link"),
    ("line", "https://page.line.me/taro_private", "page.line.me"),
    ("line", "https://liff.line.me/1657000000-abcdefgh/~taro_private", "LIFF app"),
    ("line", "https://line.me/ti/g/AbCdEf", "group"),
    ("line", "https://line.me/R/ti/p/@acme/%2e%2e/~taro_private", "%2e%2e back out of @acme"),
    ("teams", "https://teams.microsoft.com/l/chat/0/0?users=taro.private@gmail.com", "Teams with a Gmail user"),
    ("teams", "https://teams.microsoft.com/l/chat/0/0?users=taro@acme.example,taro.private@gmail.com",
     "Teams with a Gmail user second"),
    ("line_works", "https://works.do/R/ti/p/taro@gmail", "LINE WORKS outside the domain"),
    ("line_works", "https://line.worksmobile.com/taro", "LINE WORKS host that cannot be checked"),
)

# Finding 1 (its root cause): URLs the old parser read differently from a browser, or that name no host a
# business card needs. Refused now rather than interpreted.
HOST_READING = (
    ("web", "https://line.me\\ti\\p\\~taro_private", "backslashes (a browser reads them as /)"),
    ("web", "https://127.0.0.1/", "IPv4 host"),
    ("web", "https://0x7f.1/", "hex IPv4 host"),
    ("web", "https://2130706433/", "decimal IPv4 host"),
    ("web", "https://[::1]/", "IPv6 host"),
    ("web", "https://localhost/", "single-label host"),
    ("web", "https://ex_ample.jp/", "underscore in the host"),
    ("web", "https://a..b.jp/", "empty label"),
    ("web", "https://www.acme.example:99999/", "port out of range"),
    ("web", "https://line%ff.me/", "host escape that is not UTF-8"),
    ("line", "https://line.me:8443/R/ti/p/@acme", "company LINE link on another port"),
    ("whatsapp", "https://wa.me:8443/81312345678", "company WhatsApp link on another port"),
)


def _listed() -> Iterator[Variant]:
    for kind, target, stored, note in LEGIT:
        yield Variant(kind, target, "acme", "accept", "legit", note, stored=stored)
    for kind, target, note in HELD:
        yield Variant(kind, target, "acme", "refuse", "held", note)
    for kind, target, note in HOST_READING:
        yield Variant(kind, target, "acme", "refuse", "1", note)
    yield Variant("line_works", "https://works.do/R/ti/p/taro@gmail/x@acme", "acme", "refuse", "5",
                  "LINE WORKS: outside member before the company one (the same last-segment bug)")
    for kind in URL_KINDS:  # a personal LINE ID on the canonical host, under every kind
        for path in ("/ti/p/~taro_private", "/R/ti/p/~taro_private", "/R/ti/p/@someone_else"):
            yield Variant(kind, f"https://line.me{path}", "acme", "refuse", "held", "personal LINE ID")
    # Without a policy only the shape is checked (the CLI warns); the shape rules still hold.
    yield Variant("line", "https://ｌｉｎｅ.me/ti/p/~taro", "none", "accept", "legit", "no policy: shape only",
                  stored="https://line.me/ti/p/~taro")
    yield Variant("web", "javascript:alert(1)", "none", "refuse", "held", "no policy: javascript:")
    yield Variant("line", "https://evil.example/R/ti/p/@acme", "none", "refuse", "held", "no policy: not LINE")


VARIANTS: tuple[Variant, ...] = (
    *_disguised(), *_line_paths(), *_line_hosts(), *_whatsapp(), *_mail(), *_phones(), *_elsewhere(),
    *_web_hosts(), *_listed(),
)


# Finding 12, second part: free text printed on the card (channel labels, title, department), checked with
# policy.check_text under the "acme" preset (plus acme_web where the web allow-list matters).
@dataclass(frozen=True)
class TextVariant:
    text: str
    preset: str
    verdict: str
    note: str

    @property
    def id(self) -> str:
        return f"{self.verdict}|{self.preset}|{self.note}|{self.text}"


_TEXT_REFUSED = (
    ("個人LINE: taro_private / 090-1234-5678", "the review's label"),
    ("LINE ID taro_private", "the review's title"),
    ("LINE ID: taro", "LINE ID with a colon"),
    ("LINE: taro", "LINE and a colon"),
    ("LINE→taro", "LINE and an arrow"),
    ("LINE taro1985", "LINE and an ID with digits"),
    ("ライン taro", "katakana LINE and a word"),
    ("LINE taro", "LINE in capitals and a plain word"),
    ("個人LINE taro", "personal LINE in capitals and a plain word"),
    ("携帯 〇九〇-一二三四-五六七八", "mobile in kanji numerals"),
    ("〇九〇一二三四五六七八", "mobile in kanji numerals without separators"),
    ("０９０ー一二三四ー五六七八", "mobile in mixed full-width and kanji numerals"),
    ("ＬＩＮＥ ＩＤ：ｔａｒｏ", "full-width LINE ID"),
    ("IDは taro_private", "ID は"),
    ("ID: taro", "ID and a colon"),
    ("taro_private", "a handle on its own"),
    ("@taro_private", "@handle that is not the company's"),
    ("＠taro", "full-width @handle"),
    ("~taro_private", "~handle"),
    ("WeChat taro", "WeChat and a word"),
    ("微信 taro", "WeChat in Chinese"),
    ("Telegram: @taro", "Telegram"),
    ("KakaoTalk taro", "KakaoTalk"),
    ("Instagram taro.private", "Instagram"),
    ("WhatsApp 819012345678", "WhatsApp number"),
    ("携帯 090-1234-5678", "personal mobile"),
    ("090 1234 5678", "personal mobile with spaces"),
    ("０９０ー１２３４ー５６７８", "full-width mobile with long-vowel dashes"),
    ("+81 90-1234-5678", "mobile in international form"),
    ("(090)1234-5678", "mobile with brackets"),
    ("9012345678", "mobile without the leading 0"),
    ("taro.private@gmail.com", "Gmail address"),
    ("taro＠gmail.com", "Gmail with a full-width at"),
    ("taro(at)gmail.com", "spelled-out at"),
    ("taro アットマーク gmail.com", "at-mark in Japanese"),
    ("https://line.me/ti/p/~taro", "personal LINE URL"),
    ("line.me/ti/p/~taro", "personal LINE URL without a scheme"),
    ("lin.ee/AbCdEf", "LINE short link"),
    ("t.me/taro", "Telegram link"),
    ("bit.ly/3xYz", "shortener"),
    ("wa.me", "bare WhatsApp host"),
    ("https://evil.example/", "a link to any host, with the web allow-list set"),
)
_TEXT_ACCEPTED = (
    "営業部", "課長", "第2営業部", "カスタマーサポート部", "Sales Manager", "Line Manager", "Product Line Manager",
    "ID管理部", "ID Management Lead", "LINE公式アカウント", "LINE Official Account", "LINE公式アカウントで相談",
    "WhatsApp Business", "LINE WORKS", "WeChat Pay 担当", "Skype for Business", "LINE @acme", "＠ａｃｍｅ",
    "代表 03-1234-5678", "Hotline 03-1234-5678", "sales@acme.example", "Node.js エンジニア", "ASP.NET 開発",
    "2026-11-28 着任", "株式会社アクメ Co.,Ltd.", "平日 9:00-18:00", "ISO 9001:2015 推進室", "営業部_東京",
    "https://www.acme.example/recruit", "www.acme.example", "Sales @ Tokyo", "Direct Line", "",
    "LINE Manager", "LINE Marketing Lead", "第一営業部", "二〇二六年入社", "一級建築士", "代表 〇三-一二三四-五六七八",
)

TEXT_VARIANTS: tuple[TextVariant, ...] = (
    *(TextVariant(text, "acme_web", "refuse", note) for text, note in _TEXT_REFUSED),
    *(TextVariant(text, "acme_web", "accept", "ordinary text") for text in _TEXT_ACCEPTED),
    TextVariant("個人LINE: taro_private / 090-1234-5678", "none", "accept", "no policy: text is not checked"),
)
