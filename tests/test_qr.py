"""QR images checked by an independent decoder (zxing-cpp), not by reading qrcode's own state."""

from __future__ import annotations

import io
import xml.etree.ElementTree as ET

import pytest
import zxingcpp
from PIL import Image

from contactcard import qr
from contactcard.models import ValidationError

# The service's link shape: the card host, /c/, and a 20-character url-safe token.
CARD_URL = "https://cards.example.co.jp/c/aB3-_xY9zQ0wE1rT2yU4"
LONG_URL = (
    "https://cards.example.co.jp/c/abc/"
    + "/".join(f"segment{i:03d}" for i in range(40))
    + "?a=1&b=2"
)
SVG = "{http://www.w3.org/2000/svg}"


def _decode(image: Image.Image) -> zxingcpp.Barcode:
    found = zxingcpp.read_barcodes(image)
    assert len(found) == 1
    return found[0]


def _png(data: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(data))
    assert image.format == "PNG"
    return image


@pytest.mark.parametrize("url", [CARD_URL, "https://example.com/", LONG_URL])
def test_png_decodes_to_the_exact_url(url: str) -> None:
    code = _decode(_png(qr.png_bytes(url)))
    assert code.text == url
    assert code.format == zxingcpp.BarcodeFormat.QRCode
    assert code.ec_level == "M"
    # zxing reads the version from the symbol itself: an oracle for version_for.
    extra = code.extra
    assert isinstance(extra, dict)
    assert int(extra["Version"]) == qr.version_for(url)


@pytest.mark.parametrize("box_size", [1, 3, 10])
def test_png_is_whole_modules_with_a_four_module_quiet_zone(box_size: int) -> None:
    image = _png(qr.png_bytes(CARD_URL, box_size=box_size))
    modules = 17 + 4 * qr.version_for(CARD_URL)  # ISO/IEC 18004 side length
    assert image.mode == "1"  # 1-bit black on white
    assert image.width == image.height == (modules + 8) * box_size
    assert image.width % box_size == 0
    code = _decode(image)
    assert code.text == CARD_URL
    # The symbol's top-left corner sits exactly 4 modules in from the image edge.
    assert (code.position.top_left.x, code.position.top_left.y) == (
        4 * box_size,
        4 * box_size,
    )
    # The quiet zone is plain white (1-bit "1" mode: white is 255).
    band = image.crop((0, 0, image.width, 4 * box_size))
    assert band.getextrema() == (255, 255)


def test_typical_card_url_fits_version_4() -> None:
    assert len(CARD_URL) == 50
    assert qr.version_for(CARD_URL) <= 4


def test_long_path_takes_a_bigger_version() -> None:
    assert qr.version_for(LONG_URL) > qr.version_for(CARD_URL)


def test_svg_is_standalone_scalable_and_decodes() -> None:
    import cairosvg  # test dependency: pip install cairosvg (needs libcairo2)

    data = qr.svg_bytes(CARD_URL)
    assert data.startswith(b"<?xml")
    root = ET.fromstring(data)
    assert root.tag == f"{SVG}svg"
    modules = 17 + 4 * qr.version_for(CARD_URL) + 8
    assert root.get("viewBox") == f"0 0 {modules} {modules}"
    assert len(root.findall(f"{SVG}path")) == 1
    rect = root.find(f"{SVG}rect")
    assert rect is not None and rect.get("fill") == "white"
    for size in (200, 800):  # it scales: decodes small and large
        png = cairosvg.svg2png(bytestring=data, output_width=size, output_height=size)
        assert _decode(Image.open(io.BytesIO(png))).text == CARD_URL


def test_non_ascii_url_round_trips() -> None:
    url = "https://例え.jp/名刺/山田?q=1"
    assert _decode(_png(qr.png_bytes(url))).text == url


@pytest.mark.parametrize("url", ["", "   "])
def test_empty_url_is_rejected(url: str) -> None:
    with pytest.raises(ValidationError):
        qr.png_bytes(url)
    with pytest.raises(ValidationError):
        qr.svg_bytes(url)
    with pytest.raises(ValidationError):
        qr.version_for(url)


def test_url_length_limit() -> None:
    at_limit = "https://example.com/" + "a" * 1980
    assert len(at_limit) == 2000
    assert qr.version_for(at_limit) <= 40
    with pytest.raises(ValidationError):
        qr.png_bytes(at_limit + "a")
    # 2000 characters but ~6000 UTF-8 bytes: too big for any version, still a ValidationError.
    with pytest.raises(ValidationError):
        qr.png_bytes("https://example.com/" + "あ" * 1980)


@pytest.mark.parametrize("box_size", [0, -1, 51])
def test_bad_box_size_is_rejected(box_size: int) -> None:
    with pytest.raises(ValidationError):
        qr.png_bytes(CARD_URL, box_size=box_size)
