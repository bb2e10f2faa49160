"""Decode one image file into a uint8 tensor, whatever the file throws at us.

This is the only place that opens user image files. It turns every way a file can be bad into
an ``ImageError`` naming the file, and every colour mode PIL knows into 1-channel grayscale or
3-channel RGB:

* zero-byte, truncated or corrupt files, and files that are not images at all
* huge images (decompression bombs): refused above ``MAX_PIXELS`` before decoding
* large photos, decoded only as large as they are used: a JPEG at 1/2, 1/4 or 1/8 of its size
  by the decoder itself (``Image.draft``), any other format reduced right after decoding, to
  the ``max_side`` a model's preprocessing asks for (``decode_side``); at most
  ``LARGE_DECODES`` images over ``LARGE_PIXELS`` decode at once in a process, and the memory
  they took is handed back to the system afterwards
* RGBA / LA / palette with transparency: composited over white, as a viewer shows them
* 16-bit and 32-bit integer or float grayscale: rescaled to 0..255, not clipped
* CMYK, YCbCr, LAB, HSV: converted to RGB
* phone photos: rotated upright by their EXIF orientation
* animated GIF / WebP: the first frame
"""

from __future__ import annotations

import contextlib
import io
import os
import threading
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import IO

import numpy as np
import torch
from PIL import Image, ImageOps, UnidentifiedImageError

from sightline.devices import release_freed_cpu_memory
from sightline.errors import ImageError

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff")

# 64 megapixels: a large phone photo is 12-50 MP. Anything bigger is refused with a clear
# message instead of PIL's DecompressionBombError (or silently eating gigabytes of memory).
MAX_PIXELS = 64_000_000
# PIL warns of an image over its own limit when it opens one; sightline measures every image
# against MAX_PIXELS itself and says so. One filter, set once: warnings.catch_warnings is not
# thread-safe (images are decoded in threads), and two threads inside it leave its filters
# behind for the whole process (before, an "ignore everything" outlived every folder's loading).
warnings.filterwarnings("ignore", category=Image.DecompressionBombWarning)
# PIL's plugins warn of odd metadata (corrupt EXIF, a malformed MPO) as they read a header:
# sightline reports the file itself where it cannot be decoded.
warnings.filterwarnings("ignore", category=UserWarning, module=r"PIL\.")
# A model sees at most a few hundred pixels a side, framing looks at the photo as a whole: a
# photo is decoded with its longer side at least this, or DECODE_FACTOR x the model's input.
MIN_DECODE_SIDE = 512
DECODE_FACTOR = 4
FULL_SIZE = "sightline.full_size"  # the info key ``full_size`` reads
LARGE_PIXELS = 4_000_000  # a decode this large takes hundreds of MB at its peak ...
LARGE_DECODES = 2  # ... so only this many run at once in a process
_large_decodes = threading.BoundedSemaphore(LARGE_DECODES)


def decode_side(size: tuple[int, int] | list[int]) -> int:
    """The longer side an image is decoded at (at least) for a model input of ``size``."""
    return max(MIN_DECODE_SIDE, DECODE_FACTOR * max(size))


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


def open_image(
    source: ImageSource,
    name: str | None = None,
    *,
    max_side: int | None = None,
    max_pixels: int = MAX_PIXELS,
) -> Image.Image:
    """Open and fully decode an image — a file path, or the bytes of one (``bytes`` or a
    binary file object, e.g. an upload) — upright; raise ``ImageError`` naming the file
    (``name`` for bytes, default "<upload>").

    ``max_side``: decode no larger than needed for a longer side of at least this (a reduced
    decode: the same image the same way, whichever face opens it). ``max_pixels``: refuse
    images with more pixels (a server's own limit), before decoding."""
    if isinstance(source, (bytes, bytearray, memoryview)) or hasattr(source, "read"):
        label = name or str(getattr(source, "name", "") or "<upload>")
        return _decode(io.BytesIO(_read_bytes(source, label)), label, max_side, max_pixels)
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
    return _decode(path, path, max_side, max_pixels)


def image_size(data: bytes, name: str, max_pixels: int = MAX_PIXELS) -> tuple[int, int]:
    """(width, height) of the image in ``data``, read from its header alone (nothing is
    decoded): ``ImageError`` for bytes that are no image or an image over ``max_pixels``."""
    if not data:
        raise ImageError(name, "empty file (0 bytes)")
    try:
        with Image.open(io.BytesIO(data)) as img:
            w, h = img.size
    except UnidentifiedImageError:
        raise ImageError(name, "not a recognised image format (corrupt, or not an image)") from None
    except Image.DecompressionBombError:
        raise ImageError(name, f"image too large (over {max_pixels / 1e6:.0f} MP)") from None
    except (OSError, SyntaxError, ValueError, EOFError) as e:
        raise ImageError(name, f"cannot decode image: {e or type(e).__name__}") from None
    if w * h > max_pixels:
        raise ImageError(
            name,
            f"image too large ({w}x{h} = {w * h / 1e6:.0f} MP; limit {max_pixels / 1e6:.0f} MP)",
        )
    return w, h


def _read_bytes(source, name: str) -> bytes:
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
    return data


def _decode(fp, label, max_side: int | None, max_pixels: int) -> Image.Image:
    """The one decoder for files and uploads: size guard before decoding, first frame, full
    decode (so truncation shows here), reduced to ``max_side``, EXIF orientation applied."""
    try:
        # The gate on large decodes closes after the file's image: its memory is freed by then.
        with contextlib.ExitStack() as gate:
            with Image.open(fp) as img:
                w, h = img.size
                limit = min(max_pixels, MAX_PIXELS)
                if w * h > limit:
                    raise ImageError(
                        label,
                        f"image too large ({w}x{h} = {w * h / 1e6:.0f} MP; limit {limit / 1e6:.0f} MP)",
                    )
                if w == 0 or h == 0:
                    raise ImageError(label, f"image has no pixels ({w}x{h})")
                gate.enter_context(_large_decode(w * h))
                out = _load(img, max_side)
                img.close()  # frees the decoded pixels now (leaving ``with`` closes the file only)
            return out
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


def _load(img: Image.Image, max_side: int | None) -> Image.Image:
    w, h = img.size
    if max_side is not None and img.format == "JPEG":
        # The decoder scales by 1/2, 1/4 or 1/8 itself, keeping both sides >= the request.
        scale = max_side / max(w, h)
        if scale < 1:
            img.draft(img.mode, (max(1, int(w * scale)), max(1, int(h * scale))))
    img.seek(0)  # first frame of an animation
    img.load()  # decode now so truncation shows up here, not later
    factor = max(img.size) // max_side if max_side else 1
    out = None
    if factor >= 2:
        with contextlib.suppress(ValueError):  # a mode reduce() lacks (P, 1, I;16): kept whole
            out = img.reduce(factor)
    out = out if out is not None else img.copy()  # detached from the file either way
    out.info = dict(img.info)  # the EXIF orientation, read next
    before = out.size
    # In place: ``out`` is ours already, so a second full-size copy of the photo is not needed.
    ImageOps.exif_transpose(out, in_place=True)
    # Its size as stored (turned upright like the pixels), whatever size it was decoded at.
    out.info[FULL_SIZE] = (w, h) if out.size == before else (h, w)
    return out


def full_size(img: Image.Image) -> tuple[int, int]:
    """(width, height) of the file an ``open_image`` image was decoded from, upright: its own
    size, also when it was decoded smaller (``max_side``)."""
    return tuple(img.info.get(FULL_SIZE, img.size))  # type: ignore[return-value]


@contextlib.contextmanager
def _large_decode(pixels: int) -> Iterator[None]:
    """At most ``LARGE_DECODES`` large decodes at once, each followed by handing the memory it
    freed back to the system: a server's size stays that of its models, not of its largest
    requests (freed blocks in another thread's malloc arena would otherwise pile up while the
    next decodes allocate fresh ones). A trim costs milliseconds, a large decode hundreds."""
    if pixels <= LARGE_PIXELS:
        yield
        return
    with _large_decodes:
        try:
            yield
        finally:
            release_freed_cpu_memory()


def pil_to_tensor(img: Image.Image) -> torch.Tensor:
    """PIL image in mode L or RGB → uint8 tensor (C, H, W)."""
    arr = np.asarray(img, dtype=np.uint8)
    if arr.ndim == 2:
        arr = arr[:, :, None]
    return torch.from_numpy(arr.copy()).permute(2, 0, 1).contiguous()


def resize_image(
    img: Image.Image,
    size: tuple[int, int],
    mode: str,
    fill: int | tuple = 0,
    interpolation: str = "bilinear",
) -> Image.Image:
    """Resize to ``size`` = (height, width), ``interpolation`` "bilinear" or "bicubic" (PIL's
    resampling is antialiased: its filter widens with the reduction).

    ``squash``: stretch to size, ignoring aspect ratio. ``crop``: scale the short side to fit,
    then centre-crop. ``pad``: scale the long side to fit, then pad with ``fill`` to size.
    """
    h, w = size
    if img.size == (w, h):
        return img
    # Downscaling by a large factor: reduce() first is both faster and antialiased.
    resample = (
        Image.Resampling.LANCZOS
        if min(img.size) >= 4 * max(h, w)
        else Image.Resampling.BICUBIC
        if interpolation == "bicubic"
        else Image.Resampling.BILINEAR
    )
    if mode == "squash":
        return img.resize((w, h), resample, reducing_gap=3.0)
    if mode == "crop":
        return ImageOps.fit(img, (w, h), method=resample)
    if mode == "pad":
        return ImageOps.pad(img, (w, h), method=resample, color=fill)
    raise ValueError(f"unknown resize mode {mode!r}: use squash, crop or pad")
