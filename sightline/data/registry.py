"""The built-in datasets: what their files are, where they come from, how to read them.

Each ``DatasetSpec`` pins the canonical files by md5, so a cached, mirrored or downloaded copy is
used only when it is byte-exact. The cache and mirror share one layout: ``<folder>/<filename>``
(for CIFAR-10 ``cifar-10/cifar-10-batches-bin/<member>``), so a cache folder can serve as a
mirror for another machine.
"""

from __future__ import annotations

from dataclasses import dataclass

from sightline.errors import DataError


@dataclass(frozen=True)
class DataFile:
    """One canonical file: its name, md5 and size in bytes."""

    filename: str
    md5: str
    size: int


@dataclass(frozen=True)
class DatasetSpec:
    """A built-in dataset.

    Attributes:
        name: canonical name (``fashion-mnist``).
        aliases: other accepted names (matched case-insensitively).
        classes: class names, index = label.
        shape: (C, H, W) of one image as stored.
        files: the files the loader reads, each with md5 and size.
        urls: base URLs tried in order; a file's URL is ``base + filename`` (or ``archive_url``).
        flip: horizontal flips are a label-preserving augmentation (never for digits).
        dark_background: bright objects on black, as in MNIST.
        resize: how other image sizes are fitted at prediction time.
        format: ``"idx"`` (gzip IDX image/label pairs) or ``"cifar-bin"`` (3073-byte records).
        folder: where the files live under a cache or mirror root.
        train_files / test_files: the filenames that make up each split, in order.
        archive: for CIFAR-10, the tarball the files are extracted from when downloaded.
        archive_url: the archive's URL.
        archive_folder: the folder holding the members inside the archive.
        num_train / num_test: samples per split.
        fit: how an outside photo is framed to look like this data ("frame", "object", "digit").
    """

    name: str
    aliases: tuple[str, ...]
    classes: tuple[str, ...]
    shape: tuple[int, int, int]
    files: tuple[DataFile, ...]
    urls: tuple[str, ...]
    flip: bool
    dark_background: bool
    resize: str
    format: str
    folder: str
    train_files: tuple[str, ...]
    test_files: tuple[str, ...]
    num_train: int
    num_test: int
    description: str = ""
    archive: DataFile | None = None
    archive_url: str | None = None
    archive_folder: str | None = None
    fit: str = "frame"  # how an outside photo is framed to look like this data (see data.framing)

    def file(self, filename: str) -> DataFile:
        for f in self.files:
            if f.filename == filename:
                return f
        raise KeyError(filename)

    @property
    def download_size(self) -> int:
        """Bytes fetched from the network for a fresh download."""
        if self.archive is not None:
            return self.archive.size
        return sum(f.size for f in self.files)


_IDX_TRAIN = ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz")
_IDX_TEST = ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz")


def _idx_files(md5s_and_sizes: list[tuple[str, int]]) -> tuple[DataFile, ...]:
    names = _IDX_TRAIN + _IDX_TEST
    return tuple(
        DataFile(n, md5, size) for n, (md5, size) in zip(names, md5s_and_sizes, strict=True)
    )


FASHION_MNIST = DatasetSpec(
    name="fashion-mnist",
    aliases=("fashion_mnist", "fmnist"),
    classes=(
        "T-shirt/top",
        "Trouser",
        "Pullover",
        "Dress",
        "Coat",
        "Sandal",
        "Shirt",
        "Sneaker",
        "Bag",
        "Ankle boot",
    ),
    shape=(1, 28, 28),
    files=_idx_files(
        [
            ("8d4fb7e6c68d591d4c3dfef9ec88bf0d", 26421880),
            ("25c81989df183df01b3e8a0aad5dffbe", 29515),
            ("bef4ecab320f06d8554ea6380940ec79", 4422102),
            ("bb300cfdad3c16e7a12a480ee83cd310", 5148),
        ]
    ),
    urls=(
        "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
        "https://storage.googleapis.com/tensorflow/tf-keras-datasets/",
    ),
    flip=True,
    dark_background=True,
    resize="pad",
    fit="object",  # its pipeline trimmed each product photo to the product and filled the frame
    format="idx",
    folder="fashion-mnist",
    train_files=_IDX_TRAIN,
    test_files=_IDX_TEST,
    num_train=60000,
    num_test=10000,
    description="Zalando's 28x28 grayscale clothing images (Xiao et al. 2017)",
)

MNIST = DatasetSpec(
    name="mnist",
    aliases=(),
    classes=tuple(str(i) for i in range(10)),
    shape=(1, 28, 28),
    files=_idx_files(
        [
            ("f68b3c2dcbeaaa9fbdd348bbdeb94873", 9912422),
            ("d53e105ee54ea40749a09fcbcd1e9432", 28881),
            ("9fb629c4189551a2d022fa330f9573f3", 1648877),
            ("ec29112dd5afa0611ce80d1b7f02629c", 4542),
        ]
    ),
    urls=(
        "https://ossci-datasets.s3.amazonaws.com/mnist/",
        "https://storage.googleapis.com/cvdf-datasets/mnist/",
    ),
    flip=False,  # a mirrored 2 is not a 2
    dark_background=True,
    resize="pad",
    fit="digit",  # digits fitted in 20x20 and centred by their centre of mass
    format="idx",
    folder="mnist",
    train_files=_IDX_TRAIN,
    test_files=_IDX_TEST,
    num_train=60000,
    num_test=10000,
    description="handwritten digits, 28x28 grayscale (LeCun et al. 1998)",
)

_CIFAR_TRAIN = tuple(f"data_batch_{i}.bin" for i in range(1, 6))
_CIFAR_MEMBER_SIZE = 10000 * 3073

CIFAR10 = DatasetSpec(
    name="cifar10",
    aliases=("cifar-10", "cifar"),
    classes=(
        "airplane",
        "automobile",
        "bird",
        "cat",
        "deer",
        "dog",
        "frog",
        "horse",
        "ship",
        "truck",
    ),
    shape=(3, 32, 32),
    files=tuple(
        DataFile(n, md5, _CIFAR_MEMBER_SIZE)
        for n, md5 in [
            ("data_batch_1.bin", "5dd7e06a14cb22eb9f671a540d1b7c25"),
            ("data_batch_2.bin", "5ea93a67294ea407fff1d09f752e9692"),
            ("data_batch_3.bin", "942cd6a4bcdd0dd3c604fbe906cb4421"),
            ("data_batch_4.bin", "ae636b3ba5c66a11e91e8cb52e771fcb"),
            ("data_batch_5.bin", "53f37980c15c3d472c316c40844f3f0d"),
            ("test_batch.bin", "803d5f7f4d78ea53de84dbe85f74fb6d"),
        ]
    ),
    urls=("https://www.cs.toronto.edu/~kriz/",),
    flip=True,
    dark_background=False,
    resize="crop",  # photos: fill the frame rather than add borders
    format="cifar-bin",
    folder="cifar-10/cifar-10-batches-bin",
    train_files=_CIFAR_TRAIN,
    test_files=("test_batch.bin",),
    num_train=50000,
    num_test=10000,
    description="32x32 colour photos in 10 classes (Krizhevsky 2009)",
    archive=DataFile("cifar-10-binary.tar.gz", "c32a1d4ab5d03f1284b67883e8d87530", 170052171),
    archive_url="https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz",
    archive_folder="cifar-10-batches-bin",
)

DATASETS: dict[str, DatasetSpec] = {s.name: s for s in (FASHION_MNIST, MNIST, CIFAR10)}


def list_datasets() -> list[str]:
    """Canonical names of the built-in datasets."""
    return list(DATASETS)


def find_dataset_spec(name: str) -> DatasetSpec | None:
    """The spec for a name or alias (case-insensitive), or None."""
    key = name.strip().lower()
    for spec in DATASETS.values():
        if key == spec.name or key in spec.aliases:
            return spec
    return None


def get_dataset_spec(name: str) -> DatasetSpec:
    """The spec for a name or alias; DataError listing the valid names otherwise."""
    spec = find_dataset_spec(name)
    if spec is None:
        raise DataError(f"unknown dataset {name!r}; built-in datasets are: {_names_with_aliases()}")
    return spec


def _names_with_aliases() -> str:
    parts = []
    for s in DATASETS.values():
        parts.append(f"{s.name} (also {', '.join(s.aliases)})" if s.aliases else s.name)
    return "; ".join(parts)
