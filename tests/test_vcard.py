"""vCards checked by vobject and by its raw content-line parser (vobject cuts text at commas)."""

from __future__ import annotations

import io
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import vobject
import vobject.base
import vobject.icalendar

from contactcard import vcard
from contactcard.models import Channel, ChannelKind, Company, Employee, EmployeeStatus

CARD_URL = "https://cards.example.co.jp/c/aB3-_xY9zQ0wE1rT2yU4"
EVIL = '<script>alert("x")</script>, 山田; 太郎\nNOTE:injected\r\nEND:VCARD\r\nBEGIN:VCARD\rFN:evil\\'


def _employee(**changes: Any) -> Employee:
    values: dict[str, Any] = {
        "id": 42,
        "email": "taro@example.co.jp",
        "family_name": "山田",
        "given_name": "太郎",
        "family_kana": "やまだ",
        "given_kana": "たろう",
        "latin_name": "Taro Yamada",
        "title": "営業部長",
        "department": "営業部",
        "photo_sha": None,
        "status": EmployeeStatus.ACTIVE,
        "successor_id": None,
        "created_at": datetime(2025, 4, 1, tzinfo=UTC),
    }
    values.update(changes)
    return Employee(**values)


def _company(*channels: Channel, name: str = "株式会社サンプル") -> Company:
    return Company(
        name=name,
        name_en="Sample Co.",
        logo_sha=None,
        brand_color="#004080",
        business_hours="平日 9:00-18:00",
        business_hours_en="Weekdays 9-18",
        timezone="Asia/Tokyo",
        default_card_days=30,
        retention_days=90,
        allow_email_domains=("example.co.jp",),
        allow_phone_prefixes=("+81",),
        allow_line_ids=(),
        allow_line_works_domains=(),
        channels=channels,
    )


def _ch(id: int, kind: str, target: str, employee_id: int | None = 42) -> Channel:
    return Channel(
        id=id,
        kind=ChannelKind(kind),
        target=target,
        label="",
        position=id,
        employee_id=employee_id,
    )


OWN = (
    _ch(1, "phone", "tel:+81-3-1234-5678"),
    _ch(
        2,
        "email",
        "mailto:taro@example.co.jp?subject=%E5%95%8F%E3%81%84%E5%90%88%E3%82%8F%E3%81%9B",
    ),
    _ch(3, "web", "https://example.co.jp/sales"),
    _ch(4, "booking", "https://book.example.co.jp/taro"),
    _ch(5, "line", "https://line.me/R/ti/p/@sample"),
    _ch(6, "teams", "https://teams.microsoft.com/l/chat/0/0?users=taro@example.co.jp"),
)


NOTE = "会社の窓口からご連絡ください"


def _render(
    employee: Employee | None = None,
    company: Company | None = None,
    channels: tuple[Channel, ...] = OWN,
    lang: str = "ja",
) -> str:
    return vcard.render(
        employee or _employee(),
        company or _company(),
        card_url=CARD_URL,
        channels=channels,
        note=NOTE,
        lang=lang,
    )


def _one_card(text: str) -> Any:
    cards = list(vobject.readComponents(text))
    assert len(cards) == 1
    return cards[0]


def _raw(text: str) -> list[tuple[str, list[list[str]], str]]:
    """(NAME, params, raw value) per logical line, as written."""
    lines = vobject.base.getLogicalLines(io.StringIO(text))
    return [vobject.base.parseLine(line)[:3] for line, _ in lines]


def _text(raw_value: str) -> str:
    """Unescape one text value with vobject's own decoder; an unescaped comma would split it."""
    parts = vobject.icalendar.stringToTextValues(raw_value, strict=True)
    assert len(parts) == 1, raw_value
    return str(parts[0])


def _values(text: str, name: str) -> list[str]:
    return [value for n, _, value in _raw(text) if n == name]


def test_fields_parse_with_vobject() -> None:
    card = _one_card(_render())
    assert card.version.value == "3.0"
    assert (card.n.value.family, card.n.value.given) == ("山田", "太郎")
    assert card.fn.value == "山田 太郎"
    assert card.org.value == ["株式会社サンプル", "営業部"]
    assert card.title.value == "営業部長"
    assert card.tel.value == "+81-3-1234-5678"
    assert card.tel.params["TYPE"] == ["WORK", "VOICE"]
    assert card.email.value == "taro@example.co.jp"
    assert card.email.params["TYPE"] == ["INTERNET", "WORK"]
    urls = [(u.value, u.params.get("TYPE")) for u in card.contents["url"]]
    assert urls == [
        (CARD_URL, None),
        ("https://example.co.jp/sales", None),
        ("https://book.example.co.jp/taro", None),
    ]
    assert card.x_socialprofile.value == "https://line.me/R/ti/p/@sample"
    assert card.x_socialprofile.params["TYPE"] == ["line"]
    assert card.note.value == "会社の窓口からご連絡ください"


def test_exact_property_list() -> None:
    names = [name for name, _, _ in _raw(_render())]
    assert names == [
        "BEGIN", "VERSION", "N", "FN", "X-PHONETIC-FIRST-NAME", "X-PHONETIC-LAST-NAME",
        "SORT-STRING", "ORG", "TITLE", "TEL", "EMAIL", "URL", "URL", "URL",
        "X-SOCIALPROFILE", "NOTE", "END",
    ]  # fmt: skip
    # Teams, the latin name and the employee's login email are not in the mapping.
    text = _render()
    assert "teams" not in text and "Taro Yamada" not in text


def test_a_reader_who_is_not_japanese_gets_the_latin_names() -> None:
    for lang in ("en", "zh-Hans", "zh-Hant", "ko"):
        card = _one_card(_render(lang=lang))
        assert card.fn.value == "Taro Yamada"  # what Android and Outlook show
        assert card.org.value == ["Sample Co.", "営業部"]
        assert (card.n.value.family, card.n.value.given) == ("山田", "太郎")  # the name itself stays
        assert card.x_phonetic_last_name.value == "やまだ"
    # Without Latin-script names given, everyone gets the Japanese ones.
    card = _one_card(_render(_employee(latin_name=""), replace(_company(), name_en=""), lang="ko"))
    assert (card.fn.value, card.org.value) == ("山田 太郎", ["株式会社サンプル", "営業部"])


def test_kana_readings() -> None:
    raw = _raw(_render())
    by_name = {name: (params, value) for name, params, value in raw}
    assert by_name["X-PHONETIC-FIRST-NAME"][1] == "たろう"
    assert by_name["X-PHONETIC-LAST-NAME"][1] == "やまだ"
    assert by_name["SORT-STRING"][1] == "やまだ たろう"
    # No vCard 2.1 SOUND;X-IRMC-N: a 3.0 reader takes it for a binary sound.
    assert "SOUND" not in by_name


def test_no_kana_no_reading_properties() -> None:
    names = {
        name for name, _, _ in _raw(_render(_employee(family_kana="", given_kana="")))
    }
    assert not names & {
        "X-PHONETIC-FIRST-NAME",
        "X-PHONETIC-LAST-NAME",
        "SORT-STRING",
        "SOUND",
    }


def test_injection_stays_inside_its_property() -> None:
    employee = _employee(
        family_name=EVIL, given_name=EVIL, title=EVIL, department=EVIL, family_kana=EVIL
    )
    text = _render(employee, _company(name=EVIL))
    card = _one_card(text)
    raw = _raw(text)
    names = [name for name, _, _ in raw]
    assert (
        names.count("BEGIN")
        == names.count("END")
        == names.count("NOTE")
        == names.count("FN")
        == 1
    )
    assert names[0] == "BEGIN" and names[-1] == "END"
    # Control characters go, every other character comes back exactly.
    cleaned = EVIL.replace("\r\n", "\n").replace("\r", "\n")
    fn_raw = _values(text, "FN")[0]
    assert (
        _text(fn_raw) == f"{cleaned} {cleaned}" == card.fn.value.replace("\r\n", "\n")
    )
    assert _text(_values(text, "TITLE")[0]) == cleaned
    assert _text(_values(text, "X-PHONETIC-LAST-NAME")[0]) == cleaned
    # Structured values keep their component count: N has 5, ORG 2.
    assert (card.n.value.family, card.n.value.given) == (cleaned, cleaned)
    assert card.org.value == [cleaned, cleaned]
    assert _values(text, "NOTE") == ["会社の窓口からご連絡ください"]


def test_control_characters_and_line_separators() -> None:
    text = _render(_employee(title="a\x00b\x07c\td\x1be\x7ff\x85g\u2028h\u2029i"))
    assert _text(_values(text, "TITLE")[0]) == "abcdefg\nh\ni"
    assert "\u2028" not in text and "\x00" not in text
    # A lone surrogate (possible from JSON) must not make the card unencodable.
    text = _render(_employee(title="a\ud800b"))
    assert _values(text.encode("utf-8").decode("utf-8"), "TITLE") == ["a?b"]


def test_crlf_and_75_octet_lines() -> None:
    long = "東京都千代田区丸の内一丁目、第一営業本部; 法人ソリューション部,\n" * 5
    text = _render(_employee(title=long, department=long, family_name="長" * 60))
    assert text.endswith("END:VCARD\r\n")
    physical = text.split("\r\n")
    assert physical[-1] == ""
    for line in physical[:-1]:
        assert "\r" not in line and "\n" not in line
        assert len(line.encode("utf-8")) <= 75, line
        # A fold never separates a backslash from the character it escapes.
        body = line.rstrip("\\")
        assert (len(line) - len(body)) % 2 == 0, line
    assert any(line.startswith(" ") for line in physical)
    _one_card(text)


def test_fold_keeps_escape_pairs_together() -> None:
    # "TITLE:" + 68 letters is 74 octets, so the escaped comma straddles the 75-octet limit.
    title = "a" * 68 + ",b"
    text = _render(_employee(title=title))
    start = text.index("TITLE:")
    first, second = text[start:].split("\r\n")[:2]
    assert first == "TITLE:" + "a" * 68
    assert second == " \\,b"
    assert _one_card(text).title.value == title


def test_fold_counts_octets_not_characters() -> None:
    exactly_75 = _render(_employee(title="a" * 69))
    assert "TITLE:" + "a" * 69 + "\r\nTEL" in exactly_75  # 75 octets: no fold
    # 74 + 3 octets: 長 moves down whole.
    text = _render(_employee(title="a" * 68 + "長"))
    assert "TITLE:" + "a" * 68 + "\r\n 長\r\n" in text


def test_long_japanese_title_folds_and_unfolds() -> None:
    title = "代表取締役社長兼最高経営責任者（ＣＥＯ）兼グローバル事業開発本部長兼アジア太平洋地域統括責任者"
    text = _render(_employee(title=title))
    start = text.index("TITLE:")
    assert text[start:].split("\r\n")[1].startswith(" ")  # it really folded
    assert _one_card(text).title.value == title
    assert _text(_values(text, "TITLE")[0]) == title


def test_no_uri_prefixes_leak() -> None:
    text = _render()
    assert "mailto:" not in text.lower() and "tel:" not in text.lower()
    assert "subject" not in text  # the mailto query is dropped


def test_phone_extension_and_odd_targets() -> None:
    channels = (
        _ch(1, "phone", "TEL:+81-3-1234-5678;ext=123"),
        _ch(2, "phone", "tel:+81%2090%201111%202222"),
        _ch(3, "email", "MAILTO:a%40example.co.jp,b@example.co.jp?cc=c@example.co.jp"),
        _ch(4, "booking", "javascript:alert(1)"),
    )
    text = _render(channels=channels)
    assert _values(text, "TEL") == ["+81-3-1234-5678\\,123", "+81 90 1111 2222"]  # ",": a pause, escaped
    assert [_text(v) for v in _values(text, "EMAIL")] == [
        "a@example.co.jp",
        "b@example.co.jp",
    ]
    assert _values(text, "URL") == [CARD_URL]  # no javascript: URL


def test_falls_back_to_company_channels() -> None:
    company = _company(
        _ch(10, "phone", "tel:+81-3-0000-0000", None),
        _ch(11, "email", "mailto:info@example.co.jp", None),
        _ch(12, "web", "https://example.co.jp/", None),
    )
    only_web = (_ch(3, "web", "https://example.co.jp/sales"),)
    text = _render(company=company, channels=only_web)
    assert _values(text, "TEL") == ["+81-3-0000-0000"]
    assert _values(text, "EMAIL") == ["info@example.co.jp"]
    # Web channels are not a fallback.
    assert _values(text, "URL") == [CARD_URL, "https://example.co.jp/sales"]
    # An employee with their own phone gets no company ones.
    text = _render(company=company, channels=(_ch(1, "phone", "tel:+81-3-1234-5678"),))
    assert _values(text, "TEL") == ["+81-3-1234-5678"]
    assert _values(text, "EMAIL") == []


def test_optional_fields_and_duplicates() -> None:
    channels = (
        _ch(1, "phone", "tel:+81-3-1234-5678"),
        _ch(2, "phone", "tel:+81-3-1234-5678"),
    )
    text = _render(
        _employee(title="", department="", given_name="", given_kana=""),
        channels=channels,
    )
    card = _one_card(text)
    names = [name for name, _, _ in _raw(text)]
    assert "TITLE" not in names
    assert card.org.value == ["株式会社サンプル"]
    assert _values(text, "N") == ["山田;;;;"]
    assert _values(text, "TEL") == ["+81-3-1234-5678"]


def test_commas_in_url_survive() -> None:
    # A URI value is not text: percent-encoded rather than backslash-escaped, so every parser reads one URI.
    text = _render(channels=(_ch(3, "web", "https://example.co.jp/a,b;c?q=東京%20x"),))
    assert _values(text, "URL")[1] == "https://example.co.jp/a%2Cb%3Bc?q=%E6%9D%B1%E4%BA%AC%20x"
    assert [u.value for u in _one_card(text).contents["url"]][1] == _values(text, "URL")[1]


def test_filename_is_ascii() -> None:
    name = vcard.filename(_employee(id=7, family_name="山田"))
    assert name == "contact-7.vcf"
    assert name.isascii()
