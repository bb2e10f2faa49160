"""IDX and CIFAR-10 binary readers on small generated files."""

from __future__ import annotations

import gzip
import struct

import numpy as np
import pytest

from sightline.data.readers import read_cifar_bin, read_idx
from sightline.errors import DataError


def idx_images(images: np.ndarray) -> bytes:
    n, rows, cols = images.shape
    return struct.pack(">IIII", 2051, n, rows, cols) + images.astype(np.uint8).tobytes()


def idx_labels(labels: np.ndarray) -> bytes:
    return struct.pack(">II", 2049, len(labels)) + labels.astype(np.uint8).tobytes()


@pytest.fixture
def images():
    return np.random.default_rng(0).integers(0, 256, size=(7, 5, 4), dtype=np.uint8)


@pytest.mark.parametrize("compress", [False, True])
def test_read_idx_images_from_file(tmp_path, images, compress):
    data = idx_images(images)
    path = tmp_path / ("x.gz" if compress else "x")
    path.write_bytes(gzip.compress(data) if compress else data)
    out = read_idx(path, expect="images")
    assert out.dtype == np.uint8 and out.shape == (7, 5, 4)
    np.testing.assert_array_equal(out, images)


def test_read_idx_labels_from_bytes():
    labels = np.array([9, 0, 3, 3, 1], dtype=np.uint8)
    out = read_idx(gzip.compress(idx_labels(labels)))
    assert out.shape == (5,)
    np.testing.assert_array_equal(out, labels)


def test_bad_magic_names_the_file(tmp_path, images):
    path = tmp_path / "weird.idx"
    path.write_bytes(struct.pack(">II", 1234, 1) + b"\0" * 20)
    with pytest.raises(DataError, match=r"weird\.idx.*magic number 1234"):
        read_idx(path)


@pytest.mark.parametrize("cut", [1, 20])
def test_size_mismatch_names_the_file(tmp_path, images, cut):
    path = tmp_path / "short.idx"
    path.write_bytes(idx_images(images)[:-cut])
    with pytest.raises(DataError, match=r"short\.idx.*size mismatch"):
        read_idx(path)


def test_too_long_is_also_a_size_mismatch(images):
    with pytest.raises(DataError, match="size mismatch"):
        read_idx(idx_images(images) + b"\0", name="long.idx")


def test_wrong_kind_is_an_error(images):
    with pytest.raises(DataError, match="expected an IDX labels file but it holds images"):
        read_idx(idx_images(images), expect="labels", name="swapped")


def test_truncated_gzip_names_the_file(tmp_path, images):
    path = tmp_path / "t.gz"
    path.write_bytes(gzip.compress(idx_images(images))[:-30])
    with pytest.raises(DataError, match=r"t\.gz.*gzip"):
        read_idx(path)


def test_tiny_file_is_an_error():
    with pytest.raises(DataError, match="too short"):
        read_idx(b"\0\0", name="tiny")


def test_missing_file_is_a_data_error(tmp_path):
    with pytest.raises(DataError, match="nope.idx"):
        read_idx(tmp_path / "nope.idx")


def cifar_records(labels: np.ndarray, images: np.ndarray) -> bytes:
    return (
        np.concatenate([labels[:, None], images.reshape(len(labels), -1)], axis=1)
        .astype(np.uint8)
        .tobytes()
    )


def test_read_cifar_bin(tmp_path):
    rng = np.random.default_rng(1)
    labels = np.array([6, 9, 0], dtype=np.uint8)
    imgs = rng.integers(0, 256, size=(3, 3, 32, 32), dtype=np.uint8)
    path = tmp_path / "batch.bin"
    path.write_bytes(cifar_records(labels, imgs))
    x, y = read_cifar_bin(path)
    assert x.shape == (3, 3, 32, 32) and x.dtype == np.uint8
    np.testing.assert_array_equal(y, labels)
    np.testing.assert_array_equal(x, imgs)
    # Planes are R, G, B in order, row-major: byte 1 of a record is the top-left red pixel.
    assert x[0, 0, 0, 0] == path.read_bytes()[1]
    assert x[0, 1, 0, 0] == path.read_bytes()[1 + 1024]


@pytest.mark.parametrize("length", [0, 3072, 3074, 2 * 3073 - 1])
def test_cifar_bad_length(tmp_path, length):
    path = tmp_path / "bad.bin"
    path.write_bytes(b"\0" * length)
    with pytest.raises(DataError, match=r"bad\.bin.*3073-byte"):
        read_cifar_bin(path)


def test_cifar_label_out_of_range(tmp_path):
    path = tmp_path / "lab.bin"
    path.write_bytes(bytes([42]) + b"\0" * 3072)
    with pytest.raises(DataError, match="label 42"):
        read_cifar_bin(path)
