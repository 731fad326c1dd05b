"""Language negotiation and gettext catalogues (Babel). Japanese first, English second.

Message ids are English; ``locale/<dir>/LC_MESSAGES/messages.po`` carries each other language (``ja``, and for
the customer's pages ``zh_Hans``, ``zh_Hant``, ``ko``). The .po files are compiled in memory at start-up, so a
checkout needs no build step and no binary .mo files, and an installed wheel carries them inside the package.

The customer's pages (the card, its 404/410 pages, the error page, the vCard's note) are offered in all of
``LANGUAGES``; the console, /me and sign-in only in ``CONSOLE_LANGUAGES``, whose catalogue is complete.
"""

from __future__ import annotations

import gettext
import io
from collections.abc import Mapping
from pathlib import Path

from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po

from .models import ContactcardError, Message

# BCP 47 tags, as the page's lang attribute, Content-Language and the ?lang= switch carry them.
LANGUAGES = ("ja", "en", "zh-Hans", "zh-Hant", "ko")
CONSOLE_LANGUAGES = ("ja", "en")
# Each language's name in itself, as the switch on the customer's pages lists them.
NAMES = {"ja": "日本語", "en": "English", "zh-Hans": "简体中文", "zh-Hant": "繁體中文", "ko": "한국어"}
# Each language as Open Graph names a locale (og:locale, for link previews).
OG_LOCALES = {"ja": "ja_JP", "en": "en_US", "zh-Hans": "zh_CN", "zh-Hant": "zh_TW", "ko": "ko_KR"}
DEFAULT = "ja"
LOCALE_DIR = Path(__file__).resolve().parent / "locale"
# Chinese without a script subtag: these regions write Traditional characters, the rest (CN, SG, bare zh) Simplified.
_TRADITIONAL_REGIONS = frozenset({"tw", "hk", "mo"})


def catalogue_dir(lang: str) -> str:
    """The locale directory of a language tag: ``zh-Hans`` -> ``zh_Hans`` (gettext's and Babel's spelling)."""
    return lang.replace("-", "_")


def load_catalogues(locale_dir: Path = LOCALE_DIR) -> dict[str, gettext.NullTranslations]:
    catalogues: dict[str, gettext.NullTranslations] = {"en": gettext.NullTranslations()}
    for lang in LANGUAGES:
        po = locale_dir / catalogue_dir(lang) / "LC_MESSAGES" / "messages.po"
        if po.exists():
            with po.open("rb") as f:
                catalog = read_po(f, locale=catalogue_dir(lang))
            buf = io.BytesIO()
            write_mo(buf, catalog)
            buf.seek(0)
            catalogues[lang] = gettext.GNUTranslations(buf)
    return catalogues


def negotiate(query_lang: str | None, cookie_lang: str | None, accept_language: str,
              offered: tuple[str, ...] = LANGUAGES) -> str:
    """An explicit choice (the switch on the page, then its cookie) wins over the browser's header."""
    for choice in (query_lang, cookie_lang):
        if choice in offered:
            return choice
    for tag in _parse_accept_language(accept_language):
        lang = _supported(tag)
        if lang in offered:
            return lang
    return DEFAULT


def _supported(tag: str) -> str | None:
    """Our language for a browser's tag: ``zh-TW`` -> ``zh-Hant``, ``zh`` -> ``zh-Hans``, ``ko-KR`` -> ``ko``."""
    primary, *rest = tag.lower().split("-")
    if primary == "zh":
        if "hant" in rest:
            return "zh-Hant"
        if "hans" in rest:
            return "zh-Hans"
        return "zh-Hant" if _TRADITIONAL_REGIONS.intersection(rest) else "zh-Hans"
    return primary if primary in ("ja", "en", "ko") else None


def _parse_accept_language(header: str) -> list[str]:
    """Language tags in order of preference; malformed parts are skipped, never an error."""
    weighted: list[tuple[float, int, str]] = []
    for index, part in enumerate(header[:256].split(",")):
        tag, _, params = part.strip().partition(";")
        tag = tag.strip()
        if not tag or tag == "*" or len(tag) > 35:
            continue
        q = 1.0
        if params.strip().startswith("q="):
            try:
                q = float(params.strip()[2:])
            except ValueError:
                continue
        if q > 0:
            weighted.append((-q, index, tag))
    return [tag for _, _, tag in sorted(weighted)]


class Translator:
    """The translation functions templates get for one request."""

    def __init__(self, catalogues: Mapping[str, gettext.NullTranslations], lang: str) -> None:
        self.lang = lang
        self._t = catalogues.get(lang, catalogues["en"])

    def gettext(self, message: str, **values: object) -> str:
        text = self._t.gettext(message)
        return text % values if values else text

    def message(self, said: Message | ContactcardError) -> str:
        """An error's (or any ``Message``'s) sentence in this language."""
        return (said.message if isinstance(said, ContactcardError) else said).render(self._t.gettext)
