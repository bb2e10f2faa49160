"""Any timm architecture by name: ``timm:NAME`` (``timm:convnext_tiny``, ``timm:resnet50``,
``timm:vit_small_patch16_224``, a tagged ``timm:resnet50.a1_in1k``), built by timm itself.

Why timm: it is where the field keeps its backbones (over a thousand, with ImageNet weights and
their input configs), and fastai and most classification code build on it. sightline adds
what its other faces need and nothing else:

* an entry per name (``timm_entry``), made from timm's pretrained config: the input the weights
  expect (size, mean/std, interpolation) becomes the run's ``Preprocess`` as with
  EfficientNet-Lite, so predict, export, calibration, the unknown score, saliency and
  activations work for every backbone;
* a thin wrapper (``TimmNet``) with the split every frozen-features and fine-tuning path uses:
  ``features`` (the pooled pre-logits), ``head`` and ``classifier``;
* weights from where the user keeps them (``--weights FILE``, ``$SIGHTLINE_WEIGHTS``), read as
  tensors only, else timm's own download and cache (``models/pretrained.py`` holds the rules).

timm (and torchvision, which it imports) is optional: ``pip install "sightline[timm]"``.
"""

from __future__ import annotations

import difflib
import functools
from typing import TYPE_CHECKING, Any

from sightline.errors import ModelError
from sightline.models.registry import ModelEntry

if TYPE_CHECKING:
    import torch
    from torch import nn

PREFIX = "timm:"
INSTALL_HINT = 'pip install "sightline[timm]"'
# Where a timm architecture has no pretrained config: timm's own defaults.
IMAGENET_INPUT = dict(size=224, channels=3, mean=(0.485, 0.456, 0.406), std=(0.229, 0.224, 0.225))
# The settings transfer from ImageNet weights starts from (as for EfficientNet-Lite): AdamW with
# a short warmup, so the new head settles before large gradients reach the pretrained blocks.
TRAIN_DEFAULTS: dict[str, object] = dict(optimizer="adamw", lr=1e-3, weight_decay=0.01, schedule="cosine",
                                         warmup=0.1, batch_size=64, epochs=3, label_smoothing=0.1, translate=0)  # fmt: skip
OPTIONS: dict[str, object] = dict(pretrained=False, weights="", drop_rate=0.0, drop_path_rate=0.0)


def is_timm_name(name: object) -> bool:
    return isinstance(name, str) and name.startswith(PREFIX)


def import_timm() -> Any:
    """The timm module, or ModelError saying how to install it."""
    try:
        import timm
    except ImportError as e:
        raise ModelError(
            f"timm models need timm and torchvision ({e}); install them with: {INSTALL_HINT}"
        ) from None
    return timm


def architecture(name: str) -> str:
    """``timm:resnet50.a1_in1k`` → ``resnet50.a1_in1k`` (what timm calls it)."""
    return name[len(PREFIX) :] if is_timm_name(name) else name


@functools.cache
def timm_entry(name: str) -> ModelEntry:
    """The registry entry of ``timm:NAME``; ModelError for a name timm does not have (with the
    nearest names it has)."""
    arch = architecture(name)
    timm = import_timm()
    if not arch or not timm.is_model(arch):
        near = difflib.get_close_matches(arch.split(".")[0], timm.list_models(), n=5, cutoff=0.6)
        hint = f"; did you mean {', '.join(PREFIX + n for n in near)}?" if near else ""
        raise ModelError(
            f"timm has no model {arch!r}{hint} (all names: python -c "
            f"\"import timm; print(timm.list_models('*{arch.split('.')[0][:6]}*'))\")"
        )
    try:
        cfg = timm.get_pretrained_cfg(arch)
    except RuntimeError as e:  # a tag the architecture does not have
        base = arch.split(".")[0]
        tags = [n for n in timm.list_pretrained(f"{base}.*")][:8]
        raise ModelError(
            f"timm has no model {arch!r} ({e}); its weights: {', '.join(PREFIX + t for t in tags) or 'none'}"
        ) from None
    source = weights_source(cfg)
    return ModelEntry(
        name=PREFIX + arch,
        description=f"timm's {arch}; pretrained=True loads {source}",
        train_defaults=dict(TRAIN_DEFAULTS),
        module=__name__,
        option_defaults=dict(OPTIONS),
        pretrained_input=pretrained_input(cfg),
    )


def pretrained_input(cfg: Any) -> dict[str, object]:
    """What the weights of timm pretrained config ``cfg`` expect, in the registry's terms."""
    if cfg is None:
        return dict(IMAGENET_INPUT, interpolation="bicubic")
    c, h, w = cfg.input_size
    return dict(
        size=h if h == w else [h, w],
        channels=c,
        mean=tuple(float(m) for m in cfg.mean),
        std=tuple(float(s) for s in cfg.std),
        interpolation=cfg.interpolation
        if cfg.interpolation in ("bilinear", "bicubic")
        else "bicubic",
    )


def weights_source(cfg: Any) -> str:
    """Where timm downloads the weights of pretrained config ``cfg`` from, in words."""
    if cfg is None:
        return "no weights (timm has none for it: train from scratch or give --weights FILE)"
    if cfg.hf_hub_id:
        return f"the weights {cfg.hf_hub_id} from the Hugging Face Hub"
    return f"the weights at {cfg.url}" if cfg.url else "no weights timm can download"


def build(
    name: str,
    input_shape: tuple[int, int, int],
    num_classes: int,
    *,
    pretrained: bool = False,
    weights: str = "",
    drop_rate: float = 0.0,
    drop_path_rate: float = 0.0,
) -> nn.Module:
    """timm's ``NAME`` for ``input_shape`` (C, H, W) and ``num_classes``, wrapped as a
    ``TimmNet``. ``pretrained``: start from ImageNet weights (``weights``: a local file of them;
    else ``$SIGHTLINE_WEIGHTS`` or timm's own download); the stem is adapted to the input's
    channels and a new head made for ``num_classes`` by timm's own loader."""
    from sightline.models.timm_net import TimmNet

    timm = import_timm()
    arch = architecture(name)
    c, h, w = input_shape
    if not 0.0 <= drop_rate < 1.0 or not 0.0 <= drop_path_rate < 1.0:
        raise ValueError(
            f"drop_rate and drop_path_rate must be in [0, 1), got {drop_rate}, {drop_path_rate}"
        )
    if weights and not pretrained:
        raise ValueError("weights is a file of pretrained weights: it goes with pretrained=true")
    kwargs: dict[str, Any] = dict(num_classes=num_classes, in_chans=c)
    if drop_rate:
        kwargs["drop_rate"] = drop_rate
    if drop_path_rate:
        kwargs["drop_path_rate"] = drop_path_rate
    cfg = timm.get_pretrained_cfg(arch)
    if cfg is not None and cfg.fixed_input_size and (h, w) != tuple(cfg.input_size[1:]):
        kwargs["img_size"] = (h, w)  # a ViT's patch grid; pretrained position embeddings resampled
    if pretrained:
        state = local_state_dict(arch, weights)
        if state is not None:
            kwargs["pretrained_cfg_overlay"] = dict(state_dict=state)
    try:
        net = timm.create_model(arch, pretrained=pretrained, **kwargs)
    except (TypeError, ValueError, AssertionError, RuntimeError) as e:
        if pretrained and "pretrained_cfg_overlay" in kwargs:
            raise ValueError(f"the weights do not fit timm's {arch}: {e}") from None
        raise ValueError(f"timm cannot build {arch} so: {e}") from None
    except Exception as e:  # noqa: BLE001 - a download that failed (offline, no such file)
        if not pretrained:
            raise
        raise ModelError(missing_weights_message(arch, e)) from None
    return TimmNet(net)


def local_state_dict(arch: str, weights: str = "") -> dict[str, torch.Tensor] | None:
    """The weights the user keeps for ``arch``: the file ``weights``, else one found through
    ``$SIGHTLINE_WEIGHTS``; None when neither names any (timm downloads them then)."""
    from sightline.models.pretrained import find_local_weights, read_state_dict

    path = find_local_weights(arch, weights)
    return None if path is None else read_state_dict(path)


def missing_weights_message(arch: str, error: BaseException) -> str:
    from sightline.models.pretrained import WEIGHTS_ENV, local_weight_names

    names = " or ".join(local_weight_names(arch)[:2])
    return (
        f"no pretrained weights for timm's {arch}: timm's download failed "
        f"({type(error).__name__}: {str(error)[:300]}). Without the internet, bring the file:\n"
        f"  --weights /path/to/{names}   (a safetensors or PyTorch state dict)\n"
        f"  export {WEIGHTS_ENV}=/path/to/folder   (holding {names})\n"
        f"  or fill timm's cache (~/.cache/huggingface) on a machine that has the internet"
    )
