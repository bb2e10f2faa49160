"""The lazily imported public API (sightline/_lazy.py) and the torch-free model registry.

The packages resolve their public names on first use so that listing datasets, models and runs
never imports PyTorch; these tests check that every public name still resolves to the same
object as an explicit import, and that the registry's source scan of the model families agrees
with what their decorators register when imported.
"""

from __future__ import annotations

import importlib
import os
import subprocess
import sys

import pytest

import sightline
import sightline.data
import sightline.models
import sightline.train
from sightline.models import registry


@pytest.mark.parametrize("package", [sightline, sightline.data, sightline.models, sightline.train])
def test_every_public_name_resolves(package):
    for name in package.__all__:
        value = getattr(package, name)
        assert value is not None, name
        assert name in dir(package)
    ns: dict = {}
    exec(f"from {package.__name__} import *", ns)  # `import *` goes through __all__
    assert set(package.__all__) <= set(ns)


def test_lazy_names_are_the_defining_modules_objects():
    from sightline.data.load import load_dataset
    from sightline.models.summary import summary
    from sightline.run import Run
    from sightline.train.api import fit

    assert sightline.load_dataset is load_dataset and sightline.fit is fit and sightline.Run is Run
    assert sightline.summary is summary and sightline.models.summary is summary  # not the submodule
    from sightline.models import summary as again

    assert again is summary


def test_submodules_and_unknown_names():
    assert sightline.plots is importlib.import_module("sightline.plots")
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        sightline.nope  # noqa: B018
    with pytest.raises(ImportError):
        from sightline import nope  # noqa: F401


def test_registry_source_scan_matches_the_decorators():
    # What `sightline models` shows without importing torch must be what the imported modules
    # register. A declaration that is not made of literals makes the scan import the module
    # (and this test fail): keep @register_model(...) arguments and builder defaults literal
    # (or module constants that are).
    for module in registry.FAMILIES:
        declared = {e.name: e for e in registry._declared(module)}
        importlib.import_module(module)
        registered = {n: e for n, e in registry._REGISTRY.items() if e.module == module}
        assert declared.keys() == registered.keys() and declared, module
        for name, entry in declared.items():
            real = registered[name]
            assert (
                entry.description,
                entry.train_defaults,
                entry.options(),
                entry.pretrained_input,
            ) == (real.description, real.train_defaults, real.options(), real.pretrained_input), (
                name
            )
            assert entry.builder is registry._BUILDERS[name]


def test_models_are_listed_without_torch_and_built_with_it():
    code = (
        "import sys\n"
        "from sightline.models import create_model, get_model_entry, list_models\n"
        "names = [e.name for e in list_models()]\n"
        "assert {'fastcnn', 'mlp', 'tutorial-cnn'} <= set(names), names\n"
        "assert get_model_entry('fastcnn').train_defaults['optimizer'] == 'sgd'\n"
        "assert 'torch' not in sys.modules\n"
        "import os; assert os.environ['MKL_CBWR']  # set before torch can load\n"
        "m = create_model('mlp', (1, 8, 8), 3, hidden=16)\n"
        "assert 'torch' in sys.modules and m.sightline_config['options'] == {'hidden': 16, 'dropout': 0.0}\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "MKL_CBWR"}
    r = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120
    )
    assert r.returncode == 0, r.stderr
