"""Language negotiation and gettext catalogues (Babel). Japanese first, English second.

Message ids are English; ``locale/ja/LC_MESSAGES/messages.po`` carries the Japanese. The .po files are
compiled in memory at start-up, so a checkout needs no build step and no binary .mo files.
"""

from __future__ import annotations

import gettext
import io
from collections.abc import Mapping
from pathlib import Path

from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po

LANGUAGES = ("ja", "en")
DEFAULT = "ja"
LOCALE_DIR = Path(__file__).resolve().parent / "locale"


def load_catalogues(locale_dir: Path = LOCALE_DIR) -> dict[str, gettext.NullTranslations]:
    catalogues: dict[str, gettext.NullTranslations] = {"en": gettext.NullTranslations()}
    for lang in LANGUAGES:
        po = locale_dir / lang / "LC_MESSAGES" / "messages.po"
        if po.exists():
            with po.open("rb") as f:
                catalog = read_po(f, locale=lang)
            buf = io.BytesIO()
            write_mo(buf, catalog)
            buf.seek(0)
            catalogues[lang] = gettext.GNUTranslations(buf)
    return catalogues


def negotiate(query_lang: str | None, cookie_lang: str | None, accept_language: str) -> str:
    """An explicit choice (the switch on the page, then its cookie) wins over the browser's header."""
    for choice in (query_lang, cookie_lang):
        if choice in LANGUAGES:
            return choice
    for tag in _parse_accept_language(accept_language):
        primary = tag.split("-")[0].lower()
        if primary in LANGUAGES:
            return primary
    return DEFAULT


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
