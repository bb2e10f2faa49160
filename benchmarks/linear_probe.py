"""Linear probe of EfficientNet-Lite0's frozen ImageNet features: checks the port is right.

A wrong detail of a weights port (padding, input normalisation) does not crash anything; it
just makes the features worse. So: frozen features of CIFAR-10 airplane/automobile/bird (the
first 200 training images of each class, all 3,000 test images), bilinearly upsampled from
32 px, and a logistic-regression head fitted on them (full-batch L-BFGS); its test accuracy,
per padding/normalisation variant, is the measure. The issue measured 96.8 % (224 px) and
93.2 % (128 px) with correct weights.

Features are cached per variant in --cache, so each variant costs its extraction once (about
5 min at 224 px on 2 busy CPU cores). Needs the weights (see sightline.models.pretrained) and the
CIFAR-10 files (a mirror in $SIGHTLINE_DATA_MIRROR, or a download).

    .venv/bin/python benchmarks/linear_probe.py --size 224 --padding same --norm tf
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch
import torch.nn.functional as F  # noqa: N812

import sightline
from sightline.models import create_model
from sightline.models.efficientnet import PRETRAINED_INPUT, Conv2dSame

CLASSES = ["airplane", "automobile", "bird"]
NORMS = {
    "tf": (PRETRAINED_INPUT["mean"], PRETRAINED_INPUT["std"]),
    "imagenet": ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225)),
}


def probe_data(
    per_class: int = 200,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """(train images, labels, test images, labels): uint8 32 px, the first ``per_class``
    training images of each class."""
    ds = sightline.load_dataset("cifar10", classes=CLASSES, val_split=0, progress=False)
    keep = torch.cat(
        [torch.nonzero(ds.train.labels == c).flatten()[:per_class] for c in range(len(CLASSES))]
    )
    return ds.train.images[keep], ds.train.labels[keep], ds.test.images, ds.test.labels


def extract(
    model: torch.nn.Module, images: torch.Tensor, size: int, norm: str, batch: int = 64
) -> torch.Tensor:
    """Pooled features of uint8 images, upsampled to ``size`` and normalised by ``norm``."""
    mean, std = (torch.tensor(v).view(1, 3, 1, 1) for v in NORMS[norm])
    out = []
    with torch.inference_mode():
        for i in range(0, len(images), batch):
            x = images[i : i + batch].float() / 255
            x = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False)
            x = ((x - mean) / std).contiguous(memory_format=torch.channels_last)
            out.append(model.features(x))
    return torch.cat(out)


def fit_probe(
    train: torch.Tensor, y: torch.Tensor, steps: int = 300, l2: float = 1e-3
) -> torch.nn.Linear:
    """Multinomial logistic regression on standardised features (the standardisation folded
    into the returned Linear), L2-regularised, by full-batch L-BFGS."""
    mu, sd = train.mean(0), train.std(0) + 1e-6
    z = (train - mu) / sd
    head = torch.nn.Linear(train.shape[1], int(y.max()) + 1)
    torch.nn.init.zeros_(head.weight)
    torch.nn.init.zeros_(head.bias)
    opt = torch.optim.LBFGS(
        head.parameters(), lr=1, max_iter=steps, history_size=20, line_search_fn="strong_wolfe"
    )

    def closure() -> torch.Tensor:
        opt.zero_grad()
        loss = F.cross_entropy(head(z), y) + l2 * head.weight.square().sum()
        loss.backward()
        return loss

    opt.step(closure)
    with torch.no_grad():  # fold the standardisation: W((x - mu) / sd) + b
        head.bias -= (head.weight * (mu / sd)).sum(1)
        head.weight /= sd
    return head


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--padding", choices=("same", "symmetric"), default="same")
    parser.add_argument("--norm", choices=tuple(NORMS), default="tf")
    parser.add_argument("--cache", type=Path, default=Path("/tmp/sightline-probe"))
    args = parser.parse_args()
    file = args.cache / f"lite0-{args.size}-{args.padding}-{args.norm}.pt"
    if file.is_file():
        feats = torch.load(file, weights_only=True)
    else:
        model = create_model(
            "efficientnet-lite0", (3, args.size, args.size), 1000, pretrained=True
        ).eval()
        for m in model.modules():
            if isinstance(m, Conv2dSame):
                m.tf_same = args.padding == "same"
        model = model.to(memory_format=torch.channels_last)
        xtr, ytr, xte, yte = probe_data()
        t0 = time.perf_counter()
        feats = {
            "train": extract(model, xtr, args.size, args.norm),
            "ytrain": ytr,
            "test": extract(model, xte, args.size, args.norm),
            "ytest": yte,
        }
        dt = time.perf_counter() - t0
        print(
            f"extracted {len(xtr) + len(xte)} images in {dt:.0f} s ({(len(xtr) + len(xte)) / dt:.1f} images/s)"
        )
        args.cache.mkdir(parents=True, exist_ok=True)
        torch.save(feats, file)
    head = fit_probe(feats["train"], feats["ytrain"])
    with torch.no_grad():
        acc = (head(feats["test"]).argmax(1) == feats["ytest"]).float().mean().item()
    print(
        f"size {args.size}  padding {args.padding:<9}  norm {args.norm:<8}  test accuracy {100 * acc:.2f} %"
    )


if __name__ == "__main__":
    main()
