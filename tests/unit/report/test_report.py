"""The run report: every section, images embedded, nothing fetched from the network."""

from __future__ import annotations

import re

import pytest
import torch
from PIL import Image
from test_train import make_dataset

import sightline
from sightline.cli import main
from sightline.report import SECTIONS, write_report


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    data = make_dataset(n_per_class=40, classes=3, size=16)
    torch.manual_seed(0)
    model = sightline.create_model("fastcnn", data.input_shape, data.num_classes, width=8)
    run = sightline.fit(
        model,
        data,
        epochs=2,
        batch_size=16,
        runs_dir=tmp_path_factory.mktemp("runs"),
        progress="quiet",
    )
    return run, data


def test_report_has_every_section_and_is_self_contained(trained):
    run, data = trained
    path = write_report(run, data=data)
    text = path.read_text()
    for section in SECTIONS:
        assert f'id="{section}"' in text, section
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", text)  # no external assets
    images = re.findall(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"', text)
    assert len(images) >= 10
    assert "Total params" in text and "class0" in text
    for name in (
        "curves",
        "confusion",
        "predictions",
        "top-losses",
        "activations",
        "saliency",
        "filters",
        "reliability",
    ):
        png = run.path / "plots" / f"{name}.png"
        with Image.open(png) as im:
            assert im.size[0] > 200 and im.size[1] > 100
            assert (
                max(im.convert("L").getextrema()) - min(im.convert("L").getextrema()) > 50
            )  # not blank
    assert (run.path / "evaluations" / "test.json").is_file()
    assert "expected calibration error" in text and "calibration error (ECE)" in text


def test_plot_and_report_commands(trained, tmp_path, capsys):
    run, data = trained
    write_report(run, data=data)  # the figures, drawn once (the run's data is in memory only)
    out = tmp_path / "curves.svg"
    assert main(["plot", "curves", str(run.path), "-o", str(out)]) == 0
    assert out.read_text().lstrip().startswith(("<?xml", "<svg"))
    assert main(["plot", "schedule", "--model", "fastcnn", "-o", str(tmp_path / "lr.png")]) == 0
    assert (tmp_path / "lr.png").stat().st_size > 1000
    # the figures drawn after training are current: the report needs neither the data nor a redraw
    assert main(["report", str(run.path), "-o", str(tmp_path / "r.html")]) == 0
    assert (
        "are current: reusing them" in capsys.readouterr().err
        and (tmp_path / "r.html").stat().st_size > 10_000
    )
    # drawing again needs the data, and toy data can't be reloaded by name: a clear error
    assert main(["report", str(run.path), "--redraw", "-o", str(tmp_path / "r2.html")]) == 2
    assert "in-memory Dataset ('toy')" in capsys.readouterr().err


def test_saved_figures_are_reused_only_while_current(trained, tmp_path):
    from sightline.report import cached_figures

    run, data = trained
    write_report(run, data=data)
    figs = cached_figures(sightline.load_run(run.path))
    assert figs is not None and figs.split == "test" and figs.metrics.count == len(data.test)
    # `sightline plot predictions` drew over one of the report's PNGs: draw them all again
    assert (
        main(["plot", "predictions", str(run.path), "--rows", "2", "--cols", "2"]) == 2
    )  # toy data: can't reload
    (run.path / "plots" / "predictions.png").write_bytes(
        (run.path / "plots" / "curves.png").read_bytes()
    )
    assert cached_figures(run) is None
    write_report(run, data=data)
    assert cached_figures(run) is not None
    # the history changed (training went on): stale too
    before = (run.path / "metrics.csv").read_text()
    (run.path / "metrics.csv").write_text(before + before.splitlines()[-1] + "\n")
    assert cached_figures(run) is None
    (run.path / "metrics.csv").write_text(before)
    html = write_report(run, data=data, redraw=True).read_text()
    assert "class0" in html and cached_figures(run) is not None


def test_the_report_the_plot_command_and_the_web_ui_share_one_registry_of_figures(
    trained, tmp_path
):
    from fastapi.testclient import TestClient

    from sightline.report.figures import FIGURES, caption, order
    from sightline.serve import create_app

    run, data = trained
    write_report(run, data=data)
    drawn = sorted(p.stem for p in (run.path / "plots").glob("*.png"))
    # Every figure of the registry that a convnet run has: filters, not dense weights.
    assert drawn == sorted(set(FIGURES) - {"dense-weights"})
    text = (run.path / "report.html").read_text()
    assert all(
        f"<figcaption>{caption(n)}</figcaption>" in text.replace("&#x27;", "'") for n in drawn
    )
    # `sightline plot` draws the same figure, by the same name, from the saved evaluation.
    (run.path / "plots" / "confusion-normalized.png").unlink()
    assert main(["plot", "confusion", str(run.path), "--normalize"]) == 0
    assert (run.path / "plots" / "confusion-normalized.png").is_file()
    # The run page lists the saved plots in the registry's order, with the report's captions.
    detail = TestClient(create_app(runs_dir=run.path.parent), base_url="http://127.0.0.1").get(
        f"/api/runs/{run.name}"
    )
    body = detail.json()
    assert body["plots"] == order(drawn) == [n for n in FIGURES if n in drawn]
    assert body["plot_captions"] == {n: caption(n) for n in drawn}
