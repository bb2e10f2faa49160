"""timm backbones by name (``timm:NAME``): the entry made from timm's pretrained config, the
wrapper's features/head split and its inference copy, and pretrained weights from local files
(no test reaches the internet: the models are small and random-initialised)."""

from __future__ import annotations

import pickle

import pytest
import torch
from optional_libraries import require
from safetensors.torch import save_file

from sightline.errors import ModelError
from sightline.models import create_model, get_model_entry
from sightline.models.pretrained import local_weight_names

timm = require("timm", "timm")

SMALL = ["timm:resnet10t", "timm:mobilenetv3_small_050", "timm:vit_tiny_patch16_224"]


def test_entry_takes_the_weights_input_from_timms_pretrained_config():
    entry = get_model_entry("timm:resnet10t")
    assert entry.name == "timm:resnet10t"
    want = entry.pretrained_input
    assert want["size"] == 176 and want["channels"] == 3  # resnet10t's weights were trained at 176
    assert (
        want["mean"] == pytest.approx((0.485, 0.456, 0.406)) and want["interpolation"] == "bicubic"
    )
    assert get_model_entry("timm:vit_tiny_patch16_224").pretrained_input["mean"] == (0.5, 0.5, 0.5)
    assert {"pretrained", "weights", "drop_rate", "drop_path_rate"} <= set(entry.options())
    assert "Hugging Face" in entry.description


@pytest.mark.parametrize("name", ["timm:resnet5O", "timm:", "timm:resnet50.no_such_tag"])
def test_unknown_timm_names_are_clear_errors(name):
    with pytest.raises(ModelError, match="timm has no model"):
        get_model_entry(name)
    with pytest.raises(ModelError, match="did you mean timm:resnet50"):
        get_model_entry("timm:resnet5O")


@pytest.mark.parametrize("name", SMALL)
@pytest.mark.parametrize("channels", [1, 3])
def test_small_models_build_and_split_into_features_and_head(name, channels):
    torch.manual_seed(0)
    model = create_model(name, (channels, 32, 32), 4).eval()
    x = torch.randn(3, channels, 32, 32)
    with torch.no_grad():
        logits = model(x)
        features = model.features(x)
        assert logits.shape == (3, 4) and features.shape == (3, model.num_features)
        torch.testing.assert_close(model.head(features), logits)
        fused = model.fused()  # what predict, evaluate and frozen features run
        torch.testing.assert_close(fused(x), logits, atol=1e-4, rtol=1e-4)
        torch.testing.assert_close(fused.features(x), features, atol=1e-4, rtol=1e-4)
    assert {id(p) for p in model.classifier.parameters()} < {id(p) for p in model.parameters()}
    assert model.sightline_config["name"] == name


def _imagenet_state(arch):
    torch.manual_seed(1)
    return timm.create_model(arch).state_dict()  # 3 channels, 1000 classes, as weights come


@pytest.mark.parametrize("suffix", [".safetensors", ".pth"])
def test_weights_from_a_local_file_with_the_stem_and_head_adapted(tmp_path, suffix):
    state = _imagenet_state("resnet10t")
    path = tmp_path / f"my-weights{suffix}"
    if suffix == ".safetensors":
        save_file(state, path)
    else:  # as a training script saves them: wrapped, with DistributedDataParallel's prefix
        torch.save({"state_dict": {f"module.{k}": v for k, v in state.items()}}, path)
    model = create_model("timm:resnet10t", (1, 32, 32), 3, pretrained=True, weights=str(path))
    got = model.net.state_dict()
    torch.testing.assert_close(got["layer3.0.conv1.weight"], state["layer3.0.conv1.weight"])
    stem = state["conv1.0.weight"].sum(dim=1, keepdim=True)  # RGB summed for 1 channel
    torch.testing.assert_close(got["conv1.0.weight"], stem)
    assert got["fc.weight"].shape == (3, 512)  # a new head for 3 classes
    assert model.sightline_config["options"]["pretrained"] is True


def test_a_vit_at_a_small_size_resamples_its_position_embedding(tmp_path):
    path = tmp_path / "vit.safetensors"
    save_file(_imagenet_state("vit_tiny_patch16_224"), path)
    model = create_model(
        "timm:vit_tiny_patch16_224", (3, 32, 32), 2, pretrained=True, weights=str(path)
    )
    assert model.net.pos_embed.shape[1] == 1 + (32 // 16) ** 2
    assert model(torch.randn(1, 3, 32, 32)).shape == (1, 2)


def test_the_weights_folder_is_searched_by_the_models_name(tmp_path, monkeypatch):
    state = _imagenet_state("resnet10t")
    (tmp_path / "resnet10t").mkdir()
    save_file(state, tmp_path / "resnet10t" / "model.safetensors")  # a Hugging Face download
    monkeypatch.setenv("SIGHTLINE_WEIGHTS", str(tmp_path))
    model = create_model("timm:resnet10t.c3_in1k", (3, 32, 32), 2, pretrained=True)
    torch.testing.assert_close(model.net.state_dict()["conv1.0.weight"], state["conv1.0.weight"])
    assert "resnet10t.c3_in1k.safetensors" in local_weight_names("resnet10t.c3_in1k")


def test_missing_weights_say_where_to_put_them(tmp_path, monkeypatch):
    monkeypatch.setenv("SIGHTLINE_WEIGHTS", str(tmp_path))  # a folder without them
    with pytest.raises(ModelError, match=r"--weights /path/to/resnet10t\.safetensors") as e:
        create_model(
            "timm:resnet10t", (3, 32, 32), 2, pretrained=True
        )  # HF_HUB_OFFLINE: no download
    assert "SIGHTLINE_WEIGHTS" in str(e.value)
    with pytest.raises(ModelError, match="not found"):
        create_model("timm:resnet10t", (3, 32, 32), 2, pretrained=True, weights="/no/such.pth")


class _Boom:
    def __reduce__(self):
        return (exec, ("raise SystemExit('code ran')",))


def test_weights_files_never_run_code_and_bad_files_are_named(tmp_path):
    evil = tmp_path / "resnet10t.pth"
    evil.write_bytes(pickle.dumps({"conv1.0.weight": _Boom()}))
    with pytest.raises(ModelError, match="cannot read pretrained weights .*resnet10t.pth"):
        create_model("timm:resnet10t", (3, 32, 32), 2, pretrained=True, weights=str(evil))
    junk = tmp_path / "junk.safetensors"
    junk.write_bytes(b"not weights")
    with pytest.raises(ModelError, match="junk.safetensors"):
        create_model("timm:resnet10t", (3, 32, 32), 2, pretrained=True, weights=str(junk))
    other = tmp_path / "other.safetensors"
    save_file(_imagenet_state("mobilenetv3_small_050"), other)
    with pytest.raises(ModelError, match="do not fit timm's resnet10t"):
        create_model("timm:resnet10t", (3, 32, 32), 2, pretrained=True, weights=str(other))


def test_weights_without_pretrained_is_an_error():
    with pytest.raises(ModelError, match="goes with pretrained"):
        create_model("timm:resnet10t", (3, 32, 32), 2, weights="x.pth")


def test_the_curated_table_says_what_each_backbone_is():
    """The listing is plain data (no timm import): held to timm's own models here."""
    from sightline.models.curated import CURATED, backbones_table, listed_timm_models

    for c in CURATED:
        entry = get_model_entry(c.name)
        assert entry.pretrained_input["size"] == c.size, c.name
        with torch.device("meta"):
            model = create_model(c.name, (3, c.size, c.size), 1000)
        params = sum(p.numel() for p in model.parameters()) / 1e6
        assert params == pytest.approx(c.params_m, abs=0.05), c.name
    listed = {e.name for e in listed_timm_models()}
    assert "timm:convnext_tiny" in listed and "efficientnet-lite0" not in listed
    assert "needs pip install" in backbones_table(installed=False)
    assert "needs pip install" not in backbones_table(installed=True)


def test_sightline_models_lists_the_backbones(capsys):
    from sightline.cli import main

    assert main(["models"]) == 0
    out = capsys.readouterr().out
    assert "Backbones for transfer learning" in out and "timm:resnet50" in out
