"""Link previews: what LINE, Slack, Teams, Facebook, X and Discord show when a card link is pasted.

The card page carries Open Graph tags, a description and an X card naming the person and the company; the
image is the company's (generated, 1200 x 630, the logo on it when there is one), never the employee's photo;
ended and unknown links preview the company only. Every preview fetcher is recorded as a bot, never a person.
"""

from __future__ import annotations

import io
from dataclasses import replace
from html.parser import HTMLParser
from typing import cast

import pytest
from PIL import Image

from contactcard import images
from contactcard.models import EmployeeProfile, Outcome

from .conftest import BASE_URL, FakeClock, Harness

# Each fetcher as it announces itself (their documentation, or what they sent to a link we watched).
FETCHERS = {
    "LINE": "facebookexternalhit/1.1;line-poker/1.0",
    "Slackbot": "Slackbot-LinkExpanding 1.0 (+https://api.slack.com/robots)",
    "Slack image proxy": "Slack-ImgProxy (+https://api.slack.com/robots)",
    "Teams": ("Mozilla/5.0 (Windows NT 6.1; WOW64) SkypeUriPreview Preview/0.5 "
              "skype-url-preview@microsoft.com"),
    "Microsoft preview (Teams, Outlook)": (
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126 "
        "Safari/537.36 MicrosoftPreview/2.0 +https://aka.ms/MicrosoftPreview"),
    "facebookexternalhit": "facebookexternalhit/1.1 (+http://www.facebook.com/externalhit_uatext.php)",
    "Twitterbot": "Twitterbot/1.0",
    "Discordbot": "Mozilla/5.0 (compatible; Discordbot/2.0; +https://discordapp.com)",
    "WhatsApp": "WhatsApp/2.23.20.0 A",
    "Telegram": "TelegramBot (like TwitterBot)",
    "LinkedIn": "LinkedInBot/1.0 (compatible; Mozilla/5.0; Apache-HttpClient +http://www.linkedin.com)",
    "iMessage": "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_11_1) AppleWebKit/601.2.4 (KHTML, like Gecko) "
                "Version/9.0.1 Safari/601.2.4 facebookexternalhit/1.1 Facebot Twitterbot/1.0",
}


class _Head(HTMLParser):
    """The <head>'s meta tags, by property or name (a repeated one is an error: a preview reads one)."""

    def __init__(self) -> None:
        super().__init__()
        self.meta: dict[str, str] = {}
        self.in_head = True
        self.head_text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "body":
            self.in_head = False
        if tag == "meta" and self.in_head:
            a = dict(attrs)
            key = a.get("property") or a.get("name")
            if key:
                assert key not in self.meta, f"{key} given twice"
                self.meta[key] = a.get("content") or ""

    def handle_data(self, data: str) -> None:
        if self.in_head:
            self.head_text.append(data)


def head(html: str) -> _Head:
    parser = _Head()
    parser.feed(html)
    return parser


PREVIEW_TAGS = {"description", "og:type", "og:title", "og:description", "og:url", "og:image", "og:image:width",
                "og:image:height", "og:image:alt", "og:site_name", "twitter:card"}


def test_a_live_card_previews_the_person_and_the_company_in_both_languages(harness: Harness) -> None:
    issued = harness.seed()
    cases = (("ja", "株式会社サンプル", "の連絡先です"), ("en", "Sample K.K.", "official channels"))
    for lang, company, sentence in cases:
        meta = head(harness.client.get(harness.path(issued), headers={"accept-language": lang}).text).meta
        assert set(meta) >= PREVIEW_TAGS, PREVIEW_TAGS - set(meta)
        assert meta["og:title"] == f"山田 太郎 | {company}"
        assert meta["og:description"] == meta["description"]
        assert "山田 太郎" in meta["description"] and company in meta["description"] and sentence in meta["description"]
        assert "営業部" in meta["description"] and "課長" in meta["description"]
        assert meta["og:url"] == issued.url, "the link itself, absolute"
        assert meta["og:image"].startswith(BASE_URL + "/og/") and meta["og:image"].endswith(".png")
        assert (meta["og:image:width"], meta["og:image:height"]) == ("1200", "630")
        assert meta["twitter:card"] == "summary_large_image" and meta["og:type"] == "profile"
        assert meta["og:site_name"] == company


def test_the_preview_image_is_the_companys_1200x630_png_with_its_japanese_name_drawn(harness: Harness) -> None:
    issued = harness.seed()
    events_before = len(harness.events())
    url = head(harness.client.get(harness.path(issued)).text).meta["og:image"]
    r = harness.client.get(url.removeprefix(BASE_URL))
    assert r.status_code == 200 and r.headers["content-type"] == "image/png"
    assert "immutable" in r.headers["cache-control"], "a new name, colour or logo gives a new address"
    image = Image.open(io.BytesIO(r.content))
    assert (image.format, image.size) == ("PNG", (1200, 630))
    assert len(harness.events()) == events_before + 1, "fetching the image is not a hit on a link"

    # Another Japanese name of the same length draws other pixels: real glyphs, not the same missing-glyph boxes.
    company = harness.run(harness.service.company)
    harness.run(harness.service.save_company, replace(company, name="株式会社テスト商"), actor="cli")
    renamed = head(harness.client.get(harness.path(issued)).text).meta["og:image"]
    assert renamed != url
    assert harness.client.get(url.removeprefix(BASE_URL)).status_code == 404, "an old address is not redrawn"
    other = harness.client.get(renamed.removeprefix(BASE_URL))
    assert other.status_code == 200 and other.content != r.content
    assert Image.open(io.BytesIO(other.content)).getbbox() is not None


def test_the_company_logo_is_drawn_on_the_preview_image_and_the_employee_photo_never_is(harness: Harness) -> None:
    issued = harness.seed()
    red_logo = io.BytesIO()
    Image.new("RGB", (400, 100), (220, 0, 0)).save(red_logo, format="PNG")
    harness.run(harness.service.set_logo, images.logo_png(red_logo.getvalue()), actor="cli")
    blue_photo = io.BytesIO()
    Image.new("RGB", (300, 300), (0, 0, 230)).save(blue_photo, format="JPEG")
    taro = harness.run(harness.service.set_photo, "taro@example.co.jp", images.photo_jpeg(blue_photo.getvalue()),
                       actor="cli")
    page = harness.client.get(harness.path(issued)).text
    assert taro.photo_sha and taro.photo_sha in page, "the page itself shows the photo"
    meta = head(page).meta
    assert taro.photo_sha not in "".join(meta.values()), "no preview tag points at the photo"
    png = Image.open(io.BytesIO(harness.client.get(meta["og:image"].removeprefix(BASE_URL)).content)).convert("RGB")
    counted = cast(list[tuple[int, tuple[int, int, int]]], png.getcolors(maxcolors=1_000_000))
    colours = {colour for _, colour in counted}
    assert any(r > 200 and g < 30 and b < 30 for r, g, b in colours), "the red logo is on the image"
    assert not any(b > 200 and r < 30 and g < 30 for r, g, b in colours), "the blue photo is not"


def test_ended_and_unknown_links_preview_the_company_and_never_the_person(harness: Harness, clock: FakeClock) -> None:
    svc = harness.service
    issued = harness.seed()
    person = ("山田", "太郎", "ヤマダ", "営業部", "課長")

    def preview_of(path: str, status: int, description: str) -> str:
        r = harness.client.get(path, headers={"accept-language": "ja"})
        assert r.status_code == status
        meta = head(r.text).meta
        assert set(meta) >= PREVIEW_TAGS, PREVIEW_TAGS - set(meta)
        assert meta["og:title"] == "株式会社サンプル" and description in meta["og:description"]
        assert meta["og:image"].startswith(BASE_URL + "/og/")
        assert not any(word in value for word in person for value in meta.values()), meta
        return r.text

    page = preview_of("/c/" + "A" * 20, 404, "見つかりませんでした")
    assert not any(word in page for word in person)
    harness.run(svc.revoke_card, "taro@example.co.jp", actor="cli")
    page = preview_of(harness.path(issued), 410, "現在使われていません")
    assert not any(word in page for word in person)
    expiring = harness.run(svc.issue_card, "taro@example.co.jp", days=1, actor="cli")
    clock.advance(days=2)
    page = preview_of(harness.path(expiring), 410, "有効期限が切れています")
    assert not any(word in page for word in person)
    harness.run(svc.add_employee, EmployeeProfile(email="hanako@example.co.jp", family_name="佐藤", given_name="花子"),
                actor="cli")
    harness.run(svc.issue_card, "hanako@example.co.jp", actor="cli")
    harness.run(svc.depart, "taro@example.co.jp", "hanako@example.co.jp", actor="cli")
    page = preview_of(harness.path(expiring), 410, "担当者が変わりました")
    assert "佐藤 花子" in page and "佐藤" not in "".join(head(page).meta.values()), \
        "the successor is introduced on the page, not in a preview anyone may see"


@pytest.mark.parametrize("fetcher", sorted(FETCHERS))
def test_a_preview_fetcher_is_recorded_as_a_bot_and_never_counted_as_a_person(harness: Harness, fetcher: str) -> None:
    issued = harness.seed()
    r = harness.client.get(harness.path(issued), headers={"user-agent": FETCHERS[fetcher]})
    assert r.status_code == 200 and "og:image" in head(r.text).meta, "fetchers get the page with its preview"
    [event] = harness.events()
    assert (event.outcome, event.is_bot, event.device) == (Outcome.VIEW, True, "bot")
    day = harness.run(harness.service.stats, days=1).days[-1]
    assert (day.scans, day.visitors, day.bots) == (0, 0, 1)



def test_the_employee_photo_is_previewed_only_when_the_company_allows_it(harness: Harness) -> None:
    issued = harness.seed()
    blue_photo = io.BytesIO()
    Image.new("RGB", (300, 300), (0, 0, 230)).save(blue_photo, format="JPEG")
    taro = harness.run(harness.service.set_photo, "taro@example.co.jp", images.photo_jpeg(blue_photo.getvalue()),
                       actor="cli")
    assert taro.photo_sha is not None
    assert "/og/" in head(harness.client.get(harness.path(issued)).text).meta["og:image"], "off by default"
    company = harness.run(harness.service.company)
    harness.run(harness.service.save_company, replace(company, preview_photo=True), actor="cli")
    meta = head(harness.client.get(harness.path(issued)).text).meta
    assert meta["og:image"] == f"{BASE_URL}/media/{taro.photo_sha}"
    assert (meta["og:image:type"], meta["og:image:width"], meta["og:image:height"]) == ("image/jpeg", "256", "256")
    assert meta["twitter:card"] == "summary"
    photo = harness.client.get(meta["og:image"].removeprefix(BASE_URL))
    assert photo.status_code == 200 and Image.open(io.BytesIO(photo.content)).size == (256, 256)
    harness.run(harness.service.revoke_card, "taro@example.co.jp", actor="cli")
    gone = head(harness.client.get(harness.path(issued)).text).meta
    assert "/og/" in gone["og:image"] and taro.photo_sha not in "".join(gone.values()), "an ended link: the company"
