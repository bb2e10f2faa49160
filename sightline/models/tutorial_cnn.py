"""``tutorial-cnn``: the CIFAR tutorial's network, layer for layer.

Three blocks of Conv(3x3 'same', ReLU) → BatchNorm → Conv(3x3 'valid', ReLU) → MaxPool(2) →
Dropout(0.5), with 32/64/128 filters, then Flatten → Dense(classes). For 32x32x3 input and three
classes it has the tutorial's 289,443 parameters (288,995 trainable).
"""

from __future__ import annotations

from collections import OrderedDict

from torch import nn

from sightline.models.layers import Dropout
from sightline.models.registry import register_model


def _block(c_in: int, c_out: int, dropout: float) -> nn.Sequential:
    return nn.Sequential(
        OrderedDict(
            conv1=nn.Conv2d(c_in, c_out, 3, padding=1),
            relu1=nn.ReLU(inplace=True),
            bn=nn.BatchNorm2d(c_out),
            conv2=nn.Conv2d(c_out, c_out, 3),
            relu2=nn.ReLU(inplace=True),
            pool=nn.MaxPool2d(2),
            dropout=Dropout(dropout),
        )
    )


@register_model(
    "tutorial-cnn",
    "The CIFAR tutorial's CNN: 3 blocks of Conv-BN-Conv-MaxPool-Dropout (32/64/128 filters) -> Dense.",
    train_defaults=dict(
        optimizer="adam",
        lr=1e-3,
        weight_decay=0.0,
        schedule="constant",
        warmup=0.0,
        batch_size=128,
        epochs=10,
        label_smoothing=0.0,
        translate=0,
        flip=False,
        reframe=0.0,
    ),
)
def tutorial_cnn(
    input_shape: tuple[int, int, int],
    num_classes: int,
    *,
    filters: tuple[int, ...] = (32, 64, 128),
    dropout: float = 0.5,
) -> nn.Module:
    c, h, w = input_shape
    size_h, size_w = h, w
    for _ in filters:  # 'valid' conv loses 2 pixels, pooling halves
        size_h, size_w = (size_h - 2) // 2, (size_w - 2) // 2
        if size_h < 1 or size_w < 1:
            need = 1
            for _ in filters:  # invert the shrinking: the smallest side that leaves 1 pixel
                need = 2 * need + 2
            raise ValueError(
                f"input {h}x{w} is too small for {len(filters)} conv blocks (needs at least {need}x{need} px)"
            )
    layers: OrderedDict[str, nn.Module] = OrderedDict()
    for i, f in enumerate(filters, 1):
        layers[f"block{i}"] = _block(c, f, dropout)
        c = f
    layers["flatten"] = nn.Flatten()
    layers["classifier"] = nn.Linear(c * size_h * size_w, num_classes)
    return nn.Sequential(layers)
