"""The one preprocessing object: raw image → model input, exactly as in training.

A ``Preprocess`` is resolved from the training data (channels, size, mean/std, background
polarity), saved in every checkpoint's metadata, and used by predict, evaluate, inspect and the
server. There is no other implementation of preprocessing in sightline.

Two stages, kept apart on purpose:

* ``prepare`` (CPU, per file): decode, colour mode, framing (the whole photo resized, or the
  object found and framed as the dataset framed its items: see ``framing``), background
  polarity → uint8 (C,H,W).
  Datasets are stored at this stage, so the hot training path never touches PIL.
* ``normalize`` (any device, per batch): uint8 (N,C,H,W) → float, minus mean, over std.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, BinaryIO

import numpy as np
import torch
from PIL import Image

from sightline.data.finish import centre_of_mass_shifts, match_dark_backgrounds, shift_each
from sightline.data.framing import FITS, ObjectBox, find_objects, frame_image
from sightline.data.image_options import IMAGE_CHANNELS, INTERPOLATIONS, RESIZE_MODES
from sightline.data.images import (
    decode_side,
    normalize_mode,
    open_image,
    pil_to_tensor,
    resize_image,
)
from sightline.errors import DataError, ImageError


def check_image_options(
    channels: int | None,
    resize: str | None,
    fit: str | None = None,
    interpolation: str | None = None,
) -> None:
    """DataError for image options a dataset cannot be prepared with (None: not given): the one
    check of channels, resize, fit and interpolation for every face and loader."""
    from sightline.data.framing import FITS

    if interpolation is not None and interpolation not in INTERPOLATIONS:
        raise DataError(f"unknown interpolation {interpolation!r}: use {', '.join(INTERPOLATIONS)}")
    if fit is not None and fit not in FITS:
        raise DataError(f"unknown fit {fit!r}: use {', '.join(FITS)} (how photos are framed)")
    if resize is not None and resize not in RESIZE_MODES:
        raise DataError(f"unknown resize mode {resize!r}: use {', '.join(RESIZE_MODES)}")
    if channels is not None and (isinstance(channels, bool) or channels not in IMAGE_CHANNELS):
        raise DataError(f"channels must be 1 or 3, not {channels}")


# Images up to this size are decoded and held until their batch is framed in one pass
# (``prepare_many``); larger ones are prepared one at a time, so a batch never holds photos.
BATCH_FRAMING_PIXELS = 256 * 256
BATCH_FRAMING = 256  # small images framed in one pass at most

ImageInput = str | os.PathLike | bytes | BinaryIO | Image.Image | np.ndarray | torch.Tensor


@dataclass(frozen=True)
class Preprocess:
    """Everything needed to turn any image into what the model saw in training.

    Attributes:
        channels: 1 (grayscale) or 3 (RGB).
        size: (height, width) of the model input.
        resize: how other sizes are fitted: "squash", "crop" (centre) or "pad".
        fit: how a photo is framed before that: "frame" (the whole photo), "object" (the object
            found and filling the frame, as Fashion-MNIST made its images) or "digit" (fitted
            in 20x20 of 28x28 and centred by its centre of mass, as MNIST). Resolved from the
            dataset; see ``sightline.data.framing``.
        mean, std: per-channel statistics of the training images, in 0..1 units.
        dark_background: the training images show bright objects on black (MNIST,
            Fashion-MNIST). A photo with a light background is then inverted and its
            background levelled to black, so a boot on a white table looks like the data.
        flip_tta: the model was trained with horizontal flips, so inference averages the
            logits of each image and its mirror image (test-time augmentation: +0.2 %
            Fashion-MNIST accuracy for one more forward pass).
        shift_tta: pixels; the model was trained with random shifts, so inference also
            averages the logits of each image shifted this far diagonally, both ways (edges
            reflected): airbench's translate TTA, 3x the forward passes (6x with flip_tta).
        interpolation: how an image is resampled to ``size``: "bilinear", or "bicubic" where
            pretrained weights were trained so (timm's config says which); both antialiased.
    """

    channels: int
    size: tuple[int, int]
    resize: str = "pad"
    mean: tuple[float, ...] = field(default=(0.5,))
    std: tuple[float, ...] = field(default=(0.5,))
    dark_background: bool = False
    flip_tta: bool = False
    fit: str = "frame"
    shift_tta: int = 0
    interpolation: str = "bilinear"

    def __post_init__(self) -> None:
        if self.fit not in FITS:
            raise ValueError(f"fit must be one of {', '.join(FITS)}, not {self.fit!r}")
        if self.channels not in (1, 3):
            raise ValueError(f"channels must be 1 or 3, not {self.channels}")
        if self.interpolation not in INTERPOLATIONS:
            raise ValueError(
                f"interpolation must be one of {', '.join(INTERPOLATIONS)}, not {self.interpolation!r}"
            )
        if self.resize not in RESIZE_MODES:
            raise ValueError(
                f"resize must be one of {', '.join(RESIZE_MODES)}, not {self.resize!r}"
            )
        object.__setattr__(self, "size", tuple(int(s) for s in self.size))
        # A shift must leave part of the image; none at all (0) is always fine, also at 1 px.
        if not 0 <= int(self.shift_tta) < max(1, min(self.size) // 2):
            raise ValueError(
                f"shift_tta must be from 0 to {max(0, min(self.size) // 2 - 1)} pixels, not {self.shift_tta}"
            )
        object.__setattr__(self, "shift_tta", int(self.shift_tta))
        mean = tuple(float(m) for m in self.mean)
        std = tuple(float(s) for s in self.std)
        if len(mean) == 1 and self.channels == 3:
            mean, std = mean * 3, std * 3
        if len(mean) != self.channels or len(std) != self.channels:
            raise ValueError("mean and std need one value per channel")
        object.__setattr__(self, "mean", mean)
        object.__setattr__(self, "std", std)

    @property
    def input_shape(self) -> tuple[int, int, int]:
        return (self.channels, *self.size)

    # ----------------------------------------------------------------- serialisation
    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["size"] = list(self.size)
        d["mean"], d["std"] = list(self.mean), list(self.std)
        return d

    def tta_views(self, x: torch.Tensor) -> list[torch.Tensor]:
        """The normalised batch ``x`` (N, C, H, W) as inference sees it: ``x`` itself, then its
        shifted copies (``shift_tta``), then the mirror images of all of these (``flip_tta``).
        The model's logits are the mean over the views."""
        views = [x]
        if self.shift_tta:
            s, (h, w) = self.shift_tta, x.shape[-2:]
            padded = torch.nn.functional.pad(x, (s, s, s, s), mode="reflect")
            views += [padded[..., :h, :w], padded[..., 2 * s :, 2 * s :]]
        if self.flip_tta:
            views += [v.flip(-1) for v in views]
        return views

    @staticmethod
    def views_mean(stacked: torch.Tensor, views: int) -> torch.Tensor:
        """The mean over the views of one pass over ``tta_views`` stacked (views x N rows of
        logits or features): each image's own rows, as separate passes would give them."""
        return stacked.unflatten(0, (views, -1)).mean(0)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Preprocess:
        keys = {
            "channels",
            "size",
            "resize",
            "mean",
            "std",
            "dark_background",
            "flip_tta",
            "fit",
            "shift_tta",
            "interpolation",
        }
        return cls(**{k: v for k, v in d.items() if k in keys})

    # ----------------------------------------------------------------- stage 1: prepare
    def prepare_image(self, image: ImageInput) -> torch.Tensor:
        """One image (path, bytes or binary file object, PIL image, HxW[xC] array or CxHxW
        tensor) → uint8 tensor (C, H, W): what the model sees.

        Raises ``ImageError`` naming the file for anything unreadable.
        """
        return self.prepare_with_framing(image)[0]

    def prepare_with_framing(self, image: ImageInput) -> tuple[torch.Tensor, ObjectBox | None]:
        """``prepare_image``, and where the object was found (None for ``fit="frame"``;
        ``found`` False: no object stood out, so the whole photo was used)."""
        (out,) = self.prepare_many([image])
        if isinstance(out, ImageError):
            raise out
        return out

    def prepare_many(
        self, images: Sequence[ImageInput]
    ) -> list[tuple[torch.Tensor, ObjectBox | None] | ImageError]:
        """``prepare_with_framing`` of each image, in order, with the ``ImageError`` in place
        of an image that cannot be read. The same results as one at a time; the objects of
        same-sized photos are found in one pass (``framing.find_objects``), several times
        faster for a batch of small images."""
        out: list[tuple[torch.Tensor, ObjectBox | None] | ImageError | None] = []
        small: dict[int, Image.Image] = {}  # held until the batch is framed: small ones only
        for i, image in enumerate(images):
            try:
                opened = self._opened(image)
            except ImageError as e:
                out.append(e)
                continue
            if self.fit != "frame" and opened.width * opened.height <= BATCH_FRAMING_PIXELS:
                out.append(None)
                small[i] = opened
                if len(small) == BATCH_FRAMING:
                    self._frame_held(small, out)
            else:  # a photo is framed at once: a batch of them would hold them all decoded
                out.append(self._prepare_opened([opened])[0])
        self._frame_held(small, out)
        return out  # type: ignore[return-value]

    def _frame_held(self, held: dict[int, Image.Image], out: list[Any]) -> None:
        """Prepare the held small images into their places in ``out``, and let them go."""
        for i, prepared in zip(held, self._prepare_opened(list(held.values())), strict=True):
            out[i] = prepared
        held.clear()

    def _prepare_opened(
        self, opened: list[Image.Image]
    ) -> list[tuple[torch.Tensor, ObjectBox | None]]:
        if self.fit == "frame":
            return [self._prepare_frame(o) for o in opened]
        # The object is found in the photo's own colours, framed in the model's.
        photos = [o if o.mode in ("L", "RGB") else normalize_mode(o, 3) for o in opened]
        return self._prepare_objects(photos, find_objects(photos))

    def _opened(self, image: ImageInput) -> Image.Image:
        if isinstance(image, (str, os.PathLike, bytes, bytearray, memoryview)) or hasattr(
            image, "read"
        ):
            # A file, or the bytes of one (an upload): same guards, decoded as large as used.
            return open_image(image, max_side=decode_side(self.size))
        if isinstance(image, torch.Tensor):
            return _tensor_to_pil(image)
        if isinstance(image, np.ndarray):
            return _array_to_pil(image)
        return image

    def _prepare_frame(self, image: Image.Image) -> tuple[torch.Tensor, None]:
        img = normalize_mode(image, self.channels)
        # Pad with the photo's own background (white stays white), so padding never adds a
        # frame; for dark-background models the inversion below then turns it black.
        fill = 255 if _border_level(img) > 127 else 0
        if self.channels == 3:
            fill = (fill,) * 3
        img = resize_image(img, self.size, self.resize, fill=fill, interpolation=self.interpolation)
        x = pil_to_tensor(img)
        if self.dark_background:
            x = match_dark_backgrounds(x[None])[0]
        return x, None

    def _prepare_objects(
        self, photos: list[Image.Image], found: list[ObjectBox]
    ) -> list[tuple[torch.Tensor, ObjectBox]]:
        """Frame each photo around its object (``found``) in the model's colours, then finish
        the batch at once (``finish.py``): background polarity and contrast, a digit's centre
        of mass."""
        canvases, levels = [], []
        for photo, box in zip(photos, found, strict=True):
            img = normalize_mode(photo, self.channels)
            canvases.append(np.asarray(frame_image(img, self.size, self.fit, photo, box)[0]))
            colour = box.background_in(img.mode)
            levels.append(sum(colour) / 3 if isinstance(colour, tuple) else float(colour))
        if not canvases:
            return []
        stacked = torch.from_numpy(np.stack(canvases))  # (N, H, W) or (N, H, W, 3)
        x = stacked[:, None] if stacked.ndim == 3 else stacked.permute(0, 3, 1, 2).contiguous()
        level = np.array(levels)
        if self.dark_background:
            # The object's own contrast is kept ("object"): Fashion-MNIST's items are as light
            # or dark as the products were; a digit's ink is stretched to full, as MNIST's is.
            x = match_dark_backgrounds(x, level, stretch=self.fit == "digit")
            level = np.zeros_like(level)
        if self.fit == "digit":
            ink = x.float().mean(1) - torch.from_numpy(level.astype(np.float32))[:, None, None]
            dy, dx = centre_of_mass_shifts(ink.abs().numpy())
            x = shift_each(x, dy, dx, fill=np.round(level).astype(np.int64))
        return list(zip(x.unbind(0), found, strict=True))

    def prepare(self, images: Iterable[ImageInput]) -> torch.Tensor:
        """Many images → uint8 batch (N, C, H, W). Raises on the first bad file."""
        xs = []
        for out in self.prepare_many(list(images)):
            if isinstance(out, ImageError):
                raise out
            xs.append(out[0])
        if not xs:
            return torch.empty((0, *self.input_shape), dtype=torch.uint8)
        return torch.stack(xs)

    # ----------------------------------------------------------------- stage 2: normalize
    def normalize(self, x: torch.Tensor) -> torch.Tensor:
        """uint8 (N, C, H, W) on any device → float32 normalised, on the same device."""
        mean, inv_std = self.scaling(x.device)
        return (x.float() - mean) * inv_std

    def scaling(self, device: torch.device | str = "cpu") -> tuple[torch.Tensor, torch.Tensor]:
        """``normalize``'s (mean x 255, 1 / (std x 255)), (1, C, 1, 1) tensors on ``device``."""
        return _scaling(tuple(self.mean), tuple(self.std), torch.device(device))

    def denormalize(self, x: torch.Tensor) -> torch.Tensor:
        """Inverse of ``normalize``, back to float 0..255 (for pictures of model inputs)."""
        mean = torch.tensor(self.mean, device=x.device).view(1, -1, 1, 1)
        std = torch.tensor(self.std, device=x.device).view(1, -1, 1, 1)
        return (x * std + mean) * 255.0

    def __call__(self, images: ImageInput | Sequence[ImageInput]) -> torch.Tensor:
        """Prepare and normalize: images → float model input (N, C, H, W)."""
        if isinstance(images, (str, os.PathLike, Image.Image)) or (
            isinstance(images, (np.ndarray, torch.Tensor)) and images.ndim <= 3
        ):
            images = [images]
        return self.normalize(self.prepare(images))


# ----------------------------------------------------------------------- helpers
@functools.lru_cache(maxsize=64)
def _scaling(
    mean: tuple[float, ...], std: tuple[float, ...], device: torch.device
) -> tuple[torch.Tensor, torch.Tensor]:
    """``normalize``'s (mean x 255, 1 / (std x 255)) as (1, C, 1, 1) tensors on ``device``, made
    once. Why: a tensor made from Python numbers is copied to the GPU, and that copy waits for
    everything queued there; once per training batch it kept the host from queueing the next
    step while the GPU ran this one (~1 ms lost a step on an H200 at batch 1024)."""
    with torch.inference_mode(False):  # usable in any mode later, autograd included
        m = torch.tensor(mean, device=device).view(1, -1, 1, 1) * 255.0
        inv = 1.0 / (torch.tensor(std, device=device).view(1, -1, 1, 1) * 255.0)
    return m, inv


def _border_level(img: Image.Image) -> float:
    """Median brightness of the outermost pixels: the background, for most photos."""
    a = np.asarray(img.convert("L"), dtype=np.uint8)
    border = np.concatenate([a[0], a[-1], a[:, 0], a[:, -1]])
    return float(np.median(border))


def _array_to_pil(a: np.ndarray) -> Image.Image:
    if a.ndim == 3 and a.shape[2] == 1:
        a = a[:, :, 0]
    if a.dtype != np.uint8:
        a = np.asarray(a, dtype=np.float64)
        if a.max(initial=0) <= 1.0:  # 0..1 floats, as the tutorials use
            a = a * 255.0
        a = np.clip(np.rint(a), 0, 255).astype(np.uint8)
    return Image.fromarray(a)


def _tensor_to_pil(t: torch.Tensor) -> Image.Image:
    t = t.detach().cpu()
    if t.ndim == 3:  # C,H,W → H,W,C
        t = t.permute(1, 2, 0)
    return _array_to_pil(t.numpy())
