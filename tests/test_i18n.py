"""Every string shown to people is in the Japanese catalogue; language negotiation never fails."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from babel.messages.pofile import read_po

from contactcard import i18n

ROOT = Path(__file__).resolve().parent.parent


def test_every_extracted_message_has_a_japanese_translation(tmp_path: Path) -> None:
    pot = tmp_path / "messages.pot"
    subprocess.run([sys.executable, "-m", "babel.messages.frontend", "extract", "-F", "babel.cfg", "-k", "_",
                    "-o", str(pot), "."], cwd=ROOT, check=True, capture_output=True)
    with pot.open("rb") as f:
        wanted = {m.id for m in read_po(f) if m.id}
    with (ROOT / "contactcard/locale/ja/LC_MESSAGES/messages.po").open("rb") as f:
        ja = {m.id: m.string for m in read_po(f, locale="ja") if m.id and not m.fuzzy}
    missing = sorted(str(m) for m in wanted if not ja.get(m))
    assert not missing, f"untranslated: {missing}"


@pytest.mark.parametrize(("query", "cookie", "header", "expected"), [
    (None, None, "", "ja"),
    (None, None, "en-GB,en;q=0.8", "en"),
    (None, None, "fr-FR,en;q=0.5,ja;q=0.9", "ja"),
    (None, None, "zz;q=abc,,;;", "ja"),
    (None, "en", "ja", "en"),
    ("ja", "en", "en", "ja"),
    ("xx", None, "en", "en"),
])
def test_negotiation(query: str | None, cookie: str | None, header: str, expected: str) -> None:
    assert i18n.negotiate(query, cookie, header) == expected


def test_japanese_catalogue_loads() -> None:
    t = i18n.Translator(i18n.load_catalogues(), "ja")
    assert t.gettext("Save contact") == "連絡先を保存"
    assert i18n.Translator(i18n.load_catalogues(), "en").gettext("Save contact") == "Save contact"
