"""Uploaded images (employee photos, the company logo): checked, resized and re-encoded with Pillow. Pure.

Nothing of the upload survives but its pixels: the output is a fresh image, so EXIF (GPS location,
camera serial), ICC profiles, comments and any trailing bytes are gone. Limits are checked before any
pixel is decoded: the byte size, then the size the header declares (a decompression bomb declares a huge
canvas in a few bytes), and Pillow's own bomb check as a second line.
"""

from __future__ import annotations

import io
import warnings

from PIL import Image, ImageOps, UnidentifiedImageError

from .models import ValidationError

MAX_UPLOAD_BYTES = 5 * 1024 * 1024
MAX_PIXELS = 40_000_000  # ~ 8000 x 5000: any real photo; far below what would exhaust memory
ALLOWED_FORMATS = {"JPEG", "PNG", "WEBP", "GIF"}
PHOTO_SIZE = 256
LOGO_BOX = (400, 100)


class ImageRejected(ValidationError):
    """The upload is not an image we accept; ``code`` names the reason for a translated message."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


def _open(data: bytes) -> Image.Image:
    if not data:
        raise ImageRejected("empty", "no file was uploaded")
    if len(data) > MAX_UPLOAD_BYTES:
        raise ImageRejected("too_large", f"the file is larger than {MAX_UPLOAD_BYTES // (1024 * 1024)} MB")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data))
            if image.format not in ALLOWED_FORMATS:
                raise ImageRejected("not_image", "the file is not a JPEG, PNG, WebP or GIF image")
            width, height = image.size
            if width < 1 or height < 1 or width * height > MAX_PIXELS:
                raise ImageRejected("too_many_pixels", f"the image is {width} x {height} pixels; "
                                    f"at most {MAX_PIXELS:,} pixels are accepted")
            image.seek(0)  # the first frame of an animation
            image.load()
            return ImageOps.exif_transpose(image)  # respect the camera's rotation, then forget the EXIF
    except ImageRejected:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise ImageRejected("too_many_pixels", "the image declares too many pixels") from None
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError, EOFError):
        raise ImageRejected("not_image", "the file is not a readable image") from None


def _fresh(image: Image.Image, mode: str, background: tuple[int, int, int] = (255, 255, 255)) -> Image.Image:
    """The pixels alone, in a new image: no info dict, no EXIF, no palette tricks."""
    if mode == "RGB":
        rgba = image.convert("RGBA")
        clean = Image.new("RGB", rgba.size, background)
        clean.paste(rgba, mask=rgba.getchannel("A"))
        return clean
    clean = Image.new("RGBA", image.size, (0, 0, 0, 0))
    clean.paste(image.convert("RGBA"))
    return clean


def photo_jpeg(data: bytes) -> bytes:
    """A square 256 x 256 JPEG, cropped to the centre."""
    image = _open(data)
    square = ImageOps.fit(_fresh(image, "RGB"), (PHOTO_SIZE, PHOTO_SIZE), Image.Resampling.LANCZOS)
    out = io.BytesIO()
    square.save(out, format="JPEG", quality=85, optimize=True)
    return out.getvalue()


def logo_png(data: bytes) -> bytes:
    """The logo scaled down (never up) to fit 400 x 100, aspect kept, transparency kept, as PNG."""
    image = _fresh(_open(data), "RGBA")
    image.thumbnail(LOGO_BOX, Image.Resampling.LANCZOS)
    out = io.BytesIO()
    image.save(out, format="PNG", optimize=True)
    return out.getvalue()
