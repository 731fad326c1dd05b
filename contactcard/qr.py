"""QR codes for card links, as PNG (printing, download) and SVG (pages, any size).

Pure functions: a URL in, image bytes out. Level M restores up to ~15% damage, enough for a
card that lives in a wallet, while keeping a typical card link at a small version (big modules
that phone cameras read from far away).
"""

from __future__ import annotations

import functools
import io

import qrcode
import qrcode.constants
import qrcode.exceptions
from qrcode.image.pil import PilImage
from qrcode.image.svg import SvgPathFillImage

from contactcard.models import ValidationError

MAX_URL_CHARS = 2000
# 4 modules is the quiet zone ISO/IEC 18004 requires; scanners miss codes with less.
BORDER = 4
# Past this a version-40 code is a ~10000 px square: refuse rather than allocate it.
MAX_BOX_SIZE = 50
# A link's image is drawn once, then reused: drawing takes 10-12 ms of pure Python on the event loop, which every
# scan waiting meanwhile would feel. typed=True: True must not be taken for a cached box size of 1 (see _build).
_remember = functools.lru_cache(maxsize=256, typed=True)


def _build(url: str, box_size: int = 10) -> qrcode.QRCode[PilImage]:
    if not isinstance(url, str) or not url.strip():
        raise ValidationError("The link for the QR code is empty.")
    if len(url) > MAX_URL_CHARS:
        raise ValidationError(
            "The link for the QR code is longer than %(most)d characters.", most=MAX_URL_CHARS
        )
    # bool is an int subclass; True would silently mean one pixel per module.
    if (
        isinstance(box_size, bool)
        or not isinstance(box_size, int)
        or not 1 <= box_size <= MAX_BOX_SIZE
    ):
        raise ValidationError(
            "The QR module size must be a whole number from 1 to %(most)d.", most=MAX_BOX_SIZE
        )
    code: qrcode.QRCode[PilImage] = qrcode.QRCode(
        version=None,
        error_correction=qrcode.constants.ERROR_CORRECT_M,
        box_size=box_size,
        border=BORDER,
        image_factory=PilImage,
    )
    code.add_data(url)
    try:
        code.make(fit=True)  # smallest version that holds the data
    except (qrcode.exceptions.DataOverflowError, ValueError) as err:
        # 2000 ASCII characters always fit, 2000 multibyte ones may not. qrcode 8.2 reports
        # overflow as ValueError("Invalid version (was 41 ...)"), not DataOverflowError.
        raise ValidationError("The link is too long for a QR code.") from err
    return code


def version_for(url: str) -> int:
    """The QR version (1-40) that ``url`` takes at error-correction level M."""
    version = _build(url).version
    assert version is not None  # make(fit=True) always sets it
    return version


@_remember
def png_bytes(url: str, *, box_size: int = 10) -> bytes:
    """A 1-bit black-on-white PNG of ``url``, ``box_size`` whole pixels per module."""
    code = _build(url, box_size)
    # black on white makes qrcode draw in PIL mode "1", so the PNG is 1 bit per pixel.
    image = code.make_image(fill_color="black", back_color="white")
    out = io.BytesIO()
    image.save(out, format="PNG", optimize=True)
    return out.getvalue()


@_remember
def svg_bytes(url: str) -> bytes:
    """A standalone SVG of ``url``: one path over a white rect, with a viewBox so it scales."""
    code = _build(url)
    # The white rect matters: on a transparent background decoders and dark-mode pages fail.
    image = code.make_image(image_factory=SvgPathFillImage)
    out = io.BytesIO()
    image.save(out)  # writes the XML declaration and UTF-8
    return out.getvalue()
