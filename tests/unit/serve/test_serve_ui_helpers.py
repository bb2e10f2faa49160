"""The pieces under the web UI's API, without a server: the core functions it added
(``Metrics.samples``, ``key_layers``, ``inspect_image(prepared=True)``), zip expansion, the
bounded data cache and the PNG drawing helpers."""

from __future__ import annotations

import io
import threading
import time
import zipfile

import numpy as np
import pytest
import torch
from PIL import Image

import sightline
from sightline.infer.metrics import compute_metrics
from sightline.inspect import inspect_image, key_layers, leaf_names, map_mosaic
from sightline.serve.services.images import (
    bar_strip,
    colorize,
    image_row,
    mosaic_image,
    saliency_overlay,
    scale_for,
    thumbnail,
)
from sightline.serve.services.uploads import ArchiveTooLarge, expand_uploads

pytest.importorskip("fastapi")

from sightline.serve.services.data_cache import BoundedCache  # noqa: E402


# ---------------------------------------------------------------------------- Metrics.samples
def metrics():
    logits = torch.tensor([[3.0, 0, 0], [0, 2, 0], [0, 5, 0], [1, 0, 0], [0, 0, 1], [0.5, 0, 0]])
    labels = torch.tensor([0, 1, 0, 0, 2, 1])
    return compute_metrics(logits, labels, ["a", "b", "c"])


def test_samples_filter_a_confusion_cell_and_order_them():
    m = metrics()
    count, rows = m.samples(true=0)
    assert count == 3 and [r["index"] for r in rows] == [2, 0, 3]  # surest first
    assert rows[0] == {
        "index": 2,
        "true": 0,
        "true_label": "a",
        "pred": 1,
        "pred_label": "b",
        "confidence": rows[0]["confidence"],
        "loss": rows[0]["loss"],
    }
    assert rows[0]["confidence"] > 0.9 and rows[0]["loss"] > 4
    assert m.samples(true=0, pred=1)[0] == m.confusion[0][1] == 1
    assert m.samples(pred=0)[0] == sum(row[0] for row in m.confusion)
    losses = [r["loss"] for r in m.samples(order="loss")[1]]
    assert losses == sorted(losses, reverse=True)
    count, rows = m.samples(order="random", seed=1, limit=4)
    assert count == 6 and len(rows) == 4 and rows == m.samples(order="random", seed=1, limit=4)[1]
    assert sorted(r["index"] for r in m.samples(order="random", seed=2)[1]) == list(range(6))


def test_samples_refuse_bad_arguments():
    m = metrics()
    with pytest.raises(ValueError, match="true=3 is not a class index"):
        m.samples(true=3)
    with pytest.raises(ValueError, match="unknown order"):
        m.samples(order="best")
    m.labels = None
    with pytest.raises(ValueError, match="no per-image results"):
        m.samples()


# ---------------------------------------------------------------------------- inspect
def test_key_layers_keep_the_logits_and_spread_the_convolutions():
    model = sightline.create_model("fastcnn", (1, 16, 16), 3, width=8)
    names = leaf_names(model)
    assert key_layers(model, names, limit=len(names)) == names
    chosen = key_layers(model, names, limit=6)
    assert (
        len(chosen) == 6
        and chosen[-1] == "classifier"
        and chosen == [n for n in names if n in chosen]
    )
    assert chosen[0] == "stage1.conv.conv" and all("conv" in n for n in chosen[:-1])
    few = key_layers(model, names, limit=2)
    assert few == ["stage4.conv.relu", "classifier"]


def test_inspect_a_prepared_image_uses_it_as_is():
    torch.manual_seed(0)
    model = sightline.create_model("fastcnn", (1, 16, 16), 3, width=8).eval()
    pre = sightline.data.Preprocess(1, (16, 16), dark_background=True)
    x = torch.randint(0, 255, (1, 16, 16), dtype=torch.uint8)
    result = inspect_image(model, pre, x, prepared=True)
    assert torch.equal(result.input, x)
    expected = model(pre.normalize(x[None])).softmax(1)[0]
    assert result.probabilities == pytest.approx(expected.tolist(), abs=1e-5)
    with pytest.raises(
        sightline.errors.ModelError, match="prepared image is a uint8 tensor of shape"
    ):
        inspect_image(model, pre, x.float(), prepared=True)


def test_map_mosaic_stays_importable_from_the_figures_module():
    from sightline.inspect import plots as inspect_plots

    assert inspect_plots.map_mosaic is map_mosaic


# ---------------------------------------------------------------------------- zip uploads
def zipped(members: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        for name, body in members.items():
            z.writestr(name, body)
    return buf.getvalue()


def test_zips_are_expanded_in_place_and_junk_is_skipped():
    items = expand_uploads(
        [
            ("a.png", b"A"),
            (
                "z.zip",
                zipped(
                    {
                        "x/1.png": b"1",
                        "__MACOSX/x/._1.png": b"j",
                        "x/.DS_Store": b"j",
                        "2.jpg": b"2",
                        "x/deep/3.gif": b"3",
                    }
                ),
            ),
            ("b.png", b"B"),
        ],
        1000,
    )
    assert [(i.name, i.data) for i in items] == [
        ("a.png", b"A"),
        ("z.zip/x/1.png", b"1"),
        ("z.zip/2.jpg", b"2"),
        ("z.zip/x/deep/3.gif", b"3"),
        ("b.png", b"B"),
    ]


def test_archive_limits():
    with pytest.raises(ArchiveTooLarge, match="at most 8 x the upload limit"):
        expand_uploads([("z.zip", zipped({"a": b"\0" * 5000, "b": b"\0" * 5000}))], 1000)
    with pytest.raises(ArchiveTooLarge, match="at most 5,000"):
        expand_uploads([("z.zip", zipped({f"{i}": b"" for i in range(5001)}))], 10**6)
    # the limit is over all archives of a request, not per archive
    half = zipped(
        {"a": b"\0" * 900, "b": b"\0" * 900, "c": b"\0" * 900, "d": b"\0" * 900, "e": b"\0" * 900}
    )
    expand_uploads([("1.zip", half)], 1000)
    with pytest.raises(ArchiveTooLarge):
        expand_uploads([("1.zip", half), ("2.zip", half)], 1000)


def test_a_member_that_lies_about_its_size_is_never_read_past_it():
    data = bytearray(zipped({"a.png": b"\0" * 100_000}))
    # shrink the declared size in the central directory (offset 24 of its entry): zipfile reads
    # only what is declared, and the CRC check then names the member as unreadable
    cd = data.rfind(b"PK\x01\x02")
    data[cd + 24 : cd + 28] = (10).to_bytes(4, "little")
    items = expand_uploads([("lie.zip", bytes(data))], 1000)
    assert len(items) == 1 and items[0].data is None and "Bad CRC" in items[0].error


def test_a_broken_or_empty_archive_is_a_bad_item():
    assert (
        "not a readable zip"
        in expand_uploads([("b.zip", zipped({"a": b"a"})[:-10])], 1000)[0].error
    )
    assert "holds no files" in expand_uploads([("e.zip", zipped({}))], 1000)[0].error


# ---------------------------------------------------------------------------- the data cache
def test_bounded_cache_is_lru_reloads_on_a_new_stamp_and_loads_once():
    cache = BoundedCache(2)
    loads = []

    def loader(value):
        def load():
            loads.append(value)
            time.sleep(0.05)
            return value

        return load

    threads = [threading.Thread(target=cache.get, args=("a", 1, loader("a1"))) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert loads == ["a1"]
    cache.get("b", 1, loader("b1"))
    assert cache.get("a", 1, loader("never")) == "a1"  # a hit: "a" is now the most recent
    cache.get("c", 1, loader("c1"))
    assert cache.keys() == ["a", "c"]  # "b" was the least recently used
    assert cache.get("a", 2, loader("a2")) == "a2"  # the data changed: loaded again
    with pytest.raises(ValueError):
        BoundedCache(0)


# ---------------------------------------------------------------------------- pictures
def test_pictures():
    assert (
        scale_for((16, 16), 112) == 7
        and scale_for((300, 200), 56) == 1
        and scale_for((2, 2), 112) == 8
    )
    rgb = colorize(np.array([[0.0, 1.0, np.nan]]), "viridis")
    assert (
        rgb.shape == (1, 3, 3)
        and tuple(rgb[0, 2]) == (255, 255, 255)
        and tuple(rgb[0, 1]) == (253, 231, 37)
    )
    assert thumbnail(torch.zeros(1, 28, 28, dtype=torch.uint8)).size == (56, 56)
    assert thumbnail(torch.zeros(3, 224, 224, dtype=torch.uint8)).size == (64, 64)
    seen = torch.zeros(3, 8, 8, dtype=torch.uint8)
    over = saliency_overlay(seen, torch.linspace(0, 1, 64).view(8, 8), scale=4)
    assert over.size == (32, 32) and over.mode == "RGB"
    mosaic = mosaic_image(map_mosaic(torch.rand(5, 4, 4), cols=4), 4)
    assert mosaic.size[0] > 4 * 4 and np.asarray(mosaic).dtype == np.uint8
    large = mosaic_image(
        map_mosaic(torch.rand(32, 112, 112), cols=8), 112
    )  # shrunk to ~48 px a map
    assert 8 * 48 <= large.width <= 8 * 56 and large.height <= 4 * 56
    strip = np.asarray(bar_strip(torch.tensor([1.0, -1.0, 0.5])))
    assert strip.shape == (48, 36, 3)
    assert tuple(strip[0, 0]) == (76, 114, 176) and tuple(strip[-1, 12]) == (
        196,
        78,
        82,
    )  # up and down
    assert bar_strip(torch.randn(5000)).width == 768
    row = image_row([Image.new("L", (10, 10)), Image.new("RGB", (20, 5))], cell=20)
    assert row.size == (42, 20)
