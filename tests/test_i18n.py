"""Every string shown to people is in the Japanese catalogue (the messages errors carry included), and every
string a customer sees in every catalogue; language negotiation never fails."""

from __future__ import annotations

import ast
import importlib
import pkgutil
import re
import subprocess
import sys
from pathlib import Path

import pytest
from babel.messages.catalog import Catalog
from babel.messages.pofile import read_po

import contactcard
from contactcard import i18n, models

ROOT = Path(__file__).resolve().parent.parent
# Where the customer's pages take their strings from: the card, its 404/410 pages, the error page, the vCard's note.
CUSTOMER_SOURCES = ("templates/card/", "templates/error.html", "templates/base.html", "contactcard/web/customer.py")


@pytest.fixture(scope="module")
def extracted(tmp_path_factory: pytest.TempPathFactory) -> Catalog:
    pot = tmp_path_factory.mktemp("pot") / "messages.pot"
    subprocess.run([sys.executable, "-m", "babel.messages.frontend", "extract", "-F", "babel.cfg", "-k", "_",
                    "-o", str(pot), "."], cwd=ROOT, check=True, capture_output=True)
    with pot.open("rb") as f:
        return read_po(f)


def _catalogue(lang: str) -> Catalog:
    with (ROOT / "contactcard/locale" / i18n.catalogue_dir(lang) / "LC_MESSAGES/messages.po").open("rb") as f:
        return read_po(f, locale=i18n.catalogue_dir(lang))


def test_every_extracted_message_has_a_japanese_translation(extracted: Catalog) -> None:
    wanted = {m.id for m in extracted if m.id}
    ja = {m.id: m.string for m in _catalogue("ja") if m.id and not m.fuzzy}
    missing = sorted(str(m) for m in wanted if not ja.get(m))
    assert not missing, f"untranslated: {missing}"


def test_every_customer_facing_message_is_translated_in_every_catalogue(extracted: Catalog) -> None:
    wanted = {m.id for m in extracted if m.id and any(path.startswith(CUSTOMER_SOURCES) for path, _ in m.locations)}
    assert len(wanted) >= 30 and "Save contact" in wanted
    for lang in i18n.LANGUAGES:
        if lang == "en":  # the message ids are the English text
            continue
        catalogue = _catalogue(lang)
        done = {m.id: m.string for m in catalogue if m.id and not m.fuzzy}
        missing = sorted(str(m) for m in wanted if not done.get(m))
        assert not missing, f"untranslated in {lang}: {missing}"
        # Babel's checkers: every %(name)s placeholder of the id is in the translation, and nothing else.
        problems = [(str(m.id), [str(e) for e in errors]) for m, errors in catalogue.check()]
        assert problems == [], lang


def test_the_chinese_and_korean_catalogues_are_in_their_own_script() -> None:
    """A cheap guard against a catalogue pasted into the wrong file: characters only one script uses."""
    texts = {lang: "".join(str(m.string) for m in _catalogue(lang) if m.id) for lang in ("zh-Hans", "zh-Hant", "ko")}
    assert "联系" in texts["zh-Hans"] and "聯" not in texts["zh-Hans"]
    assert "聯絡" in texts["zh-Hant"] and "联" not in texts["zh-Hant"]
    assert "연락처" in texts["ko"]


@pytest.mark.parametrize(("query", "cookie", "header", "expected"), [
    (None, None, "", "ja"),
    (None, None, "en-GB,en;q=0.8", "en"),
    (None, None, "fr-FR,en;q=0.5,ja;q=0.9", "ja"),
    (None, None, "zz;q=abc,,;;", "ja"),
    (None, "en", "ja", "en"),
    ("ja", "en", "en", "ja"),
    ("xx", None, "en", "en"),
    # Chinese: the script subtag decides; else Taiwan, Hong Kong and Macao read Traditional, the rest Simplified.
    (None, None, "zh-CN,zh;q=0.9", "zh-Hans"),
    (None, None, "zh-SG", "zh-Hans"),
    (None, None, "zh", "zh-Hans"),
    (None, None, "zh-Hans-CN", "zh-Hans"),
    (None, None, "zh-TW,zh;q=0.9,en-US;q=0.8", "zh-Hant"),
    (None, None, "zh-HK", "zh-Hant"),
    (None, None, "zh-MO", "zh-Hant"),
    (None, None, "zh-Hant", "zh-Hant"),
    (None, None, "zh-Hant-HK", "zh-Hant"),
    (None, None, "ZH-tw", "zh-Hant"),
    (None, None, "ko-KR,ko;q=0.9,en-US;q=0.8", "ko"),
    (None, None, "ko", "ko"),
    (None, None, "fr-FR,zh-TW;q=0.5,ja;q=0.4", "zh-Hant"),
    (None, "zh-Hant", "ko", "zh-Hant"),
    ("ko", "zh-Hans", "ja", "ko"),
    ("zh-hant", None, "ja", "ja"),  # the switch's values are exact: an odd spelling is no choice
])
def test_negotiation(query: str | None, cookie: str | None, header: str, expected: str) -> None:
    assert i18n.negotiate(query, cookie, header) == expected


@pytest.mark.parametrize(("query", "header", "expected"), [
    (None, "zh-CN,zh;q=0.9,en;q=0.8", "en"),  # the console has no Chinese: the reader's next language
    (None, "zh-TW", "ja"),
    ("ko", "ko", "ja"),
    ("en", "ko", "en"),
])
def test_the_console_offers_only_its_own_languages(query: str | None, header: str, expected: str) -> None:
    assert i18n.negotiate(query, None, header, i18n.CONSOLE_LANGUAGES) == expected


def test_every_catalogue_loads() -> None:
    catalogues = i18n.load_catalogues()
    assert set(catalogues) == set(i18n.LANGUAGES) == set(i18n.NAMES) == set(i18n.OG_LOCALES)
    saved = {lang: i18n.Translator(catalogues, lang).gettext("Save contact") for lang in i18n.LANGUAGES}
    assert saved == {"ja": "連絡先を保存", "en": "Save contact", "zh-Hans": "保存联系人", "zh-Hant": "儲存聯絡人",
                     "ko": "연락처 저장"}
    assert i18n.Translator(catalogues, "ko").gettext("Contact %(company)s", company="Sample K.K.") == \
        "Sample K.K. 문의처"


# --- every message a person can see from an error --------------------------------------------------------
# Modules whose errors only the command line shows (read before the server runs, or acting on database files):
# the CLI stays English. Everything else an error can say may reach the console or /me.
CLI_ONLY = {"contactcard/config.py", "contactcard/keycheck.py", "contactcard/demo.py", "contactcard/store/files.py"}
# Errors shown by a code, never by their message: an image refused (templates/admin/_macros.html, image_error),
# a sign-in refused (web/auth_routes, web/sso_routes.REFUSALS, by ``reason``) and an ID token refused (logged by
# reason, then refused as a sign-in). ProviderUnavailable quotes the identity provider's own answer (its URL, the
# HTTP status) for the admin who configures single sign-on, after a translated "Failed at …:".
BY_CODE = {"ImageRejected", "SignInRefused", "TokenRejected", "ProviderUnavailable"}
_FIELD = re.compile(r"%\((\w+)\)([a-z])")  # a field's name and conversion


def _error_classes() -> set[str]:
    for module in pkgutil.walk_packages(contactcard.__path__, "contactcard."):
        if not module.name.endswith("__main__"):
            importlib.import_module(module.name)
    found: set[str] = set()
    todo: list[type] = [models.ContactcardError]
    while todo:
        cls = todo.pop()
        found.add(cls.__name__)
        todo.extend(cls.__subclasses__())
    return found - BY_CODE


def _said() -> tuple[dict[str, list[str]], list[str]]:
    """Every literal message id an error (or a ``Message``) is built with, and where; and the calls that are not
    checkable (no literal id) or whose fields do not match their keywords."""
    names = _error_classes() | {"Message"}
    said: dict[str, list[str]] = {}
    problems: list[str] = []
    for path in sorted((ROOT / "contactcard").rglob("*.py")):
        relative = path.relative_to(ROOT).as_posix()
        # models.py defines Message: its one call passes an error's id through
        if relative in CLI_ONLY or relative.startswith("contactcard/cli/") or relative == "contactcard/models.py":
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not isinstance(node, ast.Call):
                continue
            func = node.func
            name = func.id if isinstance(func, ast.Name) else func.attr if isinstance(func, ast.Attribute) else ""
            if name not in names or (name == "Message" and isinstance(func, ast.Attribute) and not node.args):
                continue
            where = f"{relative}:{node.lineno}"
            first = node.args[0] if node.args else None
            if not (isinstance(first, ast.Constant) and isinstance(first.value, str)):
                problems.append(f"{where}: {name}(...) needs a literal message id")
                continue
            said.setdefault(first.value, []).append(where)
            keywords = {k.arg for k in node.keywords}
            fields = {name for name, _ in _FIELD.findall(first.value)}
            if None not in keywords and keywords != fields:
                problems.append(f"{where}: {first.value!r} has fields {sorted(fields)}, "
                                f"given {sorted(k for k in keywords if k)}")
    return said, problems


def test_every_message_an_error_can_show_has_a_japanese_translation_with_the_same_fields() -> None:
    said, problems = _said()
    hint = ("\nWrite the id as a literal with %(name)s fields and pass the values as keywords, e.g. "
            "ValidationError(\"%(what)s is required\", what=Message(\"family name\")); see models.Message")
    assert not problems, "\n".join(problems) + hint
    assert len(said) > 80, "the collector found the service's, policy's and accounts' messages"
    with (ROOT / "contactcard/locale/ja/LC_MESSAGES/messages.po").open("rb") as f:
        ja = {m.id: m.string for m in read_po(f, locale="ja") if m.id and not m.fuzzy}
    missing = sorted(f"{message!r} ({', '.join(where)})" for message, where in said.items() if not ja.get(message))
    assert not missing, ("untranslated error messages (add them to contactcard/locale/ja/LC_MESSAGES/messages.po):\n"
                         + "\n".join(missing))
    for message in said:
        fields = set(_FIELD.findall(message))
        assert set(_FIELD.findall(str(ja[message]))) == fields, f"{message!r}: the translation's fields differ"
        if fields:
            assert str(ja[message]) % {name: 1 for name, _ in fields}, message  # formats without an error


def test_a_message_renders_in_either_language_with_its_phrases_translated() -> None:
    catalogues = i18n.load_catalogues()
    err = models.ValidationError("%(what)s is longer than %(limit)d characters", what=models.Message("family name"),
                                 limit=200)
    assert str(err) == "family name is longer than 200 characters"  # the CLI's line
    assert i18n.Translator(catalogues, "en").message(err) == "family name is longer than 200 characters"
    assert i18n.Translator(catalogues, "ja").message(err) == "姓は200文字以内で入力してください"
