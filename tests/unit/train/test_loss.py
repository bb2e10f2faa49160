"""Imbalance fixed, not just reported: class weights in the loss where the classes are
imbalanced (the check's rule), said in the plan's notes, off on request; balanced accuracy in
every evaluation."""

from __future__ import annotations

import torch
import torch.nn.functional as F  # noqa: N812

import sightline
from sightline.data.dataset import Dataset, ImageSet, channel_stats
from sightline.data.preprocess import Preprocess
from sightline.plan.config import resolve_config
from sightline.plan.resolve import TrainRequest, complete, resolve, settle
from sightline.train.loss import batch_loss, class_weights, loss_sums


def test_class_weights_are_balanced_and_average_one_over_the_training_images():
    labels = torch.tensor([0] * 90 + [1] * 10)
    w = class_weights(labels, 3)  # class 2 has no images: no weight
    assert torch.allclose(w, torch.tensor([100 / 180, 100 / 20, 0.0]))
    assert torch.isclose(w[labels].mean(), torch.tensor(1.0))
    assert torch.equal(class_weights(torch.tensor([0, 1, 1, 0]), 2), torch.ones(2))


def test_the_weighted_loss_weighs_each_image_by_its_class_and_reports_the_plain_one():
    torch.manual_seed(0)
    logits, y = torch.randn(8, 3), torch.tensor([0, 0, 0, 0, 0, 1, 1, 2])
    w = torch.tensor([0.5, 2.0, 4.0])
    plain = F.cross_entropy(logits, y, label_smoothing=0.1, reduction="none")
    loss, reported = batch_loss(logits, y, 0.1, w)
    assert torch.isclose(loss, (plain * w[y]).mean()) and torch.isclose(reported, plain.sum())
    unweighted, reported = batch_loss(logits, y, 0.1, None)
    assert torch.isclose(unweighted, plain.mean()) and torch.isclose(reported, plain.sum())
    summed, reported = loss_sums(logits, y, 0.1, torch.ones(3))  # weights of 1: the plain loss
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
    (note,) = [n["text"] for n in plan.notes if n["text"].startswith("class weights")]
    assert "common has 400 training images, rare only 20 (20x)" in note and "--no-balance" in note
    told = complete(
        resolve(TrainRequest(data, "mlp", train_options={"balance": False})), data, net
    )
    assert told.config.balance is False
    assert any("no class weights, as asked" in n["text"] for n in told.notes)
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
