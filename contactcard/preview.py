"""Link previews: the image chat apps show when a card link is pasted (Open Graph ``og:image``). Pure.

The image is the company's, never the employee's: 1200 x 630 (the size LINE, Slack, Teams, Facebook and X
crop to), the brand colour around a white card with the logo (if any) and the company's names, drawn with the
system's CJK fonts (Debian's fonts-noto-cjk). It is the same for every card of the company, so its address
carries no token (fetching it is not a hit on a link) and the preview of a revoked link shows nothing of the
person who had it. The address is keyed by what the image is drawn from, so a change of name, colour or logo
gives a new address and the old one can be cached for good.
"""

from __future__ import annotations

import hashlib
import io
from functools import lru_cache
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

from .brand import button_colors
from .models import Company

WIDTH, HEIGHT = 1200, 630
MARGIN = 64
_VERSION = "1"  # bump when the drawing changes: every cached image address changes with it
_FONT_DIRS = (Path("/usr/share/fonts/opentype/noto"), Path("/usr/share/fonts/truetype/noto"),
              Path("/usr/share/fonts/noto-cjk"), Path("/usr/share/fonts/google-noto-cjk"))
Font = ImageFont.FreeTypeFont | ImageFont.ImageFont


def image_key(company: Company) -> str:
    """The image's address key: a digest of everything it is drawn from."""
    return _image_key(company.name, company.name_en, company.brand_color, company.logo_sha or "")


@lru_cache(maxsize=64)  # every scan's page names the image: its colours and digest once per company profile
def _image_key(name: str, name_en: str, brand_color: str, logo_sha: str) -> str:
    brand_bg, _ = button_colors(brand_color)
    parts = (_VERSION, name, name_en, brand_bg, logo_sha)
    return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()[:24]


def image_path(company: Company) -> str:
    return f"/og/{image_key(company)}.png"


@lru_cache(maxsize=4)
def card_png(name: str, name_en: str, brand_color: str, logo: bytes | None) -> bytes:
    """The preview image as PNG. ``logo`` is the stored logo (a PNG at most 400 x 100, see images.logo_png)."""
    brand_bg, _ = button_colors(brand_color)
    image = Image.new("RGB", (WIDTH, HEIGHT), brand_bg)
    draw = ImageDraw.Draw(image)
    box = (MARGIN, MARGIN, WIDTH - MARGIN, HEIGHT - MARGIN)
    draw.rounded_rectangle(box, radius=36, fill="white")
    inner = WIDTH - 4 * MARGIN
    lines: list[tuple[Font, str, str]] = [(_fitted(name, inner, 96, bold=True), name, "#111827")]
    if name_en and name_en != name:
        lines.append((_fitted(name_en, inner, 48, bold=False), name_en, "#4b5563"))
    picture = _logo(logo, inner, 200) if logo else None
    gap = 28
    heights = [_height(draw, font, text) for font, text, _ in lines]
    total = sum(heights) + gap * (len(lines) - 1) + (picture.height + 2 * gap if picture else 0)
    y = (HEIGHT - total) // 2
    if picture is not None:
        image.paste(picture, ((WIDTH - picture.width) // 2, y), picture)
        y += picture.height + 2 * gap
    for (font, text, colour), height in zip(lines, heights, strict=True):
        left, top, right, _ = draw.textbbox((0, 0), text, font=font)
        draw.text(((WIDTH - (right - left)) // 2 - left, y - top), text, font=font, fill=colour)
        y += height + gap
    out = io.BytesIO()
    image.save(out, format="PNG", optimize=True)
    return out.getvalue()


def _logo(data: bytes, width: int, height: int) -> Image.Image | None:
    try:
        with Image.open(io.BytesIO(data)) as opened:
            logo = opened.convert("RGBA")
    except (OSError, ValueError):
        return None  # a stored logo is always readable (images.logo_png); never fail the preview over it
    scale = min(width / logo.width, height / logo.height)
    return logo.resize((max(1, round(logo.width * scale)), max(1, round(logo.height * scale))),
                       Image.Resampling.LANCZOS)


def _height(draw: ImageDraw.ImageDraw, font: Font, text: str) -> int:
    _, top, _, bottom = draw.textbbox((0, 0), text, font=font)
    return int(bottom - top)


def _fitted(text: str, width: int, size: int, *, bold: bool) -> Font:
    """The largest font up to ``size`` in which ``text`` fits ``width`` (down to a third of it)."""
    font = _font(size, bold)
    while size > 24 and font.getlength(text) > width:
        size -= 4
        font = _font(size, bold)
    return font


@lru_cache(maxsize=64)
def _font(size: int, bold: bool) -> Font:
    path = cjk_font(bold)
    if path is None:
        return ImageFont.load_default(size)  # Latin only: Japanese would show as boxes
    return ImageFont.truetype(str(path), size, index=0)  # index 0 of Noto Sans CJK: the Japanese glyph forms


@lru_cache(maxsize=2)
def cjk_font(bold: bool) -> Path | None:
    """Noto Sans CJK from the system (Debian: fonts-noto-cjk), or None."""
    names = ("NotoSansCJK-Bold.ttc", "NotoSansCJKjp-Bold.otf") if bold else (
        "NotoSansCJK-Regular.ttc", "NotoSansCJKjp-Regular.otf")
    for directory in _FONT_DIRS:
        for name in names:
            if (directory / name).is_file():
                return directory / name
    return None if bold is False else cjk_font(False)
