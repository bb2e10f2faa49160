"""Metrics against hand-computed values."""

from __future__ import annotations

import pytest
import torch

from sightline.infer.metrics import compute_metrics

CLASSES = ["cat", "dog", "T-shirt/top"]


def onehot_logits(preds):
    return torch.nn.functional.one_hot(torch.tensor(preds), 3).float() * 10


def test_hand_computed_example():
    labels = torch.tensor([0, 0, 0, 1, 1, 2])
    preds = [0, 0, 1, 1, 2, 2]
    m = compute_metrics(onehot_logits(preds), labels, CLASSES)
    assert m.accuracy == pytest.approx(4 / 6, abs=1e-6)
    assert m.confusion == [[2, 1, 0], [0, 1, 1], [0, 0, 1]]  # rows true, columns predicted
    assert m.precision == pytest.approx([1.0, 0.5, 0.5])
    assert m.recall == pytest.approx([2 / 3, 0.5, 1.0])
    assert m.f1[0] == pytest.approx(2 * 1.0 * (2 / 3) / (1 + 2 / 3), abs=1e-6)
    assert m.support == [3, 2, 1]
    assert m.count == 6


def test_loss_is_mean_cross_entropy():
    logits = torch.randn(20, 3, generator=torch.Generator().manual_seed(0))
    labels = torch.randint(0, 3, (20,), generator=torch.Generator().manual_seed(1))
    m = compute_metrics(logits, labels, CLASSES)
    assert m.loss == pytest.approx(
        torch.nn.functional.cross_entropy(logits, labels).item(), abs=1e-5
    )
    assert torch.allclose(m.probabilities.sum(1), torch.ones(20))


def test_perfect_and_all_wrong():
    labels = torch.tensor([0, 1, 2, 1])
    assert compute_metrics(onehot_logits([0, 1, 2, 1]), labels, CLASSES).accuracy == 1.0
    wrong = compute_metrics(onehot_logits([1, 2, 0, 0]), labels, CLASSES)
    assert wrong.accuracy == 0.0 and wrong.f1 == [0.0, 0.0, 0.0]


def test_top_k_and_zero_support_class():
    logits = torch.tensor([[3.0, 2.0, 1.0, 0.0], [0.0, 1.0, 3.0, 2.0]])
    labels = torch.tensor([1, 1])
    m = compute_metrics(logits, labels, ["a", "b", "c", "d"], top_k=(1, 2, 3))
    assert m.accuracy == 0.0 and m.top_k == {"top2": 0.5, "top3": 1.0}
    assert m.support == [0, 2, 0, 0] and m.precision[0] == 0.0 and m.recall[0] == 0.0


def test_table_and_dict():
    m = compute_metrics(onehot_logits([0, 1, 2]), torch.tensor([0, 1, 1]), CLASSES)
    table = m.format_table()
    assert "T-shirt/top" in table and "confusion matrix" in table and "accuracy: 0.6667" in table
    d = m.to_dict()
    # T-shirt/top has no image here: no per-class row, left out of the macro average, named
    assert [r["class"] for r in d["per_class"]] == CLASSES[:2] and d["absent_classes"] == [
        "T-shirt/top"
    ]
    assert d["confusion_matrix"][1] == [0, 1, 1] and len(d["confusion_matrix"]) == 3
    assert d["macro_recall"] == pytest.approx((1.0 + 0.5) / 2)  # not (1 + 0.5 + 0) / 3
    assert "not in this data (left out of the averages): T-shirt/top" in table
    assert "predictions" not in d
