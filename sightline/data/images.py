"""Decode one image file into a uint8 tensor, whatever the file throws at us.

This is the only place that opens user image files. It turns every way a file can be bad into
an ``ImageError`` naming the file, and every colour mode PIL knows into 1-channel grayscale or
3-channel RGB:

* zero-byte, truncated or corrupt files, and files that are not images at all
* huge images (decompression bombs): refused above ``MAX_PIXELS`` before decoding
* RGBA / LA / palette with transparency: composited over white, as a viewer shows them
* 16-bit and 32-bit integer or float grayscale: rescaled to 0..255, not clipped
* CMYK, YCbCr, LAB, HSV: converted to RGB
* phone photos: rotated upright by their EXIF orientation
* animated GIF / WebP: the first frame
"""

from __future__ import annotations

import io
import os
import warnings
from pathlib import Path
from typing import IO

import numpy as np
import torch
from PIL import Image, ImageOps, UnidentifiedImageError

from sightline.errors import ImageError

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp")

# 64 megapixels: a large phone photo is 12-50 MP. Anything bigger is refused with a clear
# message instead of PIL's DecompressionBombError (or silently eating gigabytes of memory).
MAX_PIXELS = 64_000_000


def is_image_file(path: str | os.PathLike) -> bool:
    return Path(path).suffix.lower() in IMAGE_EXTENSIONS


def _to_8bit(img: Image.Image) -> Image.Image:
    """Rescale high-bit-depth grayscale (I;16, I, F) to 8-bit "L", never clipping.

    Integer data is divided by the full scale of its bit depth (8, 10, 12 or 16 bits, the
    smallest that holds its maximum), so 0 stays black and 12-bit sensor data in a 16-bit file
    isn't shown almost black. Float data, which may be negative, is stretched min to max.
    """
    arr = np.asarray(img, dtype=np.float64)
    lo, hi = float(arr.min(initial=0)), float(arr.max(initial=0))
    if img.mode == "F" or lo < 0:
        arr = (arr - lo) / (hi - lo) * 255.0 if hi > lo else np.zeros_like(arr)
    else:
        full = next((s for s in (255, 1023, 4095, 65535) if hi <= s), hi)
        arr = arr / full * 255.0
    return Image.fromarray(np.clip(np.rint(arr), 0, 255).astype(np.uint8))


def _flatten_alpha(img: Image.Image) -> Image.Image:
    """Composite a transparent image over white, the way an image viewer shows it."""
    rgba = img.convert("RGBA")
    background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
    return Image.alpha_composite(background, rgba).convert("RGB")


def normalize_mode(img: Image.Image, channels: int) -> Image.Image:
    """Any PIL image → mode "L" (channels=1) or "RGB" (channels=3)."""
    if img.mode in ("I;16", "I;16B", "I;16L", "I;16N", "I", "F"):
        img = _to_8bit(img)
    elif img.mode in ("RGBA", "LA", "PA", "RGBa", "La") or (
        img.mode == "P" and "transparency" in img.info
    ):
        img = _flatten_alpha(img)
    elif img.mode == "1":
        img = img.convert("L")
    elif img.mode not in ("L", "RGB"):
        img = img.convert("RGB")  # P, CMYK, YCbCr, LAB, HSV
    target = "L" if channels == 1 else "RGB"
    return img if img.mode == target else img.convert(target)


# An upload (bytes or a file object) larger than this is refused before it is decoded.
MAX_UPLOAD_BYTES = 64 * 1024 * 1024

ImageSource = str | os.PathLike | bytes | bytearray | memoryview | IO[bytes]


def open_image(source: ImageSource, name: str | None = None) -> Image.Image:
    """Open and fully decode an image — a file path, or the bytes of one (``bytes`` or a
    binary file object, e.g. an upload) — upright; raise ``ImageError`` naming the file
    (``name`` for bytes, default "<upload>")."""
    if isinstance(source, (bytes, bytearray, memoryview)) or hasattr(source, "read"):
        return _open_bytes(source, name or str(getattr(source, "name", "") or "<upload>"))
    path = Path(source)
    if not path.exists():
        raise ImageError(path, "file not found")
    if path.is_dir():
        raise ImageError(path, "is a folder, not an image file")
    try:
        size = path.stat().st_size
    except OSError as e:
        raise ImageError(path, f"cannot read: {e.strerror or e}") from None
    if size == 0:
        raise ImageError(path, "empty file (0 bytes)")
    return _decode(path, path)


def _open_bytes(source, name: str) -> Image.Image:
    if hasattr(source, "read"):
        try:
            data = source.read(MAX_UPLOAD_BYTES + 1)
        except (OSError, ValueError) as e:
            raise ImageError(name, f"cannot read: {e}") from None
        if not isinstance(data, (bytes, bytearray)):
            raise ImageError(name, "file object must be opened in binary mode ('rb')")
    else:
        data = bytes(source)
    if len(data) == 0:
        raise ImageError(name, "empty file (0 bytes)")
    if len(data) > MAX_UPLOAD_BYTES:
        raise ImageError(name, f"file too large (over {MAX_UPLOAD_BYTES // (1024 * 1024)} MB)")
    return _decode(io.BytesIO(data), name)


def _decode(fp, label) -> Image.Image:
    """The one decoder for files and uploads: size guard before decoding, first frame, full
    decode (so truncation shows here), EXIF orientation applied."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(fp) as img:
                w, h = img.size
                if w * h > MAX_PIXELS:
                    raise ImageError(
                        label,
                        f"image too large ({w}x{h} = {w * h / 1e6:.0f} MP; limit {MAX_PIXELS / 1e6:.0f} MP)",
                    )
                if w == 0 or h == 0:
                    raise ImageError(label, f"image has no pixels ({w}x{h})")
                img.seek(0)  # first frame of an animation
                img.load()  # decode now so truncation shows up here, not later
                img = ImageOps.exif_transpose(img) or img
                return img.copy()  # detach from the file handle
    except ImageError:
        raise
    except UnidentifiedImageError:
        raise ImageError(
            label, "not a recognised image format (corrupt, or not an image)"
        ) from None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise ImageError(label, f"image too large (over {MAX_PIXELS / 1e6:.0f} MP)") from None
    except (OSError, SyntaxError, ValueError, EOFError) as e:
        msg = str(e) or type(e).__name__
        if "truncated" in msg.lower():
            msg = "truncated image file (incomplete download or copy?)"
        raise ImageError(label, f"cannot decode image: {msg}") from None


def pil_to_tensor(img: Image.Image) -> torch.Tensor:
    """PIL image in mode L or RGB → uint8 tensor (C, H, W)."""
    arr = np.asarray(img, dtype=np.uint8)
    if arr.ndim == 2:
        arr = arr[:, :, None]
    return torch.from_numpy(arr.copy()).permute(2, 0, 1).contiguous()


def resize_image(
    img: Image.Image, size: tuple[int, int], mode: str, fill: int | tuple = 0
) -> Image.Image:
    """Resize to ``size`` = (height, width).

    ``squash``: stretch to size, ignoring aspect ratio. ``crop``: scale the short side to fit,
    then centre-crop. ``pad``: scale the long side to fit, then pad with ``fill`` to size.
    """
    h, w = size
    if img.size == (w, h):
        return img
    # Downscaling by a large factor: reduce() first is both faster and antialiased.
    resample = (
        Image.Resampling.BILINEAR if min(img.size) < 4 * max(h, w) else Image.Resampling.LANCZOS
    )
    if mode == "squash":
        return img.resize((w, h), resample, reducing_gap=3.0)
    if mode == "crop":
        return ImageOps.fit(img, (w, h), method=resample)
    if mode == "pad":
        return ImageOps.pad(img, (w, h), method=resample, color=fill)
    raise ValueError(f"unknown resize mode {mode!r}: use squash, crop or pad")
