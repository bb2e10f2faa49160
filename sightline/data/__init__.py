"""Datasets: built-in (Fashion-MNIST, MNIST, CIFAR-10) and the user's own image folders.

``load_dataset(name_or_path)`` is the entry point; everything it returns is a ``Dataset`` of
uint8 tensors with the ``Preprocess`` that turns any image into what the model saw.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from sightline._lazy import lazy_exports

# Imported on first use (see sightline/_lazy.py): most of these need PyTorch, while listing the
# built-in datasets (registry, download) does not.
_EXPORTS = {
    "Augment": "sightline.data.augment",
    "Dataset": "sightline.data.dataset",
    "ImageSet": "sightline.data.dataset",
    "CACHE_ENV": "sightline.data.download",
    "MIRROR_ENV": "sightline.data.download",
    "resolve_cache_dir": "sightline.data.download",
    "resolve_mirror": "sightline.data.download",
    "load_folder": "sightline.data.folders",
    "dataset_info": "sightline.data.info",
    "folder_info": "sightline.data.info",
    "load_dataset": "sightline.data.load",
    "Preprocess": "sightline.data.preprocess",
    "DatasetSpec": "sightline.data.registry",
    "get_dataset_spec": "sightline.data.registry",
    "list_datasets": "sightline.data.registry",
}

if TYPE_CHECKING:
    from sightline.data.augment import Augment
    from sightline.data.dataset import Dataset, ImageSet
    from sightline.data.download import CACHE_ENV, MIRROR_ENV, resolve_cache_dir, resolve_mirror
    from sightline.data.folders import load_folder
    from sightline.data.info import dataset_info, folder_info
    from sightline.data.load import load_dataset
    from sightline.data.preprocess import Preprocess
    from sightline.data.registry import DatasetSpec, get_dataset_spec, list_datasets

__all__ = [
    "CACHE_ENV",
    "MIRROR_ENV",
    "Augment",
    "Dataset",
    "DatasetSpec",
    "ImageSet",
    "Preprocess",
    "dataset_info",
    "folder_info",
    "get_dataset_spec",
    "list_datasets",
    "load_dataset",
    "load_folder",
    "resolve_cache_dir",
    "resolve_mirror",
]

__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, __all__)
