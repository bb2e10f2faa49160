"""Imbalance fixed, not just reported: the logit-adjusted loss where the classes are imbalanced
(the check's rule), said in the plan's notes, off on request; balanced accuracy in every
evaluation."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F  # noqa: N812

import sightline
from sightline.data.dataset import Dataset, ImageSet, channel_stats
from sightline.data.preprocess import Preprocess
from sightline.plan.config import resolve_config
from sightline.plan.resolve import TrainRequest, complete, resolve, settle
from sightline.train.loss import batch_loss, logit_adjustment, loss_sums


def test_the_adjustment_is_the_log_of_each_classs_share_centred():
    labels = torch.tensor([0] * 90 + [1] * 10)
    a = logit_adjustment(labels, 3)  # class 2 has no images: the rarest's share
    assert torch.allclose(a - a.mean(), a, atol=1e-6)
    assert torch.isclose(a[0] - a[1], torch.tensor(math.log(9.0)))
    assert torch.isclose(a[2], a[1])
    assert torch.allclose(logit_adjustment(torch.tensor([0, 1, 1, 0]), 2), torch.zeros(2))


def test_the_adjusted_loss_adds_the_adjustment_to_the_logits_and_reports_the_plain_one():
    torch.manual_seed(0)
    logits, y = torch.randn(8, 3), torch.tensor([0, 0, 0, 0, 0, 1, 1, 2])
    a = torch.tensor([0.5, -0.2, -0.3])
    plain = F.cross_entropy(logits, y, label_smoothing=0.1, reduction="none")
    adjusted = F.cross_entropy(logits + a, y, label_smoothing=0.1, reduction="none")
    loss, reported = batch_loss(logits, y, 0.1, a)
    assert torch.isclose(loss, adjusted.mean()) and torch.isclose(reported, plain.sum())
    unadjusted, reported = batch_loss(logits, y, 0.1, None)
    assert torch.isclose(unadjusted, plain.mean()) and torch.isclose(reported, plain.sum())
    summed, reported = loss_sums(logits, y, 0.1, torch.zeros(3))  # no shift: the plain loss
    assert torch.isclose(summed, plain.sum()) and torch.isclose(reported, plain.sum())


def blobs(counts: list[int], seed: int = 0) -> ImageSet:
    """Two overlapping classes: a brighter or darker square in the middle, with noise."""
    g = torch.Generator().manual_seed(seed)
    labels = torch.cat([torch.full((n,), c) for c, n in enumerate(counts)])
    images = torch.randint(0, 120, (len(labels), 1, 8, 8), generator=g).float()
    images[:, :, 2:6, 2:6] += 40 + 25 * labels.float()[:, None, None, None]
    return ImageSet(images.clamp(0, 255).to(torch.uint8), labels)


def imbalanced(train=(400, 20), test=(200, 200)) -> Dataset:
    tr, va, te = blobs(list(train)), blobs([40, 40], seed=1), blobs(list(test), seed=2)
    mean, std = channel_stats(tr.images)
    pre = Preprocess(channels=1, size=(8, 8), mean=mean, std=std, dark_background=True)
    return Dataset("skewed", ["common", "rare"], tr, va, te, pre, flip=False)


def test_the_plan_weighs_imbalanced_classes_says_so_and_leaves_them_when_told():
    data = imbalanced()
    net = sightline.create_model("mlp", data.input_shape, 2, hidden=16)
    plan = complete(resolve(TrainRequest(data, "mlp")), data, net)
    assert plan.config.balance is True
    (note,) = [n["text"] for n in plan.notes if n["text"].startswith("a loss for imbalanced")]
    assert "common has 400 training images, rare only 20 (20x)" in note and "--no-balance" in note
    told = complete(resolve(TrainRequest(data, "mlp", train_options={"balance": False})), data, net)
    assert told.config.balance is False
    assert any("the plain loss, as asked" in n["text"] for n in told.notes)
    even = imbalanced(train=(100, 30))  # 3.3x: under the rule's 5x
    assert settle(resolve_config({}), even).balance is False


def test_weighted_training_recognises_the_rare_class(tmp_path):
    data = imbalanced()
    runs = {}
    for balance in (True, False):
        torch.manual_seed(0)
        model = sightline.create_model("mlp", data.input_shape, 2, hidden=16)
        run = sightline.fit(model, data, name=f"balance-{balance}", runs_dir=tmp_path, epochs=8,
                            batch_size=32, optimizer="adam", lr=3e-3, balance=balance,
                            progress="quiet")  # fmt: skip
        runs[balance] = run.evaluate(data, split="test")
    weighted, plain = runs[True], runs[False]
    assert plain.recall[1] < 0.5 < weighted.recall[1]  # the rare class, learned only weighted
    assert weighted.balanced_accuracy > plain.balanced_accuracy + 0.05
    assert weighted.to_dict()["balanced_accuracy"] == round(weighted.balanced_accuracy, 6)
    assert "balanced accuracy:" in weighted.format_table()
