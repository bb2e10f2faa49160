"""Test-time views in ``batched_logits``: a small batch runs all its views in one forward pass
(a server's few requests), a large one a view at a time (its memory); both give the same
logits and "none of these" features."""

from __future__ import annotations

import pytest
import torch

from sightline.data.preprocess import Preprocess
from sightline.infer import batched
from sightline.infer.batched import batched_logits
from sightline.infer.ood import stage_taps
from sightline.models.registry import create_model

PRE = Preprocess(1, (28, 28), "pad", mean=(0.3,), std=(0.35,), flip_tta=True, shift_tta=1)


@pytest.fixture(scope="module")
def model() -> torch.nn.Module:
    torch.manual_seed(0)
    net = create_model("fastcnn", (1, 28, 28), 10, width=8).eval()
    with torch.no_grad():  # BatchNorm statistics unlike the identity: a real check
        for m in net.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.uniform_(-0.5, 0.5)
                m.running_var.uniform_(0.5, 2.0)
    return net


def forward_calls(model: torch.nn.Module, run) -> tuple[int, object]:
    calls = [0]
    hook = model.register_forward_pre_hook(lambda m, a: calls.__setitem__(0, calls[0] + 1))
    try:
        out = run()
    finally:
        hook.remove()
    return calls[0], out


def test_small_batches_run_their_views_together_with_the_same_answers(model, monkeypatch):
    images = torch.randint(0, 256, (40, 1, 28, 28), dtype=torch.uint8)
    taps = stage_taps(model)
    views = len(PRE.tta_views(torch.zeros(1, 1, 28, 28)))
    assert views == 6 and taps  # three positions, each mirrored; stages to read

    def run(batch_size: int):
        return batched_logits(model, images, PRE, "cpu", batch_size=batch_size, features=taps)

    together, (logits, feats) = forward_calls(model, lambda: run(4))
    assert together == 10  # 4 images x 6 views <= JOINT_VIEWS: one pass a batch
    monkeypatch.setattr(batched, "JOINT_VIEWS", 0)
    apart, (want_logits, want_feats) = forward_calls(model, lambda: run(4))
    assert apart == 60  # a view at a time
    assert torch.allclose(logits, want_logits, atol=1e-5)
    assert torch.allclose(feats, want_feats, atol=1e-5)
    monkeypatch.undo()
    large, (big_logits, _) = forward_calls(model, lambda: run(1000))
    assert large == views and torch.allclose(big_logits, want_logits, atol=1e-5)
