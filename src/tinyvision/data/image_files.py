"""A user's own picture (a PNG or JPEG file of any size and colour) as a dataset image.

The file is untrusted: its size on disk and its pixel count are bounded before anything
is decoded, only the PNG and JPEG decoders are tried, and whatever goes wrong while
decoding is one line naming the file. The result is what the datasets hold: uint8,
C x H x W, grey (1 channel) or RGB (3), at the size asked for.
"""

from __future__ import annotations

import io
import os
import stat
import warnings
from pathlib import Path

import numpy as np
import torch

from tinyvision.errors import UserError, first_line

MAX_FILE_BYTES = 64 * 1024 * 1024
MAX_PIXELS = 50_000_000  # a 50-megapixel photo; larger is refused before decoding
FORMATS = ("PNG", "JPEG")


def read_file(path: Path, limit: int) -> bytes:
    """The bytes of a regular file (a link to one is fine: the user named it), bounded."""
    flags = os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0)  # a pipe never blocks
    try:
        fd = os.open(path, flags)
    except OSError as e:
        raise UserError(f"{path}: cannot be read ({e.strerror})") from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):  # a folder, a pipe, a device
            raise UserError(f"{path}: not a file; give PNG or JPEG image files")
        if info.st_size > limit:
            raise UserError(f"{path}: {info.st_size:,} bytes, more than the {limit:,} allowed")
        with os.fdopen(os.dup(fd), "rb") as f:
            data = f.read(limit + 1)  # a file that grows while we read is still bounded
    finally:
        os.close(fd)
    if len(data) > limit:
        raise UserError(f"{path}: more than the {limit:,} bytes allowed")
    return data


def read_image(path: Path, channels: int, size: tuple[int, int]) -> torch.Tensor:
    """The picture as a uint8 (channels, height, width) tensor, resized to `size` (h, w).

    Grey or colour as asked (ITU-R 601 luma for grey), 16-bit pixels scaled to 8 bits,
    transparent pixels on black (the datasets' background), the EXIF rotation applied.
    """
    if channels not in (1, 3):
        raise UserError(f"images have 1 or 3 channels, not {channels}")
    data = read_file(path, MAX_FILE_BYTES)
    try:
        picture = _converted(_decode(data, path), channels, size)
    except UserError:
        raise
    except Exception as e:  # a hostile file can make the decoders raise almost anything
        raise UserError(f"{path}: not a readable PNG or JPEG image ({_reason(e)})") from None
    return _tensor(picture)


def picture_tensor(picture, channels: int, size: tuple[int, int]) -> torch.Tensor:
    """A PIL image (a notebook's) as `read_image` gives a file's: same conversion."""
    if channels not in (1, 3):
        raise UserError(f"images have 1 or 3 channels, not {channels}")
    try:
        return _tensor(_converted(picture, channels, size))
    except Exception as e:
        raise UserError(
            f"a PIL image of mode {picture.mode} cannot be used ({_reason(e)})"
        ) from None


def _converted(picture, channels: int, size: tuple[int, int]):
    from PIL import Image

    picture = _eight_bit(picture)
    if picture.mode in ("RGBA", "LA", "PA") or "transparency" in picture.info:
        picture = _on_black(picture.convert("RGBA"))
    picture = picture.convert("L" if channels == 1 else "RGB")
    return picture.resize((size[1], size[0]), Image.Resampling.BILINEAR)


def _tensor(picture) -> torch.Tensor:
    array = np.array(picture, dtype=np.uint8)  # a copy torch may write to
    array = array[None] if array.ndim == 2 else array.transpose(2, 0, 1)
    return torch.from_numpy(np.ascontiguousarray(array))


def _decode(data: bytes, path: Path):
    from PIL import Image, ImageOps

    with warnings.catch_warnings():
        # PIL only warns between its own limit and twice it: make that an error too.
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            picture = Image.open(io.BytesIO(data), formats=FORMATS)
        except Image.UnidentifiedImageError:
            raise UserError(
                f"{path}: not a PNG or JPEG image; convert it to one of those"
            ) from None
        except (Image.DecompressionBombError, Image.DecompressionBombWarning):
            raise UserError(_too_many_pixels(path)) from None
        width, height = picture.size
        if width * height > MAX_PIXELS:  # known from the header, before any decoding
            raise UserError(_too_many_pixels(path, width, height))
        picture.load()
    return ImageOps.exif_transpose(picture)


def _too_many_pixels(path: Path, width: int | None = None, height: int | None = None) -> str:
    size = f" ({width} x {height})" if width else ""
    return f"{path}: too many pixels{size}, more than {MAX_PIXELS:,}; shrink the image first"


def _eight_bit(picture):
    """16-bit grey PNGs (modes I;16 and I) to 8-bit grey, keeping the whole range."""
    from PIL import Image

    if picture.mode.startswith("I"):
        values = np.asarray(picture, dtype=np.float64)
        return Image.fromarray(np.clip(np.rint(values / 257), 0, 255).astype(np.uint8), "L")
    return picture


def _on_black(picture):
    from PIL import Image

    background = Image.new("RGBA", picture.size, (0, 0, 0, 255))
    return Image.alpha_composite(background, picture)


def _reason(e: Exception) -> str:
    text = first_line(e, limit=120, default="")
    return f"{type(e).__name__}: {text}" if text else type(e).__name__
