"""Fashion-MNIST from its four IDX files (the format Debian's dataset-fashion-mnist installs),
written small here in that format: gzipped or not, from a directory or a tarball; bad files named."""

from __future__ import annotations

import gzip
import hashlib
import struct
from pathlib import Path

import numpy as np
import pytest
import torch

from orchestrator.contract import TrainConfig
from orchestrator.trainer import data as D
from orchestrator.trainer.errors import BadInput, Infrastructure
from tests.cifar_files import tarball_of


def idx_bytes(array: np.ndarray) -> bytes:
    """The IDX encoding: two zero bytes, type 0x08 (uint8), ndim, big-endian dims, the data."""
    return b"\0\0\x08" + bytes([array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape) + array.tobytes()


def write_small_fashion_mnist(folder: Path, *, gz: bool = True, n_train: int = 40, n_test: int = 12,
                              seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    parts = {}
    for which, n in (("train", n_train), ("test", n_test)):
        images = rng.integers(0, 256, (n, 28, 28), dtype=np.uint8)
        labels = (np.arange(n) % 10).astype(np.uint8)
        parts[which] = images, labels
        for name, arr in zip(D.FASHION_MNIST_FILES[which], (images, labels), strict=True):
            raw = idx_bytes(arr)
            if gz:
                (folder / f"{name}.gz").write_bytes(gzip.compress(raw))
            else:
                (folder / name).write_bytes(raw)
    return parts["train"][0], parts["test"][0]


@pytest.mark.parametrize("gz", [True, False])
def test_fashion_mnist_loads_from_a_directory_of_idx_files(tmp_path: Path, gz: bool) -> None:
    _, test = write_small_fashion_mnist(tmp_path / "src", gz=gz)
    cfg = TrainConfig(dataset="fashion_mnist", data_source=str(tmp_path / "src"), val_fraction=0.25, batch_size=8)
    got = D.load(cfg, tmp_path / "cache")
    assert (len(got.train), len(got.val), len(got.test)) == (30, 10, 12)
    assert got.image_shape == (1, 28, 28) and got.num_classes == 10
    assert torch.equal(got.test.images[:, 0], torch.from_numpy(test))
    assert got.test.labels.tolist() == [i % 10 for i in range(12)]


def test_fashion_mnist_loads_from_a_tarball_with_its_checksum(tmp_path: Path) -> None:
    _, test = write_small_fashion_mnist(tmp_path / "src" / "fashion")
    tgz = tarball_of(tmp_path / "src" / "fashion", tmp_path / "fashion.tar.gz")
    sha = hashlib.sha256(tgz.read_bytes()).hexdigest()
    cfg = TrainConfig(dataset="fashion_mnist", data_source=str(tgz), data_sha256=sha, batch_size=8)
    got = D.load(cfg, tmp_path / "cache")
    assert torch.equal(got.test.images[:, 0], torch.from_numpy(test)) and got.sha256 == sha


def test_a_missing_idx_file_is_named(tmp_path: Path) -> None:
    write_small_fashion_mnist(tmp_path)
    (tmp_path / "t10k-labels-idx1-ubyte.gz").unlink()
    with pytest.raises(BadInput, match="t10k-labels-idx1-ubyte"):
        D.load(TrainConfig(dataset="fashion_mnist", data_source=str(tmp_path)), tmp_path / "cache")


def test_a_file_that_is_not_idx_is_refused_with_its_magic(tmp_path: Path) -> None:
    write_small_fashion_mnist(tmp_path)
    (tmp_path / "train-images-idx3-ubyte.gz").write_bytes(gzip.compress(b"PK\x03\x04 not idx"))
    with pytest.raises(BadInput, match=r"not an IDX file.*504b0304"):
        D.load(TrainConfig(dataset="fashion_mnist", data_source=str(tmp_path)), tmp_path / "cache")


def test_a_truncated_idx_file_is_refused_with_both_sizes(tmp_path: Path) -> None:
    write_small_fashion_mnist(tmp_path, gz=False)
    path = tmp_path / "train-images-idx3-ubyte"
    path.write_bytes(path.read_bytes()[:-5])
    with pytest.raises(BadInput, match=r"header says \(40, 28, 28\).*holds 31355"):
        D.load(TrainConfig(dataset="fashion_mnist", data_source=str(tmp_path)), tmp_path / "cache")


def test_labels_outside_the_ten_classes_are_refused(tmp_path: Path) -> None:
    write_small_fashion_mnist(tmp_path, gz=False)
    (tmp_path / "t10k-labels-idx1-ubyte").write_bytes(idx_bytes(np.full(12, 10, dtype=np.uint8)))
    with pytest.raises(BadInput, match=r"labels outside 0..9"):
        D.load(TrainConfig(dataset="fashion_mnist", data_source=str(tmp_path)), tmp_path / "cache")


@pytest.mark.skipif(not D.FASHION_MNIST_DEBIAN.is_dir(), reason="Debian's dataset-fashion-mnist is not installed")
def test_the_installed_fashion_mnist_is_the_real_one(tmp_path: Path) -> None:
    got = D.load(TrainConfig(dataset="fashion_mnist", batch_size=8), tmp_path / "cache")
    assert (len(got.train) + len(got.val), len(got.test)) == (60_000, 10_000)
    assert torch.bincount(got.test.labels).tolist() == [1000] * 10


OFFLINE = ("Error downloading train-images-idx3-ubyte.gz:\nTried http://example.invalid/, got:\n"
           "<urlopen error [Errno -2] Name or service not known>\n")


def no_fashion_mnist(monkeypatch: pytest.MonkeyPatch, where: Path) -> list[str]:
    """This machine as one without Debian's package and without a network: torchvision's
    download raises what it raises offline (its message spans lines). Returns the roots that
    torchvision was asked to download into."""
    import torchvision.datasets

    asked: list[str] = []

    def offline(root: str, train: bool, download: bool) -> None:
        asked.append(root)
        raise RuntimeError(OFFLINE)

    monkeypatch.setattr(D, "FASHION_MNIST_DEBIAN", where / "not-installed")
    monkeypatch.setattr(torchvision.datasets, "FashionMNIST", offline)
    return asked


def test_without_the_package_or_a_network_prefetch_names_the_package_in_one_line(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    asked = no_fashion_mnist(monkeypatch, tmp_path)
    with pytest.raises(Infrastructure) as e:
        D.prefetch(TrainConfig(dataset="fashion_mnist"), tmp_path / "cache")
    text = str(e.value)
    assert "\n" not in text and "dataset-fashion-mnist" in text and "Name or service not known" in text
    assert asked == [str(tmp_path / "cache" / "torchvision")]


def test_prefetch_fetches_nothing_that_needs_no_fetching(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    asked = no_fashion_mnist(monkeypatch, tmp_path)
    D.prefetch(TrainConfig(dataset="digits"), tmp_path / "cache")
    D.prefetch(TrainConfig(dataset="fashion_mnist", data_source=str(tmp_path / "mine")), tmp_path / "cache")
    write_small_fashion_mnist(D.FASHION_MNIST_DEBIAN)  # now "installed"
    assert D.fashion_mnist_installed()
    D.prefetch(TrainConfig(dataset="fashion_mnist"), tmp_path / "cache")
    assert asked == []
