"""The vCard as strict parsers read it: the RFC 2426 validator ``vcard`` and Mozilla's ical.js (Thunderbird).

A matrix of employees (kana or none, every channel kind or none, plain, long and awkward text, photo or none) for
a Japanese and a Korean reader (Latin-script names, the note from the ko catalogue) is rendered once; every card
must pass the strict validator, parse in ical.js to exactly the values it was built from, and still import with
vobject. ical.js runs once for the whole matrix (one node process). It is skipped when node or ical.js is
missing, unless CONTACTCARD_REQUIRE_NODE=1 (CI), where that is a failure.
"""

from __future__ import annotations

import base64
import io
import itertools
import json
import os
import shutil
import subprocess
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import vobject
from PIL import Image
from vcard import vcard_validator

from contactcard import i18n, images, vcard
from contactcard.models import Channel, Company, Employee

from .conftest import Harness
from .test_vcard import CARD_URL, _ch, _company, _employee, _text

ROOT = Path(__file__).resolve().parent.parent
ICALJS = ROOT / "node_modules" / "ical.js" / "dist" / "ical.js"
PARSE_SCRIPT = Path(__file__).resolve().parent / "icaljs_parse.mjs"



def _photo() -> bytes:
    """A photo as the console stores one (re-encoded by images.photo_jpeg)."""
    upload = io.BytesIO()
    Image.new("RGB", (300, 200), "#336699").save(upload, "PNG")
    return images.photo_jpeg(upload.getvalue())


PHOTO = _photo()
ALL_KINDS = (
    _ch(1, "phone", "tel:+81-3-1234-5678;ext=12"),
    _ch(2, "email", "mailto:taro@example.co.jp,sales@example.co.jp?subject=x"),
    _ch(3, "web", "https://example.co.jp/a,b;c?q=東京"),
    _ch(4, "booking", "https://book.example.co.jp/taro"),
    _ch(5, "line", "https://line.me/R/ti/p/@sample"),
    _ch(6, "line_works", "https://line.worksmobile.com/x"),
    _ch(7, "teams", "https://teams.microsoft.com/l/chat/0/0?users=taro@example.co.jp"),
    _ch(8, "whatsapp", "https://wa.me/81312345678"),
    _ch(9, "custom", "https://example.co.jp/custom"),
)
COMPANY_CHANNELS = (_ch(10, "phone", "tel:03-0000-0000", None), _ch(11, "email", "mailto:info@example.co.jp", None))
TEXTS = {
    "plain": ("山田", "太郎", "営業部長", "営業部", "株式会社サンプル"),
    "long": ("長" * 40, "名" * 40, "代表取締役社長兼最高経営責任者（ＣＥＯ）兼グローバル事業開発本部長" * 2,
             "第一営業本部 法人ソリューション部 東日本エリア担当 " * 3, "株式会社" + "サンプルホールディングス" * 5),
    "awkward": ("O'Brien,Jr.;\\x", "Ann\nMarie", "Sales; Tokyo, Osaka\r\nnight: \"desk\"", "A;B,C\\D",
                "Acme, Inc.; Japan\\branch"),
}


CATALOGUES = i18n.load_catalogues()


def _note(lang: str) -> str:
    return i18n.Translator(CATALOGUES, lang).gettext("Please contact us through the company's official channels.")


@dataclass(frozen=True)
class Case:
    name: str
    employee: Employee
    company: Company
    channels: tuple[Channel, ...]
    photo: bytes | None
    lang: str

    def render(self) -> str:
        return vcard.render(self.employee, self.company, card_url=CARD_URL, channels=self.channels,
                            note=_note(self.lang), lang=self.lang, photo=self.photo)


def _cases() -> list[Case]:
    cases = []
    for kana, channels, text, photo, lang in itertools.product(
            (True, False), ("all", "none"), TEXTS, (True, False), ("ja", "ko")):
        family, given, title, department, company_name = TEXTS[text]
        employee = _employee(family_name=family, given_name=given, title=title, department=department,
                             family_kana=family[:3] + "やまだ" if kana else "", given_kana="たろう" if kana else "",
                             latin_name=f"{given} {family}".replace("名", "Na").replace("長", "Naga"),
                             photo_sha="0" * 64 if photo else None)
        cases.append(Case(f"{'kana' if kana else 'nokana'}-{channels}-{text}-{'photo' if photo else 'nophoto'}-{lang}",
                          employee, _company(*COMPANY_CHANNELS, name=company_name),
                          ALL_KINDS if channels == "all" else (), PHOTO if photo else None, lang))
    return cases


CASES = _cases()


def _clean(value: str) -> str:
    """What a card may show of an admin's text: every line break is one newline."""
    return value.replace("\r\n", "\n").replace("\r", "\n")


def _expected(case: Case) -> dict[str, list[Any]]:
    """Property -> values, from the inputs (not from vcard.py), as a faithful reader must see them."""
    e, c = case.employee, case.company
    own_phone = [ch for ch in case.channels if ch.kind == "phone"]
    own_email = [ch for ch in case.channels if ch.kind == "email"]
    contact = case.channels if own_phone or own_email else c.channels
    out: dict[str, list[Any]] = {
        "version": ["3.0"],
        "n": [[_clean(e.family_name), _clean(e.given_name), "", "", ""]],
        "fn": [_clean(e.display_name if case.lang == "ja" else e.latin_name)],
        "org": [[_clean(c.name if case.lang == "ja" else c.name_en), _clean(e.department)]],
        "title": [_clean(e.title)],
        "tel": [],
        "email": [],
        "url": [CARD_URL],
        "note": ["会社の窓口からご連絡ください" if case.lang == "ja" else "회사 공식 창구를 통해 연락해 주십시오."],
    }
    if e.given_kana:
        out["x-phonetic-first-name"] = [e.given_kana]
        out["x-phonetic-last-name"] = [_clean(e.family_kana)]
        out["sort-string"] = [_clean(e.kana_name)]
    for ch in contact:
        if ch.kind == "phone":
            out["tel"].append("+81-3-1234-5678,12" if ch.id == 1 else "03-0000-0000")
        elif ch.kind == "email":
            out["email"] += (["taro@example.co.jp", "sales@example.co.jp"] if ch.id == 2 else ["info@example.co.jp"])
    if case.channels:
        out["url"] += ["https://example.co.jp/a%2Cb%3Bc?q=%E6%9D%B1%E4%BA%AC", "https://book.example.co.jp/taro"]
        out["x-socialprofile"] = ["https://line.me/R/ti/p/@sample"]
    if case.photo:
        out["photo"] = [case.photo]
    return out


def test_matrix_covers_what_it_claims() -> None:
    texts = [c.render() for c in CASES]
    assert len(CASES) == 48
    assert any("\r\n " in t for t in texts)  # some lines fold
    assert sum("PHOTO;" in t for t in texts) == 24 and sum("X-PHONETIC" in t for t in texts) == 24
    assert any("\\;" in t and "\\," in t and "\\n" in t and "\\\\" in t for t in texts)


class _Octets(str):
    """UTF-8 octets as Latin-1 characters, split into lines at CRLF only.

    The validator's grammar is byte-based (RFC 2426's ABNF allows any octet from 0x80 up), so it must see octets,
    not code points. But it splits the card with ``str.splitlines``, which also breaks at U+0085, and 0x85 is a
    continuation byte of many CJK characters (兼 is E5 85 BC): a line break no vCard reader sees.
    """

    def splitlines(self, keepends: bool = False) -> list[str]:
        lines = self.split("\r\n")
        assert lines[-1] == ""
        return [line + "\r\n" if keepends else line for line in lines[:-1]]


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_strict_rfc2426_validator_accepts(case: Case) -> None:
    octets = _Octets(case.render().encode("utf-8").decode("latin-1"))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        vcard_validator.VCard(octets)  # raises VCardError on anything RFC 2426 does not allow
    # Its only remark may be that a folded line is shorter than 75 octets: folds fall between whole UTF-8
    # characters and escape pairs on purpose (RFC 6350 3.2 asks for it; RFC 2426 only limits the length).
    remarks = [str(w.message) for w in caught if not str(w.message).startswith("Short folded line")]
    assert remarks == []


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_vobject_still_imports(case: Case) -> None:
    cards = list(vobject.readComponents(case.render()))
    assert len(cards) == 1
    card, want = cards[0], _expected(case)
    assert card.fn.value.replace("\r\n", "\n") == want["fn"][0]
    assert [card.n.value.family, card.n.value.given] == want["n"][0][:2]
    assert [t.value for t in card.contents.get("tel", [])] == want["tel"]
    assert [u.value for u in card.contents["url"]] == want["url"]
    assert "sound" not in card.contents


def _require_node() -> Callable[[list[str]], list[dict[str, Any]]]:
    node = shutil.which("node")
    if node is None or not ICALJS.exists():
        missing = "node" if node is None else f"ical.js ({ICALJS})"
        if os.environ.get("CONTACTCARD_REQUIRE_NODE") == "1":
            pytest.fail(f"CONTACTCARD_REQUIRE_NODE=1 but {missing} is missing (npm install --no-save ical.js@2)")
        pytest.skip(f"{missing} is missing (npm install --no-save ical.js@2); CONTACTCARD_REQUIRE_NODE=1 fails")

    def parse(texts: list[str]) -> list[dict[str, Any]]:
        done = subprocess.run([node, str(PARSE_SCRIPT)], input=json.dumps(texts), capture_output=True, text=True,
                              timeout=60, check=True, cwd=ROOT)
        result: list[dict[str, Any]] = json.loads(done.stdout)
        return result

    return parse


@pytest.fixture(scope="module")
def icaljs() -> dict[str, dict[str, Any]]:
    """Every card of the matrix as ical.js parsed it (jCard, RFC 7095), by case name; one node run."""
    parsed = _require_node()([c.render() for c in CASES])
    return {case.name: result for case, result in zip(CASES, parsed, strict=True)}


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_icaljs_reads_every_value(case: Case, icaljs: dict[str, dict[str, Any]]) -> None:
    result = icaljs[case.name]
    assert "error" not in result, result
    name, properties, components = result["jcard"]
    assert (name, components) == ("vcard", [])
    got: dict[str, list[Any]] = {}
    typed = {"tel": {"type": ["WORK", "VOICE"]}, "email": {"type": ["INTERNET", "WORK"]},
             "x-socialprofile": {"type": "line"}, "photo": {"encoding": "b", "type": "JPEG"}}
    for prop, params, value_type, *values in properties:
        assert params == typed.get(prop, {}), prop  # no parameter 3.0 does not define for the property
        if prop == "photo":
            assert value_type == "binary"
            values = [base64.b64decode(values[0])]
        elif prop.startswith("x-"):
            # ical.js gives X- properties back undecoded ("unknown"): decode them as RFC 2426 text.
            assert value_type == "unknown", prop
            values = [values[0] if prop == "x-socialprofile" else _text(values[0])]
        elif prop in ("fn", "title", "sort-string"):
            # ical.js applies vCard 4's rule (RFC 6350 3.4: only compound values escape ";") to 3.0 too, so it
            # keeps the backslash RFC 2426 requires before a ";" in a single text value; iOS, Android and
            # vobject drop it. Everything else must come back exactly.
            assert value_type == "text", prop
            values = [v.replace("\\;", ";") for v in values]
        else:
            assert value_type in {"text", "uri", "phone-number"}, (prop, value_type)
        assert len(values) == 1 or prop == "note", (prop, values)
        got.setdefault(prop, []).append(values[0] if prop != "note" else ",".join(values))
    want = {k: v for k, v in _expected(case).items() if v}
    assert got == want


def test_downloaded_card_carries_the_photo_and_stays_strict(harness: Harness) -> None:
    """Through the real route: the employee's stored photo is embedded, and the file is still valid 3.0."""
    path = harness.path(harness.seed())
    plain = harness.client.get(path + "/vcard")
    assert plain.status_code == 200 and "PHOTO" not in plain.text
    harness.run(harness.service.set_photo, "taro@example.co.jp", PHOTO, actor="cli")
    response = harness.client.get(path + "/vcard")
    assert response.status_code == 200
    text = response.content.decode("utf-8")
    vcard_validator.VCard(_Octets(response.content.decode("latin-1")))
    (card,) = vobject.readComponents(text)
    assert card.photo.value == PHOTO and card.photo.params["TYPE"] == ["JPEG"]
    assert card.fn.value == "山田 太郎" and card.x_phonetic_last_name.value == "ヤマダ"
