"""Datasets: built-in (Fashion-MNIST, MNIST, CIFAR-10) and the user's own image folders.

``load_dataset(name_or_path)`` is the entry point; everything it returns is a ``Dataset`` of
uint8 tensors with the ``Preprocess`` that turns any image into what the model saw.
"""

from sightline.data.augment import Augment
from sightline.data.dataset import Dataset, ImageSet
from sightline.data.download import CACHE_ENV, MIRROR_ENV, resolve_cache_dir, resolve_mirror
from sightline.data.folders import load_folder
from sightline.data.load import dataset_info, load_dataset
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
    "get_dataset_spec",
    "list_datasets",
    "load_dataset",
    "load_folder",
    "resolve_cache_dir",
    "resolve_mirror",
]
