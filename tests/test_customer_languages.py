"""The customer's pages in Simplified and Traditional Chinese and Korean, as a visitor from abroad gets them.

Accept-Language picks the language (the visible switch, then its cookie, win over it); the page says which in
``<html lang>`` and Content-Language; a reader who is not Japanese sees the Latin-script names when given; the
404/410 pages, the error page and the vCard's note follow; the console stays in Japanese or English.
"""

from __future__ import annotations

import re
from dataclasses import replace

import pytest
import vobject

from contactcard.models import EmployeeProfile

from .conftest import FakeClock, Harness

READERS = [  # (Accept-Language, lang attribute, "Save contact", the expired link's heading)
    ("zh-CN,zh;q=0.9,en;q=0.8", "zh-Hans", "保存联系人", "此联系链接已过期"),
    ("zh-SG", "zh-Hans", "保存联系人", "此联系链接已过期"),
    ("zh", "zh-Hans", "保存联系人", "此联系链接已过期"),
    ("zh-TW,zh;q=0.9", "zh-Hant", "儲存聯絡人", "此聯絡連結已過期"),
    ("zh-HK", "zh-Hant", "儲存聯絡人", "此聯絡連結已過期"),
    ("zh-MO", "zh-Hant", "儲存聯絡人", "此聯絡連結已過期"),
    ("ko-KR,ko;q=0.9,en-US;q=0.8", "ko", "연락처 저장", "이 연락처 링크는 유효 기간이 지났습니다"),
    ("en-GB", "en", "Save contact", "This contact link has expired"),
    ("ja-JP", "ja", "連絡先を保存", "この連絡先リンクは有効期限が切れています"),
]


def _seed_with_latin_names(harness: Harness) -> str:
    issued = harness.seed()  # the company's Latin-script name is "Sample K.K."
    taro = harness.run(harness.service.find_employee, "taro@example.co.jp")
    profile: EmployeeProfile = replace(taro.profile, latin_name="Taro Yamada")
    harness.run(harness.service.edit_employee, taro.id, profile, actor="cli")
    return harness.path(issued)


def _switch(html: str) -> list[tuple[str, str]]:
    """The language switch: (hreflang or "current", label) per entry, in order."""
    nav = html.split('<nav class="lang"', 1)[1].split("</nav>", 1)[0]
    entries = re.findall(r'<(?:a href="\?lang=[^"]+" lang="[^"]+" hreflang="([^"]+)"|span aria-current="true" '
                         r'lang="[^"]+")>([^<]+)<', nav)
    return [(hreflang or "current", label) for hreflang, label in entries]


@pytest.mark.parametrize(("header", "lang", "save", "expired"), READERS)
def test_each_reader_gets_their_language_and_names_they_can_read(harness: Harness, header: str, lang: str,
                                                                 save: str, expired: str) -> None:
    path = _seed_with_latin_names(harness)
    r = harness.client.get(path, headers={"accept-language": header})
    assert r.status_code == 200
    assert f'<html lang="{lang}">' in r.text and r.headers["content-language"] == lang
    assert save in r.text
    og_locale = {"ja": "ja_JP", "en": "en_US", "zh-Hans": "zh_CN", "zh-Hant": "zh_TW", "ko": "ko_KR"}[lang]
    assert f'<meta property="og:locale" content="{og_locale}">' in r.text
    if lang == "ja":
        assert "株式会社サンプル" in r.text and "ヤマダ タロウ" in r.text and "Taro Yamada" not in r.text
    else:  # the Latin-script names, in the title, the link preview and under the name; the Japanese name stays
        assert "<title>Taro Yamada | Sample K.K.</title>" in r.text
        assert '<meta property="og:title" content="Taro Yamada | Sample K.K.">' in r.text
        assert "山田 太郎" in r.text and "Taro Yamada</span>" in r.text and "株式会社サンプル" not in r.text
        assert "Weekdays 9:00–18:00" in r.text
    # The switch lists all five languages in their own names, the current one marked, the others linked.
    names = {"ja": "日本語", "en": "English", "zh-Hans": "简体中文", "zh-Hant": "繁體中文", "ko": "한국어"}
    assert _switch(r.text) == [("current" if code == lang else code, name) for code, name in names.items()]


@pytest.mark.parametrize(("header", "lang", "save", "expired"), [READERS[i] for i in (0, 3, 6, 7, 8)])
def test_the_410_and_404_pages_and_the_vcard_follow_the_reader(harness: Harness, clock: FakeClock, header: str,
                                                               lang: str, save: str, expired: str) -> None:
    path = _seed_with_latin_names(harness)
    card = harness.client.get(path + "/vcard", headers={"accept-language": header})
    assert card.headers["content-language"] == lang
    (parsed,) = vobject.readComponents(card.text)
    assert parsed.fn.value == ("山田 太郎" if lang == "ja" else "Taro Yamada")
    notes = {"ja": "会社の窓口からご連絡ください", "en": "Please contact us through the company's official channels.",
             "zh-Hans": "请通过公司的官方渠道与我们联系。", "zh-Hant": "請透過公司的官方管道與我們聯繫。",
             "ko": "회사 공식 창구를 통해 연락해 주십시오."}
    assert parsed.note.value == notes[lang]
    unknown = harness.client.get("/c/" + "A" * 20, headers={"accept-language": header})
    assert unknown.status_code == 404 and f'<html lang="{lang}">' in unknown.text
    assert _switch(unknown.text)[0][1] == "日本語"
    clock.advance(days=400)
    gone = harness.client.get(path, headers={"accept-language": header})
    assert gone.status_code == 410 and expired in gone.text and f'<html lang="{lang}">' in gone.text
    assert ("Sample K.K." in gone.text) == (lang != "ja")
    error = harness.client.get("/no-such-page", headers={"accept-language": header})
    assert error.status_code == 404 and error.headers["content-language"] == lang


def test_the_switch_wins_and_is_remembered(harness: Harness) -> None:
    path = _seed_with_latin_names(harness)
    r = harness.client.get(path + "?lang=zh-Hant", headers={"accept-language": "ko"})
    assert '<html lang="zh-Hant">' in r.text and r.cookies.get("lang") == "zh-Hant"
    r = harness.client.get(path, headers={"accept-language": "ko"})
    assert '<html lang="zh-Hant">' in r.text, "the cookie wins over Accept-Language on later visits"
    r = harness.client.get(path + "?lang=ko", headers={"accept-language": "ko"})
    assert '<html lang="ko">' in r.text and "연락처 저장" in r.text


def test_the_console_stays_in_japanese_or_english(harness: Harness) -> None:
    r = harness.client.get("/login", headers={"accept-language": "zh-CN,zh;q=0.9,en;q=0.8"})
    assert '<html lang="en">' in r.text and r.headers["content-language"] == "en"
    r = harness.client.get("/login?lang=ko", headers={"accept-language": "ko"})
    assert '<html lang="ja">' in r.text and "lang" not in r.cookies, "no Korean console, and no cookie saying so"
    # A reader who chose Korean on a card still gets a console they can use.
    harness.client.cookies.set("lang", "ko")
    assert '<html lang="ja">' in harness.client.get("/login").text
