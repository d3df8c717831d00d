"""Reading image files for records: a full decode check, format and size.

JPEG and PNG files are stored byte for byte, as the original converters do.
Any other format Pillow can read (GIF, BMP, TIFF, WebP, ...) and CMYK JPEGs
(which TensorFlow's JPEG decoder cannot turn into RGB) are re-encoded as PNG.
"""

from __future__ import annotations

import dataclasses
import io
import re

from PIL import Image, UnidentifiedImageError

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".gif", ".bmp", ".tif", ".tiff", ".webp",
                    ".ppm", ".pgm", ".pbm", ".jpe", ".jfif")
_STORED_AS_IS = {"JPEG": b"jpg", "PNG": b"png"}
_KEEP_MODES = {"JPEG": {"L", "RGB"}, "PNG": {"1", "L", "LA", "P", "RGB", "RGBA", "I;16", "I"}}


class UnreadableImage(Exception):
    """A file that is not a decodable image; `reason` says why."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


@dataclasses.dataclass(frozen=True)
class EncodedImage:
    """Bytes to store, their format (`b'jpg'`/`b'png'`) and the pixel size."""
    data: bytes
    format: bytes
    height: int
    width: int
    reencoded: bool


def decode_check(data: bytes) -> Image.Image:
    """Fully decodes `data` (truncated or corrupt files fail here).

    Returns:
      The decoded Pillow image.

    Raises:
      UnreadableImage: not an image Pillow can decode completely.
    """
    if not data:
        raise UnreadableImage("empty file (0 bytes)")
    try:
        image = Image.open(io.BytesIO(data))
    except UnidentifiedImageError:
        raise UnreadableImage(f"not an image format Pillow knows ({len(data)} bytes starting "
                              f"{data[:8]!r})") from None
    except (OSError, SyntaxError, ValueError, EOFError) as e:
        raise UnreadableImage(f"unreadable image header ({_describe(e)})") from None
    try:
        image.load()
    except Image.DecompressionBombError as e:
        raise UnreadableImage(f"too large to decode safely ({e})") from None
    except (OSError, SyntaxError, ValueError, EOFError) as e:
        raise UnreadableImage(f"truncated or corrupt {image.format or 'image'} data "
                              f"({_describe(e)})") from None
    return image


def _describe(error: BaseException) -> str:
    """Pillow's message without the in-memory stream's repr it sometimes carries."""
    text = re.sub(r"\s*<_io\.BytesIO object at 0x[0-9a-fA-F]+>", "", str(error)).strip()
    return text or type(error).__name__


def encode_for_record(data: bytes) -> EncodedImage:
    """Checks an image file's bytes and returns what a record should store.

    Args:
      data: the file's bytes.

    Returns:
      The original bytes for RGB/grayscale JPEGs and PNGs; a PNG re-encoding
      for other formats and color modes.

    Raises:
      UnreadableImage: the bytes do not decode.
    """
    image = decode_check(data)
    width, height = image.size
    fmt = image.format or ""
    if fmt in _STORED_AS_IS and image.mode in _KEEP_MODES[fmt]:
        return EncodedImage(data, _STORED_AS_IS[fmt], height, width, False)
    return EncodedImage(reencode_png(image), b"png", height, width, True)


def reencode_png(image: Image.Image) -> bytes:
    """PNG bytes of `image` in RGB, RGBA or L (CMYK, palette etc. converted)."""
    if image.mode not in ("RGB", "RGBA", "L"):
        has_alpha = "A" in image.getbands() or "transparency" in image.info
        image = image.convert("RGBA" if has_alpha else "RGB")
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()


def reencode_jpeg(image: Image.Image, quality: int = 100) -> bytes:
    """RGB JPEG bytes of `image` (the ImageNet converter's PNG/CMYK fix)."""
    if image.mode != "RGB":
        image = image.convert("RGB")
    out = io.BytesIO()
    image.save(out, format="JPEG", quality=quality)
    return out.getvalue()
