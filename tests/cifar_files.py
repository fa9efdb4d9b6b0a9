"""Small data sets in the official CIFAR python format, written independently of the reader.

The layout follows the format's documentation: pickled dicts with ``b"data"`` (uint8, N×3072,
channel-major rows of 1024 red, green, blue values), ``b"labels"`` (CIFAR-10) or
``b"fine_labels"``/``b"coarse_labels"`` (CIFAR-100), ``b"batch_label"`` and ``b"filenames"``.
"""

from __future__ import annotations

import pickle
import tarfile
from pathlib import Path

import numpy as np
import torch

from orchestrator.trainer.data import ImageSet

LAYOUT = {
    "cifar10": ("cifar-10-batches-py", [f"data_batch_{i}" for i in range(1, 6)], "test_batch", 10),
    "cifar100": ("cifar-100-python", ["train"], "test", 100),
}


def _dump(path: Path, images: np.ndarray, labels: np.ndarray, dataset: str) -> None:
    d: dict[bytes, object] = {
        b"batch_label": path.name.encode(),
        b"data": images.reshape(len(images), 3072),
        b"filenames": [f"img_{i}.png".encode() for i in range(len(images))],
    }
    if dataset == "cifar10":
        d[b"labels"] = labels.tolist()
    else:
        d[b"fine_labels"] = labels.tolist()
        d[b"coarse_labels"] = (labels // 5).tolist()
    path.write_bytes(pickle.dumps(d, protocol=2))


def write_small_cifar(root: Path, dataset: str = "cifar10", n: int = 60) -> tuple[ImageSet, ImageSet]:
    """Write ``n`` random training and 12 test images; returns what was written, as tensors."""
    folder_name, train_files, test_file, classes = LAYOUT[dataset]
    rng = np.random.default_rng(1)
    images = rng.integers(0, 256, (n + 12, 3, 32, 32), dtype=np.uint8)
    labels = rng.integers(0, classes, n + 12)
    folder = root / folder_name
    folder.mkdir(parents=True, exist_ok=True)
    for name, idx in zip(train_files, np.array_split(np.arange(n), len(train_files)), strict=True):
        _dump(folder / name, images[idx], labels[idx], dataset)
    _dump(folder / test_file, images[n:], labels[n:], dataset)
    train, test = slice(0, n), slice(n, None)
    return (ImageSet(torch.from_numpy(images[train]), torch.from_numpy(labels[train])),
            ImageSet(torch.from_numpy(images[test]), torch.from_numpy(labels[test])))


def tarball_of(folder: Path, dest: Path) -> Path:
    with tarfile.open(dest, "w:gz") as tar:
        tar.add(folder, arcname=folder.name)
    return dest
