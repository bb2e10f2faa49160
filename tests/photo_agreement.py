"""How a run sees photos of test items (tests/photo_generator.py) compared with the items
themselves: used by the integration tests of the default runs. Test code: sightline never
imports it."""

from __future__ import annotations

from dataclasses import replace

from photo_generator import photos

from sightline.infer.predict import predict_tensor

N = 500  # test items photographed
BASELINE_N = 100  # of them, also predicted the old way (the whole photo scaled): a sanity check


def agreement(run, seed: int = 7) -> tuple[float, float]:
    """(share of N test items whose photo gets the same class as the original image, the
    same share for the first BASELINE_N photos when the whole photo is scaled instead of
    framed, as sightline did before framing)."""
    items = run.data.test.images[:N]
    originals = run.predict(items).argmax(1)
    shots = [s.data for s in photos(items[:, 0].numpy(), seed=seed)]
    framed = run.predict(shots).argmax(1)
    assert run.preprocess.fit == run.data.preprocess.fit != "frame"
    old = predict_tensor(
        run.load_model(), replace(run.preprocess, fit="frame"), shots[:BASELINE_N]
    ).argmax(1)
    return (framed == originals).float().mean().item(), (
        old == originals[:BASELINE_N]
    ).float().mean().item()


def folder_matches_predict(run, root, n: int = 200, seed: int = 11) -> tuple[int, float]:
    """Photos of the first ``n`` test items saved as a labelled folder (one subfolder per class),
    then scored twice: ``run.evaluate(folder)`` and ``run.predict_files`` on the same files.
    Returns (files whose two answers differ, the evaluation's accuracy)."""
    import re

    items, labels = run.data.test.images[:n], run.data.test.labels[:n].tolist()
    for i, (shot, label) in enumerate(
        zip(photos(items[:, 0].numpy(), seed=seed), labels, strict=True)
    ):
        folder = root / re.sub(r"[^0-9A-Za-z]+", "-", run.classes[label])
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"{i:04d}.{'jpg' if shot.style.jpeg else 'png'}").write_bytes(shot.data)
    evaluated = run.evaluate(str(root), save=False)
    files = [str(f) for d in sorted(root.iterdir()) for f in sorted(d.iterdir())]
    # the class each file is answered with ("unknown" answers still name their closest class)
    answers = {p.path: p.closest for p in run.predict_files([str(root)]).predictions}
    differ = sum(
        run.classes[e] != answers[f]
        for e, f in zip(evaluated.predictions.tolist(), files, strict=True)
    )
    return differ, evaluated.accuracy
