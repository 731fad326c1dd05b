"""Photo and logo uploads: re-encoded, metadata stripped, and every bad upload refused with a form message."""

from __future__ import annotations

import asyncio
import io
import struct
import threading
import zlib

import httpx2 as httpx
import pytest
from PIL import Image
from starlette.testclient import TestClient

from contactcard import images

from .accounts_kit import csrf_of
from .conftest import Harness


def jpeg_with_gps(size: tuple[int, int] = (640, 480)) -> bytes:
    image = Image.new("RGB", size, (200, 30, 30))
    exif = Image.Exif()
    exif[0x010F] = "SpyCam"  # Make
    gps = {1: "N", 2: (35.0, 39.0, 29.0), 3: "E", 4: (139.0, 44.0, 28.0)}
    exif[0x8825] = gps  # GPSInfo
    out = io.BytesIO()
    image.save(out, format="JPEG", exif=exif.tobytes())
    return out.getvalue()


def bomb_png(width: int = 30000, height: int = 30000) -> bytes:
    """A tiny PNG whose header declares a huge canvas (made with Pillow, then its IHDR rewritten)."""
    out = io.BytesIO()
    Image.new("1", (1, 1)).save(out, format="PNG")
    data = bytearray(out.getvalue())
    ihdr = data.index(b"IHDR")
    data[ihdr + 4:ihdr + 12] = struct.pack(">II", width, height)
    crc = zlib.crc32(bytes(data[ihdr:ihdr + 17])) & 0xFFFFFFFF
    data[ihdr + 17:ihdr + 21] = struct.pack(">I", crc)
    return bytes(data)


def test_photo_pipeline_is_pure_and_strips_exif() -> None:
    out = images.photo_jpeg(jpeg_with_gps())
    image = Image.open(io.BytesIO(out))
    assert image.format == "JPEG" and image.size == (256, 256)
    assert not image.getexif() and "exif" not in image.info
    assert b"SpyCam" not in out and b"GPS" not in out


def test_logo_keeps_aspect_and_fits_the_box() -> None:
    source = io.BytesIO()
    Image.new("RGBA", (1600, 200), (0, 0, 0, 0)).save(source, format="PNG")
    logo = Image.open(io.BytesIO(images.logo_png(source.getvalue())))
    assert logo.size == (400, 50) and logo.mode == "RGBA"


@pytest.mark.parametrize(("data", "code"), [
    (b"", "empty"),
    (b"GIF89a not really", "not_image"),
    (b"<svg xmlns='http://www.w3.org/2000/svg'/>", "not_image"),
    (b"%PDF-1.4", "not_image"),
    (b"\xff" * (images.MAX_UPLOAD_BYTES + 1), "too_large"),
])
def test_pipeline_refusals(data: bytes, code: str) -> None:
    with pytest.raises(images.ImageRejected) as err:
        images.photo_jpeg(data)
    assert err.value.code == code


def test_decompression_bomb_is_refused_before_decoding() -> None:
    with pytest.raises(images.ImageRejected) as err:
        images.photo_jpeg(bomb_png())
    assert err.value.code == "too_many_pixels"
    with pytest.raises(images.ImageRejected):
        images.photo_jpeg(bomb_png(100_000, 100_000))  # past Pillow's own hard limit too


@pytest.fixture
def taro(harness: Harness, admin_client: TestClient) -> int:
    harness.seed()
    return harness.run(harness.service.find_employee, "taro@example.co.jp").id


def upload(h: Harness, url: str, data: bytes, name: str = "photo.jpg", kind: str = "image/jpeg") -> httpx.Response:
    token = csrf_of(h.client.get("/admin").text)
    return h.client.post(url, data={"csrf": token}, files={"file": (name, data, kind)},
                         headers={"accept-language": "en"})


def test_valid_photo_upload_is_stored_without_exif(harness: Harness, taro: int) -> None:
    r = upload(harness, f"/admin/employees/{taro}/photo", jpeg_with_gps())
    assert r.status_code == 303
    employee = harness.run(harness.service.find_employee, taro)
    assert employee.photo_sha
    stored = harness.run(harness.service._store.media, employee.photo_sha)
    assert stored is not None and stored[1] == "image/jpeg"
    image = Image.open(io.BytesIO(stored[0]))
    assert image.size == (256, 256) and not image.getexif()
    assert b"SpyCam" not in stored[0]
    assert harness.client.get(f"/media/{employee.photo_sha}").status_code == 200


@pytest.mark.parametrize(("data", "status", "message"), [
    (b"this is not an image", 400, "not a JPEG, PNG, WebP or GIF image"),
    (bomb_png(), 400, "too many pixels"),
    (b"\0" * (6 * 1024 * 1024), 413, "larger than 5 MB"),
    (b"", 400, "Choose an image file"),
])
def test_bad_photo_upload_shows_a_message_and_writes_nothing(harness: Harness, taro: int, data: bytes,
                                                             status: int, message: str) -> None:
    audits = len(harness.run(harness.service._store.audit_events))
    r = upload(harness, f"/admin/employees/{taro}/photo", data)
    assert r.status_code == status
    assert message in r.text and "Nothing was saved." in r.text
    assert harness.run(harness.service.find_employee, taro).photo_sha is None
    assert len(harness.run(harness.service._store.audit_events)) == audits


def test_a_50_mb_upload_gets_the_form_message_not_a_bare_413(harness: Harness, taro: int) -> None:
    r = upload(harness, f"/admin/employees/{taro}/photo", b"\0" * (50 * 1024 * 1024))
    assert r.status_code == 413
    assert "larger than 5 MB" in r.text
    assert harness.run(harness.service.find_employee, taro).photo_sha is None


def test_upload_with_wrong_csrf_is_403_and_nothing_written(harness: Harness, taro: int) -> None:
    r = harness.client.post(f"/admin/employees/{taro}/photo", data={"csrf": "wrong"},
                            files={"file": ("p.jpg", jpeg_with_gps(), "image/jpeg")})
    assert r.status_code == 403
    assert harness.run(harness.service.find_employee, taro).photo_sha is None


def test_logo_upload_and_removal(harness: Harness, taro: int) -> None:
    source = io.BytesIO()
    Image.new("RGB", (800, 400), (10, 90, 170)).save(source, format="PNG")
    r = upload(harness, "/admin/settings/logo", source.getvalue(), "logo.png", "image/png")
    assert r.status_code == 303
    company = harness.run(harness.service.company)
    assert company.logo_sha
    stored = harness.run(harness.service._store.media, company.logo_sha)
    assert stored is not None and Image.open(io.BytesIO(stored[0])).size == (200, 100)
    r = upload(harness, "/admin/settings/logo", bomb_png(), "logo.png", "image/png")
    assert r.status_code == 400 and "too many pixels" in r.text
    assert harness.run(harness.service.company).logo_sha == company.logo_sha
    token = csrf_of(harness.client.get("/admin").text)
    assert harness.client.post("/admin/settings/logo/remove", data={"csrf": token}).status_code == 303
    assert harness.run(harness.service.company).logo_sha is None


def test_text_where_the_file_belongs_is_refused(harness: Harness, taro: int) -> None:
    token = csrf_of(harness.client.get("/admin").text)
    r = harness.client.post(f"/admin/employees/{taro}/photo", data={"csrf": token, "file": "not a file"},
                            headers={"accept-language": "en"})
    assert r.status_code == 400 and "Choose an image file" in r.text
    assert harness.run(harness.service.find_employee, taro).photo_sha is None


def test_a_scan_is_answered_while_an_upload_is_converted(harness: Harness, taro: int,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    """Review finding 14: Pillow's decode and re-encode ran on the event loop, so every scan waited for it.

    A real upload through the app; the real conversion is held until a scan has been answered, which can only
    happen if the conversion runs in a worker thread, off the event loop.
    """
    card = harness.run(harness.service.current_card, taro)
    assert card is not None
    converting, scanned = threading.Event(), threading.Event()
    on_loop: list[bool] = []

    def held_conversion(data: bytes) -> bytes:
        try:
            asyncio.get_running_loop()
            on_loop.append(True)  # holding here would hold every request: do not wait
        except RuntimeError:
            on_loop.append(False)
            converting.set()
            scanned.wait(timeout=30)
        converting.set()
        return real(data)

    real = images.photo_jpeg
    monkeypatch.setattr(images, "photo_jpeg", held_conversion)
    big = io.BytesIO()
    Image.new("RGB", (6000, 4000), (30, 120, 30)).save(big, format="PNG")  # 24 MP in a few KB
    result: list[httpx.Response] = []
    uploader = threading.Thread(target=lambda: result.append(
        upload(harness, f"/admin/employees/{taro}/photo", big.getvalue(), "big.png", "image/png")))
    uploader.start()
    try:
        assert converting.wait(timeout=30), "the upload never reached the conversion"
        if on_loop == [False]:
            assert harness.client.get(harness.path(card)).status_code == 200  # answered mid-conversion
    finally:
        scanned.set()
        uploader.join()
    assert on_loop == [False], "the image was converted on the event loop: scans wait for it"
    assert result[0].status_code == 303
    assert harness.run(harness.service.find_employee, taro).photo_sha
