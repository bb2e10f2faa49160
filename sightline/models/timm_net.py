"""``TimmNet``: a timm model with the split sightline's transfer paths use (see timm_models.py)."""

from __future__ import annotations

import copy

import torch
from torch import nn


class TimmNet(nn.Module):
    """timm model ``net`` as sightline's other pretrained models are: ``features`` (N, D) the
    pooled pre-logits (what a frozen backbone's cache holds), ``head`` features → logits,
    ``classifier`` the head's module (fine-tuning's discriminative learning rates and gradual
    unfreezing find it), ``num_features`` D. ``forward`` is timm's own; ``fused`` the inference
    copy predict, evaluate and frozen features run."""

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net
        if not isinstance(net.get_classifier(), nn.Module):  # a distilled ViT's two heads
            raise ValueError(f"{type(net).__name__} has no single classifier module")

    @property
    def classifier(self) -> nn.Module:
        return self.net.get_classifier()

    @property
    def num_features(self) -> int:
        # Some heads widen the pooled features first (MobileNetV3's conv_head): what
        # ``features`` gives is the head's input, timm's head_hidden_size.
        return int(getattr(self.net, "head_hidden_size", None) or self.net.num_features)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.net.forward_head(self.net.forward_features(x), pre_logits=True)

    def head(self, features: torch.Tensor) -> torch.Tensor:
        return self.classifier(features)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)

    def fused(self) -> FusedTimmNet:
        """An inference-only copy: the backbone with each BatchNorm folded into its convolution
        (``models/fold.py``, traced as ``features``), the same classifier. This model is left as
        it is."""
        from sightline.models.fold import fold_batchnorms

        net = copy.deepcopy(self.net).eval()
        body = fold_batchnorms(_Features(net))
        return FusedTimmNet(body, net.get_classifier(), self.num_features).eval()


class _Features(nn.Module):
    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net.forward_head(self.net.forward_features(x), pre_logits=True)


class FusedTimmNet(nn.Module):
    """``TimmNet.fused``'s copy: ``body`` gives the features, ``classifier`` the logits."""

    def __init__(self, body: nn.Module, classifier: nn.Module, num_features: int) -> None:
        super().__init__()
        self.body = body
        self.classifier = classifier
        self.num_features = num_features

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)

    def head(self, features: torch.Tensor) -> torch.Tensor:
        return self.classifier(features)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))
