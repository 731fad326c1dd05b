"""Brand colours that stay readable: buttons get a text colour with at least 4.5:1 contrast (WCAG AA)."""

from __future__ import annotations

import re

from .models import ValidationError

_HEX = re.compile(r"#[0-9a-fA-F]{6}")
AA = 4.5


def check_color(value: str) -> str:
    if not _HEX.fullmatch(value.strip()):
        raise ValidationError("brand colour must look like #0b5cad, got %(value)r", value=value)
    return value.strip().lower()


def _luminance(hex_color: str) -> float:
    def channel(c: int) -> float:
        s = c / 255
        return s / 12.92 if s <= 0.03928 else float(((s + 0.055) / 1.055) ** 2.4)

    r, g, b = (int(hex_color[i:i + 2], 16) for i in (1, 3, 5))
    return 0.2126 * channel(r) + 0.7152 * channel(g) + 0.0722 * channel(b)


def contrast(a: str, b: str) -> float:
    la, lb = sorted((_luminance(a), _luminance(b)), reverse=True)
    return (la + 0.05) / (lb + 0.05)


def button_colors(brand: str) -> tuple[str, str]:
    """(background, text) for a button in the brand colour, darkened until white text passes AA.

    A light brand colour (LINE green, say) keeps its hue; only its lightness gives way.
    """
    bg = check_color(brand)
    if contrast(bg, "#000000") >= AA and contrast(bg, "#000000") > contrast(bg, "#ffffff") * 2:
        return bg, "#000000"
    r, g, b = (int(bg[i:i + 2], 16) for i in (1, 3, 5))
    while contrast(bg, "#ffffff") < AA:
        r, g, b = int(r * 0.92), int(g * 0.92), int(b * 0.92)
        bg = f"#{r:02x}{g:02x}{b:02x}"
    return bg, "#ffffff"
