"""What an ONNX export's graph computes (``ExportedClassifier``): ``batched_logits`` of the
prepared uint8 images as one traceable module, and, for a run with a "none of these" detector,
its score from the same pass (``infer.ood``). ``run/export.py`` exports it and checks it."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from sightline.data.preprocess import Preprocess


class ExportedClassifier(nn.Module):
    """uint8 (N, C, H, W) → logits: ``batched_logits`` as one traceable module; with the run's
    "none of these" detector (``infer.ood``), → (logits, ood scores), the scores computed from
    the same pass's penultimate features, as ``Detector.scores`` does."""

    def __init__(self, net: nn.Module, preprocess: Preprocess, detector: Any = None) -> None:
        super().__init__()
        self.net = net
        self.preprocess = preprocess
        self.scored = detector is not None
        self._features: dict[str, list[torch.Tensor]] = {}
        self._hooks: list[Any] = []
        self.taps: tuple[str, ...] = ()
        if detector is not None:
            from sightline.infer.ood import penultimate, pooled

            # Cholesky factors of the precisions: each distance is a squared norm, which float32
            # computes accurately (the expanded form cancels).
            def lower(p: torch.Tensor) -> torch.Tensor:
                return torch.linalg.cholesky(p.double()).float()

            self.register_buffer("ood_means", detector.means.float())
            self.register_buffer("ood_lower", lower(detector.precision))
            self.register_buffer("ood_mean0", detector.mean0.float()[None])
            self.register_buffer("ood_lower0", lower(detector.precision0))
            self.taps = tuple(detector.taps)
            for i, (m, p) in enumerate(
                zip(detector.tap_means, detector.tap_precisions, strict=True)
            ):
                self.register_buffer(f"ood_tap{i}_means", m.float())
                self.register_buffer(f"ood_tap{i}_lower", lower(p))
            if detector.zstats is not None:
                self.register_buffer("ood_zstats", detector.zstats.float())
            modules = dict(net.named_modules())
            targets = [("", penultimate(net), lambda x: x.flatten(1).float())]
            targets += [(t, modules[t], pooled) for t in self.taps]
            for name, module, read in targets:
                self._features[name] = []
                self._hooks.append(module.register_forward_pre_hook(self._keeper(name, read)))
        # The constants exactly as Preprocess.normalize computes them (same float32 ops), so the
        # graph normalises bit for bit like PyTorch does.
        self.register_buffer("mean", torch.tensor(preprocess.mean).view(1, -1, 1, 1) * 255.0)
        self.register_buffer(
            "inv_std", 1.0 / (torch.tensor(preprocess.std).view(1, -1, 1, 1) * 255.0)
        )

    def forward(self, images: torch.Tensor) -> Any:
        x = (images.float() - self.mean) * self.inv_std
        views = self.preprocess.tta_views(x)
        for kept in self._features.values():
            kept.clear()
        # One pass over the test-time views (mirror images, shifted copies) stacked: the network
        # appears once in the graph (half the export time and graph size of two calls for flips);
        # eval-mode layers treat each image on its own, so the logits are those of separate passes.
        logits = self.net(torch.cat(views) if len(views) > 1 else x).float()
        logits = logits.reshape(len(views), -1, logits.shape[-1]).mean(0)
        if not self.scored:
            return logits
        f = [self._view_mean(name, len(views)) for name in self._features]
        nearest = _squared_norms(f[0], self.ood_means, self.ood_lower).min(1).values
        overall = _squared_norms(f[0], self.ood_mean0, self.ood_lower0)[:, 0]
        score = nearest - overall
        if not self.taps:
            return logits, score
        z = self.ood_zstats
        score = (score - z[0, 0]) / z[0, 1]
        for i in range(len(self.taps)):
            means, low = getattr(self, f"ood_tap{i}_means"), getattr(self, f"ood_tap{i}_lower")
            part = _squared_norms(f[i + 1], means, low).min(1).values
            score = score + (part - z[i + 1, 0]) / z[i + 1, 1]
        return logits, score

    def _keeper(self, name: str, read: Any) -> Any:
        return lambda m, args: self._features[name].append(read(args[0]))

    def _view_mean(self, name: str, views: int) -> torch.Tensor:
        """The features a hook kept in this pass, averaged over the stacked views."""
        f = self._features[name][-1]
        return f.reshape(views, -1, f.shape[-1]).mean(0)

    def release(self) -> None:
        """Take the feature hooks off the network (it is used again after the export)."""
        for hook in self._hooks:
            hook.remove()
        self._hooks = []


def _squared_norms(f: torch.Tensor, means: torch.Tensor, lower: torch.Tensor) -> torch.Tensor:
    """(N, M) squared Mahalanobis distances, |(f - mean) L|^2 with precision = L L^T."""
    return ((f[:, None, :] - means[None]) @ lower).pow(2).sum(-1)
