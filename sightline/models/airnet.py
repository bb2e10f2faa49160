"""``airnet``: an airbench-style CNN — a whitened-patch stem and wide conv groups.

After Keller Jordan's CIFAR-10 speedruns (github.com/KellerJordan/cifar10-airbench), sized for
sightline's small images. What each piece buys:
* Patch-whitening stem: a 2x2 convolution whose filters are the training images' patch
  covariance eigenvectors, scaled to unit variance (and their negatives, so the GELU after it
  sees both signs). It is computed once from the data (``init_from_data``, called by ``fit``)
  and frozen: the next layer starts from decorrelated inputs, which is what lets a small net
  train in a few epochs at a high learning rate. Its bias learns in the first 3 epochs only
  (airbench's): afterwards the backward pass stops at the first conv group.
* Conv groups (conv → max pool → BN → GELU → conv → BN → GELU): pooling right after the
  first conv runs the second one on a quarter of the pixels; width doubles per group.
* BatchNorm with momentum 0.4 (PyTorch's 0.1 lags behind weights that move fast over a few
  epochs), global max pooling head, no bias on the classifier.

``airbench=True`` adds airbench94's parametrization, which is what makes its network learn in
a few hundred steps: identity-initialised convolutions, BatchNorms without a learned scale whose
biases learn 64x faster (``norm_bias_lr_scale``, read by ``train.optim.param_groups``), logits
scaled by 1/9 and a harder whitening. It is the Fashion-MNIST default
(``registry.DATASET_DEFAULT_MODELS``).

Measurements: benchmarks/README.md ("airnet: measurements").
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from sightline.models.registry import register_model

WHITEN_KERNEL = 2  # px: the stem's patch size (airbench's)
WHITEN_EPS = 1e-2  # added to the patch covariance's eigenvalues: keeps pixel noise from blowing up
# The stem's bias learns in the first epochs only (airbench's whiten_bias_train_steps): after
# that no gradient flows below the first conv group, ~7 % of a CPU step (train.optim.limit_learning).
WHITEN_BIAS_EPOCHS = 3
# airbench94's parametrization (``airbench=True``), its numbers:
AIRBENCH_WHITEN_EPS = 5e-4  # whiten the low-variance patch directions harder
# BatchNorm biases learn this much faster (their scale is not learned)
AIRBENCH_BIAS_LR_SCALE = 64.0
AIRBENCH_LOGIT_SCALE = 1 / 9  # the logits' temperature


class Whitening(nn.Conv2d):
    """The frozen patch-whitening convolution. Until ``init_from_data`` it is the identity on
    each pixel of a patch (a harmless start); ``initialized`` travels in the state dict, so a
    checkpoint or a resumed run never recomputes it."""

    def __init__(self, channels: int, kernel: int = WHITEN_KERNEL, eps: float = WHITEN_EPS) -> None:
        dims = channels * kernel * kernel
        super().__init__(channels, 2 * dims, kernel, padding=0, bias=True)
        self.eps = eps
        self.register_buffer("initialized", torch.zeros((), dtype=torch.bool))
        with torch.no_grad():
            eye = torch.eye(dims).view(dims, channels, kernel, kernel)
            self.weight.copy_(torch.cat([eye, -eye]))
            self.bias.zero_()
        self.weight.requires_grad_(False)

    @torch.no_grad()
    def init_from_data(self, images: torch.Tensor) -> None:
        """Set the filters from normalised float images (N, C, H, W) on any device."""
        k, c = self.kernel_size[0], self.in_channels
        x = images.detach().to("cpu", torch.float64)
        patches = x.unfold(2, k, 1).unfold(3, k, 1).permute(0, 2, 3, 1, 4, 5).reshape(-1, c * k * k)
        eigenvalues, eigenvectors = torch.linalg.eigh(torch.cov(patches.T))
        filters = (eigenvectors / torch.sqrt(eigenvalues.clamp(min=0) + self.eps)).T
        filters = filters.reshape(-1, c, k, k).to(self.weight.dtype)
        self.weight.copy_(torch.cat([filters, -filters]).to(self.weight.device))
        self.initialized.fill_(True)


class ConvGroup(nn.Module):
    def __init__(self, c_in: int, c_out: int, airbench: bool = False) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, c_out, 3, padding=1, bias=False)
        self.pool = nn.MaxPool2d(2)
        self.bn1 = _batchnorm(c_out, airbench)
        self.act1 = nn.GELU()
        self.conv2 = nn.Conv2d(c_out, c_out, 3, padding=1, bias=False)
        self.bn2 = _batchnorm(c_out, airbench)
        self.act2 = nn.GELU()
        if airbench:
            # Identity-initialised convolutions (the first filters pass their input channel
            # through): a deep net of them starts as a shallow one and trains at once.
            for conv in (self.conv1, self.conv2):
                with torch.no_grad():
                    w = conv.weight
                    nn.init.dirac_(w[: min(w.size(0), w.size(1))])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.act1(self.bn1(self.pool(self.conv1(x))))
        return self.act2(self.bn2(self.conv2(x)))


def _batchnorm(channels: int, airbench: bool) -> nn.BatchNorm2d:
    if not airbench:
        return nn.BatchNorm2d(channels, momentum=0.4)
    # airbench's BatchNorm: no learned scale (the next conv's weights carry it; one fewer thing
    # for a short run to tune), a bias that learns at AIRBENCH_BIAS_LR_SCALE x the lr.
    bn = nn.BatchNorm2d(channels, momentum=0.4, eps=1e-12)
    bn.weight.requires_grad_(False)
    return bn


class Scale(nn.Module):
    """Multiplies by a constant: airbench's logit temperature (1/9), which keeps a few
    high-lr epochs from making the logits overconfident."""

    def __init__(self, factor: float) -> None:
        super().__init__()
        self.factor = factor

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.factor

    def extra_repr(self) -> str:
        return f"factor={self.factor:g}"


class AirNet(nn.Sequential):
    def init_from_data(self, images: torch.Tensor) -> None:
        """Whiten the stem on normalised training images, once: a no-op after the first call
        and for weights loaded from a checkpoint."""
        if not bool(self.whiten.initialized):
            self.whiten.init_from_data(images)


@register_model(
    "airnet",
    "airbench-style CNN: frozen patch-whitening stem from the data, GELU conv groups. The Fashion-MNIST default (93.3 % in 5 epochs with photo re-framing; 94.75 % in 15 without, 3 min on 2 AMX CPU cores); widths=[64,256,256] for full CIFAR-10 (94 %).",
    # Fashion-MNIST, 2 CPU cores: lr 0.3 at batch 128 with one-cycle warm-up, label smoothing
    # 0.2 (airbench's; 0.1 is for the shorter fastcnn runs), flips and flip TTA.
    train_defaults=dict(
        optimizer="sgd",
        lr=0.3,
        momentum=0.9,
        nesterov=True,
        weight_decay=5e-4,
        schedule="onecycle",
        warmup=0.2,
        batch_size=128,
        epochs=5,
        label_smoothing=0.2,
        translate=0,
    ),
)
def airnet(
    input_shape: tuple[int, int, int],
    num_classes: int,
    *,
    width: int = 32,
    groups: int = 3,
    widths: Sequence[int] | str | None = None,
    airbench: bool = False,
) -> nn.Module:
    """``width`` doubling over ``groups`` conv groups (32, 64, 128 by default), or the groups'
    ``widths`` spelled out (e.g. ``[64, 256, 256]``, airbench94's; "64,256,256" from a CLI).
    ``airbench=True``: airbench94's parametrization on top (identity-initialised convs,
    BatchNorms without a learned scale whose biases learn 64x faster, logits scaled by 1/9, a
    harder whitening); its recipe (``cifar10-airbench``) sets the optimizer to match."""
    c, h, w = input_shape
    sizes = _group_widths(width, groups, widths)
    if min(h, w) - WHITEN_KERNEL + 1 < 2 ** len(sizes):
        need = 2 ** len(sizes) + WHITEN_KERNEL - 1
        raise ValueError(
            f"input {h}x{w} is too small for {len(sizes)} groups (needs at least {need}x{need} px; "
            f"use fewer groups or larger images)"
        )
    model = AirNet()
    if airbench:
        model.norm_bias_lr_scale = (
            AIRBENCH_BIAS_LR_SCALE  # read by sightline.train.optim.param_groups
        )
    model.add_module("whiten", Whitening(c, eps=AIRBENCH_WHITEN_EPS if airbench else WHITEN_EPS))
    model.add_module("act", nn.GELU())
    # Read by train.optim.limit_learning: the filters never learn (computed from the data, even
    # when fine-tuning's head_epochs make the rest trainable again), the bias for a few epochs.
    model.learns_for_epochs = {"whiten.weight": 0, "whiten.bias": WHITEN_BIAS_EPOCHS}
    channels = model.whiten.out_channels
    for i, out in enumerate(sizes, start=1):
        model.add_module(f"group{i}", ConvGroup(channels, out, airbench))
        channels = out
    model.add_module("pool", nn.AdaptiveMaxPool2d(1))
    model.add_module("flatten", nn.Flatten())
    model.add_module("classifier", nn.Linear(channels, num_classes, bias=False))
    # What the "none of these" score reads besides the penultimate features (infer/ood.py): the
    # output of every group but the first, as the inputs of the modules after them.
    model.ood_taps = tuple(f"group{i}.conv1" for i in range(3, len(sizes) + 1)) + (
        ("pool",) if len(sizes) > 1 else ()
    )
    if airbench:
        model.add_module("temperature", Scale(AIRBENCH_LOGIT_SCALE))
    return model


def _group_widths(width: int, groups: int, widths: Sequence[int] | str | None) -> list[int]:
    if widths is None:
        if width < 4 or groups < 1:
            raise ValueError(f"width must be >= 4 and groups >= 1 (got {width}, {groups})")
        return [width * 2**i for i in range(groups)]
    try:
        sizes = [int(v) for v in (widths.split(",") if isinstance(widths, str) else widths)]
    except (TypeError, ValueError):
        sizes = []
    if not sizes or min(sizes) < 4:
        raise ValueError(
            f"widths must be channel counts >= 4, one per conv group, e.g. 64,256,256 (got {widths!r})"
        )
    return sizes
