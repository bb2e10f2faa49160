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
    "find_dataset_spec": "sightline.data.registry",
    "list_datasets": "sightline.data.registry",
    "datasets_in": "sightline.data.builder",
    "is_dataset": "sightline.data.builder",
    "resolve_classes": "sightline.data.dataset",
    "ImageInput": "sightline.data.preprocess",
    "open_image": "sightline.data.images",
    "image_size": "sightline.data.images",
    "decode_side": "sightline.data.images",
    "MAX_PIXELS": "sightline.data.images",
    "IMAGE_EXTENSIONS": "sightline.data.images",
    "new_dataset": "sightline.data.builder",
    "class_folder": "sightline.data.builder",
    "rename_class": "sightline.data.builder",
    "add_images": "sightline.data.builder",
    "class_images": "sightline.data.builder",
    "class_image": "sightline.data.builder",
    "class_folders": "sightline.data.builder",
    "find_splits": "sightline.data.folders",
    "scan_class_folders": "sightline.data.folders",
    "list_images": "sightline.data.folders",
    "pool_folder": "sightline.data.pool",
    "waiting_files": "sightline.data.pool",
    "waiting_images": "sightline.data.info",
    "is_labels_file": "sightline.data.labels_file",
    "labels_files_in": "sightline.data.labels_file",
}

if TYPE_CHECKING:
    from sightline.data.augment import Augment
    from sightline.data.builder import (
        add_images,
        class_folder,
        class_folders,
        class_image,
        class_images,
        datasets_in,
        is_dataset,
        new_dataset,
        rename_class,
    )
    from sightline.data.dataset import Dataset, ImageSet, resolve_classes
    from sightline.data.download import CACHE_ENV, MIRROR_ENV, resolve_cache_dir, resolve_mirror
    from sightline.data.folders import find_splits, list_images, load_folder, scan_class_folders
    from sightline.data.images import (
        IMAGE_EXTENSIONS,
        MAX_PIXELS,
        decode_side,
        image_size,
        open_image,
    )
    from sightline.data.info import dataset_info, folder_info, waiting_images
    from sightline.data.labels_file import is_labels_file, labels_files_in
    from sightline.data.load import load_dataset
    from sightline.data.pool import pool_folder, waiting_files
    from sightline.data.preprocess import ImageInput, Preprocess
    from sightline.data.registry import (
        DatasetSpec,
        find_dataset_spec,
        get_dataset_spec,
        list_datasets,
    )

__all__ = [
    "add_images",
    "Augment",
    "CACHE_ENV",
    "class_folder",
    "class_folders",
    "class_image",
    "class_images",
    "Dataset",
    "dataset_info",
    "datasets_in",
    "DatasetSpec",
    "decode_side",
    "find_dataset_spec",
    "find_splits",
    "folder_info",
    "get_dataset_spec",
    "IMAGE_EXTENSIONS",
    "image_size",
    "ImageInput",
    "ImageSet",
    "is_dataset",
    "is_labels_file",
    "labels_files_in",
    "list_images",
    "list_datasets",
    "load_dataset",
    "load_folder",
    "MAX_PIXELS",
    "MIRROR_ENV",
    "new_dataset",
    "open_image",
    "pool_folder",
    "Preprocess",
    "rename_class",
    "resolve_cache_dir",
    "resolve_classes",
    "resolve_mirror",
    "scan_class_folders",
    "waiting_files",
    "waiting_images",
]

__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, __all__)
