"""The fold models (a linear head and a nearest-neighbour vote on features) fit side by side,
one a core: the same bits as one after another, and no draw from the global generator that the
fits running beside each other would share."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from sightline.health import features
from sightline.health.labels import HEAD_DECAY, fold_threads


def blobs(n: int = 300, k: int = 4, dim: int = 32) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    y = torch.randint(0, k, (n,), generator=g)
    return torch.randn(n, dim, generator=g) + 4 * F.one_hot(y, dim).float(), y


def test_side_by_side_gives_the_same_bits_as_one_after_another(monkeypatch):
    x, y = blobs()
    fold = torch.arange(len(y)) % 5
    answers = {}
    with fold_threads():
        for cores in (1, 3):
            monkeypatch.setattr(features, "cpu_cores", lambda cores=cores: cores)
            answers[cores] = features.out_of_fold(x, y, 4, fold, HEAD_DECAY)
    assert torch.equal(answers[1], answers[3])
    assert float((answers[3].argmax(1) == y).float().mean()) > 0.8  # the folds learnt


def test_a_fit_leaves_the_global_generator_alone():
    x, y = blobs(100)
    torch.manual_seed(1)
    expected = torch.rand(3)
    torch.manual_seed(1)
    features.head_and_vote(F.normalize(x, dim=1), y, F.normalize(x[:5], dim=1), 4, HEAD_DECAY, 7)
    assert torch.equal(torch.rand(3), expected)
