"""Framing an outside photo the way a dataset framed its items.

Fashion-MNIST and MNIST are not photos scaled down: each was made by a pipeline that finds the
object and fills a fixed frame with it. A photo of a boot on a table, scaled as a whole, shows
the model a small boot in a corner; framed as the dataset did, it shows what the model knows.
``Preprocess.fit`` names the framing, and ``frame_image`` applies it:

* ``"frame"``: the whole photo (resized with ``Preprocess.resize``): natural photos, CIFAR-10.
* ``"object"``: Fashion-MNIST's pipeline (Xiao et al., 2017): trim the edges close to the
  background colour, resize the longest edge to the frame, centre it on the canvas.
* ``"digit"``: MNIST's (LeCun et al.): fit the digit in a 20x20 box of 28x28 keeping its aspect
  ratio, then translate it so its centre of mass sits at pixel (14, 14).

Finding the object (``find_object``) works on a copy at most 256 px wide, in colour:
1. a thin frame line around the photo (uniform, unlike what is inside it, at most 6 % of the
   side and on all four edges) is stripped;
2. the background is modelled from the four corners, bilinearly, so a mild gradient or a
   tinted paper is background too; a corner the object covers is replaced by the others' median;
3. a pixel is object where its colour differs from that model by more than the noise allows
   (estimated on the border, after a 3x3 blur that removes JPEG speckle) and by a share of the
   strongest contrast (so a soft shadow next to a dark object stays background);
4. the box spans the rows and columns holding enough object pixels, plus a pixel of margin:
   never less than the object. No object found → the whole photo, and ``found`` says so.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from PIL import Image

FITS = ("frame", "object", "digit")
WORK_SIDE = (
    256  # px: detection runs on a copy this large at most (enough, and fast for 4000 px photos)
)
DIGIT_BOX = 20 / 28  # MNIST: the digit's longest edge is 20 px of 28
DIGIT_CENTRE = (
    14.0  # MNIST: centre of mass at (14, 14) (measured on the training set: 13.99, 14.00)
)


@dataclass(frozen=True)
class ObjectBox:
    box: tuple[int, int, int, int]  # left, top, right, bottom in the photo's pixels
    background: tuple[int, int, int]  # RGB, median of the corners
    found: bool  # False: no object stood out, the box is the whole photo (inside any frame line)

    def background_in(self, mode: str) -> int | tuple[int, int, int]:
        """The background colour in an image mode: "RGB" as it is, "L" as PIL converts it."""
        if mode == "RGB":
            return self.background
        return _gray(self.background)


@functools.lru_cache(maxsize=4096)
def _gray(rgb: tuple[int, int, int]) -> int:
    """An RGB colour in mode "L", as PIL converts it (made once per colour: backgrounds repeat)."""
    return int(Image.new("RGB", (1, 1), rgb).convert("L").getpixel((0, 0)))


def _blur3(a: np.ndarray) -> np.ndarray:
    """3x3 box blur over the last two axes (edges replicated)."""
    h, w = a.shape[-2:]
    # np.pad's edge and zero modes by indexing: the same arrays at a fraction of its call cost
    p = a[..., np.clip(np.arange(-1, h + 1), 0, h - 1), :][
        ..., np.clip(np.arange(-1, w + 1), 0, w - 1)
    ]
    c = np.zeros((*a.shape[:-2], h + 3, w + 3), dtype=p.dtype)
    c[..., 1:, 1:] = np.cumsum(np.cumsum(p, -2), -1)
    return (c[..., 3:, 3:] - c[..., :-3, 3:] - c[..., 3:, :-3] + c[..., :-3, :-3]) / 9.0


def _channel_max(a: np.ndarray) -> np.ndarray:
    """``a.max(-1)`` of an (..., 3) array: the same values; numpy reduces a 3-long last axis
    element by element, ~8x slower (the largest cost of framing a photo)."""
    return np.maximum(np.maximum(a[..., 0], a[..., 1]), a[..., 2])


def _median(a: np.ndarray, axis: int | None = None) -> np.ndarray:
    """``np.median`` of a NaN-free float array, from one sort: the same values (the middle
    element, or the mean of the two middle ones, in the array's dtype) without np.median's
    generic machinery, which cost ~50 µs a call, dozens of calls per small image."""
    if axis is None:
        a, axis = a.reshape(-1), 0
    n = a.shape[axis]
    if n == 0 or a.dtype.kind != "f":
        return np.median(a, axis=axis)
    s = np.sort(a, axis=axis)
    at = (slice(None),) * axis
    if n % 2:
        return s[(*at, n // 2)]
    return (s[(*at, n // 2 - 1)] + s[(*at, n // 2)]) / 2


def _percentile(a: np.ndarray, q: float, axis: int | None = None) -> np.ndarray:
    """``np.percentile(a, q, axis)`` (linear, NaN-free), from one partition: the same values,
    a tenth of its cost (~30 µs a call through np.percentile's generic machinery)."""
    if axis is None:
        a, axis = a.reshape(-1), 0
    n = a.shape[axis]
    at = (n - 1) * (q / 100)
    lo = int(np.floor(at))
    hi = min(lo + 1, n - 1)
    part = np.partition(a, (lo, hi), axis=axis)
    low, high = np.take(part, lo, axis=axis), np.take(part, hi, axis=axis)
    t, step = at - lo, high - low
    # numpy's own lerp: from the nearer end, so q=100 gives the maximum exactly
    return high - step * (1 - t) if t >= 0.5 else low + step * t


def _strip_frames(a: np.ndarray) -> np.ndarray:
    """Thickness (top, bottom, left, right) of a uniform frame line around each photo of a
    batch (N, H, W, 3): an (N, 4) int array.

    A frame line is thin (at most 6 % of the side, 2 px on the smallest photos) and runs along
    all four edges. Both matter on small photos that the object nearly fills: there a strip of
    paper beside the object, unlike the object further in, would otherwise pass for a frame on
    some edges, and stripping it would put the corners, and so the background model, on the
    object."""
    thickness = []
    for lines in (a, a.transpose(0, 2, 1, 3)):  # rows (top, bottom), then columns (left, right)
        n = lines.shape[1]
        depth = max(2, round(0.06 * n))
        ends = [lines[:, min(n - 1, depth + 1)], lines[:, max(0, n - depth - 2)]]
        inside = _median(np.stack(ends, 1), axis=2)  # (N, 2 edges, 3)
        # The first ``depth`` lines from both edges at once: a line is frame while it is uniform
        # and unlike the inside, and the frame is the run of such lines from the edge. (Fewer
        # than ``depth`` lines: the last one is the inside itself, so the run stops there.)
        band = np.stack([lines[:, :depth], lines[:, ::-1][:, :depth]], 1)  # (N, 2, d, px, 3)
        colour = _median(band, axis=3)  # per line (N, 2, d, 3)
        uniform = _median(_channel_max(np.abs(band - colour[:, :, :, None, :])), axis=3) < 8
        frame = uniform & (_channel_max(np.abs(colour - inside[:, :, None, :])) > 12)
        # the run from the edge: up to the first line that is no frame (argmin of booleans)
        thickness.append(np.where(frame.all(-1), frame.shape[-1], frame.argmin(-1)))
    out = np.concatenate(thickness, 1)  # (N, 4): top, bottom, left, right
    h, w = a.shape[1:3]
    bad = (out.min(1) == 0) | (out[:, 0] + out[:, 1] >= h - 2) | (out[:, 2] + out[:, 3] >= w - 2)
    out[bad] = 0
    return out


def _backgrounds(a: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-pixel background models (bilinear between the corner colours) of a batch
    (N, H, W, 3), and each photo's corner median (N, 3)."""
    h, w = a.shape[1:3]
    k = max(1, min(h, w) // 16)
    corner_blocks = [a[:, :k, :k], a[:, :k, -k:], a[:, -k:, :k], a[:, -k:, -k:]]
    blocks = np.stack(corner_blocks, 1).reshape(len(a), 4, -1, 3)
    corners = _median(blocks, axis=2)  # per corner (N, 4, 3)
    typical = _median(corners, 1)  # (N, 3)
    off = _channel_max(np.abs(corners - typical[:, None])) > 30  # a covered corner: the others'
    corners = np.where(off[..., None], typical[:, None], corners)
    tl, tr, bl, br = (corners[:, i, None, None, :] for i in range(4))
    fy = np.linspace(0, 1, h, dtype=np.float32)[None, :, None, None]
    fx = np.linspace(0, 1, w, dtype=np.float32)[None, None, :, None]
    model = (tl * (1 - fx) + tr * fx) * (1 - fy) + (bl * (1 - fx) + br * fx) * fy
    return model.astype(np.float32), typical


def _work_copy(img: Image.Image) -> tuple[np.ndarray, float]:
    """The photo at most ``WORK_SIDE`` px wide, as float RGB (H, W, 3), and its scale."""
    W, H = img.size
    scale = min(1.0, WORK_SIDE / max(W, H))
    small = (
        img.resize((max(1, round(W * scale)), max(1, round(H * scale))), Image.Resampling.BOX)
        if scale < 1
        else img
    )
    return np.asarray(small.convert("RGB"), dtype=np.float32), scale


def find_object(img: Image.Image) -> ObjectBox:
    """The box around the object of a photo (see the module docstring)."""
    return find_objects([img])[0]


def find_objects(imgs: Sequence[Image.Image]) -> list[ObjectBox]:
    """``find_object`` of each photo, the same boxes; photos whose working copies share a
    size (a folder of 28 px images, a batch of uploads) are measured in one pass of numpy
    calls instead of one each: ~60 calls per photo were most of framing a small image."""
    work = [_work_copy(img) for img in imgs]
    out: list[ObjectBox | None] = [None] * len(imgs)
    by_shape: dict[tuple[int, ...], list[int]] = {}
    for i, (a, _) in enumerate(work):
        by_shape.setdefault(a.shape, []).append(i)
    for same in by_shape.values():
        a = np.stack([work[i][0] for i in same])
        h, w = a.shape[1:3]
        by_strip: dict[tuple[int, ...], list[int]] = {}
        for j, strip in enumerate(_strip_frames(a).tolist()):
            by_strip.setdefault(tuple(strip), []).append(j)
        for (t, b, left, r), js in by_strip.items():
            inner = a[js][:, t : h - b, left : w - r]
            photos = [(imgs[same[j]].size, work[same[j]][1]) for j in js]
            for j, box in zip(js, _boxes(inner, photos, (t, b, left, r)), strict=True):
                out[same[j]] = box
    return out  # type: ignore[return-value]


def _boxes(
    inner: np.ndarray,
    photos: list[tuple[tuple[int, int], float]],
    strip: tuple[int, int, int, int],
) -> list[ObjectBox]:
    """The object boxes of a batch of working copies inside their frame lines (N, h, w, 3),
    each mapped back to its photo ((width, height), scale)."""
    n, ih, iw = inner.shape[:3]
    t, b, left, r = strip
    model, typical = _backgrounds(inner)
    d = _blur3(_channel_max(np.abs(inner - model)))  # (N, h, w)
    k = 1 if min(ih, iw) > 8 else 0  # the noise of the background, just inside any frame remains
    ring = np.concatenate([d[:, k], d[:, -1 - k], d[:, :, k], d[:, :, -1 - k]], 1)
    ring_level = _median(ring, axis=1)
    noise = _median(np.abs(ring - ring_level[:, None]), axis=1).astype(np.float64) * 1.4826
    strongest = _percentile(d.reshape(n, -1), 99.5, axis=1).astype(np.float64)
    threshold = np.maximum(
        np.maximum(10.0, ring_level.astype(np.float64) + 5 * noise), 0.22 * strongest
    )
    # compared in float32, as a Python float threshold is compared with a float32 array
    mask = d > threshold.astype(np.float32)[:, None, None]
    # An edge line counts only where the line inside it agrees: an object that touches the edge
    # continues inward, a frame line too thin to strip (1 px of a 4000 px photo) does not.
    if ih > 2 and iw > 2:
        mask[:, 0] &= mask[:, 1]
        mask[:, -1] &= mask[:, -2]
        mask[:, :, 0] &= mask[:, :, 1]
        mask[:, :, -1] &= mask[:, :, -2]
    need_r, need_c = max(2, int(0.015 * iw)), max(2, int(0.015 * ih))
    row_hit, col_hit = mask.sum(2) >= need_r, mask.sum(1) >= need_c
    share = mask.mean((1, 2))
    # Grow each box over the object's faint edge: lines next to it with enough pixels above
    # half the threshold (hysteresis) — a tight box, as the datasets trimmed theirs.
    faint = d > (threshold * 0.5).astype(np.float32)[:, None, None]
    faint_rows, faint_cols = faint.sum(2) >= need_r, faint.sum(1) >= need_c
    backgrounds = np.clip(np.round(typical), 0, 255).astype(int).tolist()
    boxes = []
    for i, ((W, H), scale) in enumerate(photos):
        inv = 1.0 / scale
        whole = (round(left * inv), round(t * inv), W - round(r * inv), H - round(b * inv))
        background = tuple(backgrounds[i])
        rows, cols = np.flatnonzero(row_hit[i]), np.flatnonzero(col_hit[i])
        if len(rows) == 0 or len(cols) == 0 or share[i] < 0.001 or strongest[i] < 16:
            boxes.append(ObjectBox(whole, background, False))
            continue
        fr, fc = faint_rows[i], faint_cols[i]
        y0, y1, x0, x1 = rows[0], rows[-1] + 1, cols[0], cols[-1] + 1
        while y0 > 0 and fr[y0 - 1]:
            y0 -= 1
        while y1 < ih and fr[y1]:
            y1 += 1
        while x0 > 0 and fc[x0 - 1]:
            x0 -= 1
        while x1 < iw and fc[x1]:
            x1 += 1
        box = (
            max(whole[0], int((x0 + left) * inv)),
            max(whole[1], int((y0 + t) * inv)),
            min(whole[2], int(np.ceil((x1 + left) * inv))),
            min(whole[3], int(np.ceil((y1 + t) * inv))),
        )
        if box[2] - box[0] < 2 or box[3] - box[1] < 2:
            boxes.append(ObjectBox(whole, background, False))
        else:
            boxes.append(ObjectBox(box, background, True))
    return boxes


def _fit_inside(img: Image.Image, width: int, height: int) -> Image.Image:
    """Resize keeping the aspect ratio so the image just fits width x height."""
    w, h = img.size
    s = min(width / w, height / h)
    size = (max(1, round(w * s)), max(1, round(h * s)))
    if size == img.size:
        return img
    # Shrinking a large crop in one step with a wide filter keeps thin strokes (antialiased).
    return img.resize(
        size, Image.Resampling.LANCZOS if s < 1 else Image.Resampling.BICUBIC, reducing_gap=3.0
    )


def frame_image(
    img: Image.Image,
    size: tuple[int, int],
    fit: str,
    photo: Image.Image | None = None,
    found: ObjectBox | None = None,
) -> tuple[Image.Image, ObjectBox]:
    """Crop ``img`` (already in its final colour mode) to its object and place it in a canvas of
    ``size`` = (height, width) filled with the background colour, as ``fit`` says. The object
    is found in ``photo``, the same picture in its own colours (default: ``img``): a green sole
    on pink paper stands out in colour, not always in gray. ``found``: the object's box when
    it is known already (``find_objects`` of many photos)."""
    if fit not in ("object", "digit"):
        raise ValueError(
            f"frame_image frames objects: fit must be 'object' or 'digit', not {fit!r}"
        )
    if found is None:
        found = find_object(img if photo is None else photo)
    crop = img.crop(found.box)
    height, width = size
    if fit == "object":
        inner = _fit_inside(crop, width, height)

    else:
        side = max(1, round(DIGIT_BOX * min(height, width)))
        inner = _fit_inside(crop, side, side)
    canvas = Image.new(img.mode, (width, height), found.background_in(img.mode))
    # An odd gap puts the extra pixel on the left/top (measured: Fashion-MNIST's boxes centre
    # at 13.6-13.7 of 0..27; MNIST's are centred by mass just below).
    canvas.paste(inner, ((width - inner.size[0] + 1) // 2, (height - inner.size[1] + 1) // 2))
    return canvas, found
