"""Data sets as uint8 tensors, split into train / validation (the reward) / test.

CIFAR-10/100 are read from the official python format: a directory (``cifar-10-batches-py`` with
``data_batch_1..5`` and ``test_batch``; ``cifar-100-python`` with ``train`` and ``test``), a
tarball of it, an ``s3://`` URI of that tarball, or a torchvision download. The pickles are read
with an unpickler that admits only NumPy arrays and plain containers, never arbitrary classes.
Fashion-MNIST (70,000 28×28 grey images of clothing, 10 classes) is read from its four IDX
files: a directory, a tarball or an ``s3://`` tarball as for CIFAR, or by default the copy that
Debian's ``dataset-fashion-mnist`` package installs, else a torchvision download. ``digits``
(scikit-learn's 1,797 8×8 images, shipped) and ``synthetic`` (class templates plus
noise, CIFAR-shaped) need no files and serve quickstarts, tests and benchmarks.

Images stay uint8 until the batch is drawn (see augment.py): a CIFAR training set is 150 MB on
the GPU that way.
"""

from __future__ import annotations

import gzip
import logging
import os
import pickle
import tarfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch
from torch import Tensor

from orchestrator.contract import TrainConfig
from orchestrator.trainer import s3
from orchestrator.trainer.errors import BadInput, Infrastructure

log = logging.getLogger(__name__)

CIFAR_DIRS = {"cifar10": "cifar-10-batches-py", "cifar100": "cifar-100-python"}
CIFAR_FILES = {
    "cifar10": ([f"data_batch_{i}" for i in range(1, 6)], ["test_batch"], b"labels", 10),
    "cifar100": (["train"], ["test"], b"fine_labels", 100),
}
DIGITS_TEST_SIZE = 297  # 1,797 = 1,500 train + 297 test, a fixed seeded split
SYNTHETIC_SIZES = (5000, 1000)  # train, test


@dataclass(frozen=True)
class ImageSet:
    images: Tensor  # uint8, (N, C, H, W)
    labels: Tensor  # int64, (N,)

    def __len__(self) -> int:
        return int(self.labels.shape[0])

    def to(self, device: torch.device) -> ImageSet:
        return ImageSet(self.images.to(device), self.labels.to(device))


@dataclass(frozen=True)
class Data:
    name: str
    train: ImageSet
    val: ImageSet
    test: ImageSet
    num_classes: int
    mean: tuple[float, ...]  # per channel, of the train split, in [0, 1] units
    std: tuple[float, ...]
    sha256: str | None = None  # of the tarball or object the data came from, when there was one

    @property
    def image_shape(self) -> tuple[int, int, int]:
        c, h, w = self.train.images.shape[1:]
        return int(c), int(h), int(w)


# ---------------------------------------------------------------------------------------------
# The official CIFAR python format
# ---------------------------------------------------------------------------------------------


class _ArrayUnpickler(pickle.Unpickler):
    """Admits NumPy's array reconstruction and nothing else: a pickle cannot run code here."""

    _ALLOWED: ClassVar[frozenset[tuple[str, str]]] = frozenset({
        ("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
        ("numpy", "ndarray"), ("numpy", "dtype"), ("_codecs", "encode"),
        ("numpy.core.multiarray", "scalar"), ("numpy._core.multiarray", "scalar"),
    })

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) in self._ALLOWED:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"refusing to load {module}.{name} from a data file")


def _read_batch(path: Path, label_key: bytes) -> tuple[np.ndarray, np.ndarray]:
    try:
        with path.open("rb") as f:
            d = _ArrayUnpickler(f, encoding="bytes").load()
        data = np.asarray(d[b"data"], dtype=np.uint8)
        labels = np.asarray(d[label_key], dtype=np.int64)
    except (OSError, pickle.UnpicklingError, KeyError, TypeError, ValueError, EOFError) as e:
        raise BadInput(f"{path} is not a CIFAR batch in the official python format: {e}") from e
    if data.ndim != 2 or data.shape[1] != 3072 or len(labels) != len(data):
        raise BadInput(f"{path}: expected b'data' of shape (N, 3072) and N labels; got {data.shape}, {len(labels)}")
    return data.reshape(-1, 3, 32, 32), labels


def read_cifar_dir(root: Path, dataset: str) -> tuple[ImageSet, ImageSet, int]:
    """(train, test, classes) from a directory holding, or being, the official batch folder."""
    folder = root / CIFAR_DIRS[dataset] if (root / CIFAR_DIRS[dataset]).is_dir() else root
    train_files, test_files, label_key, classes = CIFAR_FILES[dataset]
    missing = [n for n in train_files + test_files if not (folder / n).is_file()]
    if missing:
        raise BadInput(f"data_source {root} has no {dataset} files {', '.join(missing)} "
                       f"(expected the official python format, folder {CIFAR_DIRS[dataset]})")

    def load(names: list[str]) -> ImageSet:
        parts = [_read_batch(folder / n, label_key) for n in names]
        images = np.concatenate([p[0] for p in parts])
        labels = np.concatenate([p[1] for p in parts])
        if labels.min() < 0 or labels.max() >= classes:
            raise BadInput(f"{folder}: labels outside 0..{classes - 1} for {dataset}")
        return ImageSet(torch.from_numpy(images), torch.from_numpy(labels))

    return load(train_files), load(test_files), classes


def _extract(tarball: Path, cache_dir: Path, sha: str) -> Path:
    dest = cache_dir / "extracted" / sha[:16]
    if (dest / ".complete").is_file():
        return dest
    dest.mkdir(parents=True, exist_ok=True)
    try:
        with tarfile.open(tarball) as tar:
            tar.extractall(dest, filter="data")  # refuses absolute paths, links out, devices
    except (tarfile.TarError, OSError) as e:
        raise BadInput(f"data_source {tarball} is not a readable tarball: {e}") from e
    (dest / ".complete").touch()
    return dest


ReadDir = Callable[[Path, str], tuple[ImageSet, ImageSet, int]]


def _sourced(cfg: TrainConfig, cache_dir: Path, read_dir: ReadDir,
             default: Callable[[], tuple[ImageSet, ImageSet, int]]) -> tuple[ImageSet, ImageSet, int, str | None]:
    """A data set in its official files: from ``data_source`` (directory, tarball, s3:// tarball)
    or, when that is None, from ``default`` (an installed copy or a download)."""
    source = cfg.data_source
    if source is None:
        return (*default(), None)
    if source.startswith("s3://"):
        tarball = s3.fetch(source, cache_dir, cfg.data_sha256)
        sha = s3.sha256_file(tarball)
        return (*read_dir(_extract(tarball, cache_dir, sha), cfg.dataset), sha)
    path = Path(source).expanduser()
    if path.is_dir():
        if cfg.data_sha256 is not None:
            raise BadInput("data_sha256 applies to a tarball or an S3 object; data_source is a directory")
        return (*read_dir(path, cfg.dataset), None)
    if path.is_file():
        sha = s3.verify(path, cfg.data_sha256, str(path))
        return (*read_dir(_extract(path, cache_dir, sha), cfg.dataset), sha)
    raise BadInput(f"data_source {source!r} is neither a directory, a file nor an s3:// URI")


def _torchvision(dataset: str, cache_dir: Path) -> tuple[ImageSet, ImageSet, int]:
    from torchvision import datasets

    cls = datasets.CIFAR10 if dataset == "cifar10" else datasets.CIFAR100
    root = cache_dir / "torchvision"
    try:
        cls(str(root), train=True, download=True)
    except (OSError, RuntimeError) as e:  # URLError is an OSError
        raise Infrastructure(f"torchvision could not download {dataset}: {e}; "
                             "set data_source to a directory, tarball or s3:// URI") from e
    return read_cifar_dir(root, dataset)


# ---------------------------------------------------------------------------------------------
# Fashion-MNIST in its IDX files
# ---------------------------------------------------------------------------------------------

FASHION_MNIST_FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}
FASHION_MNIST_DEBIAN = Path("/usr/share/datasets/fashion-mnist")
"""Where Debian's ``dataset-fashion-mnist`` package installs the four gzipped IDX files."""


def read_idx(path: Path) -> np.ndarray:
    """One IDX file (uint8 data, gzipped or not): the format of MNIST and Fashion-MNIST.

    The header is a zero word, the type code 0x08 (unsigned byte), the number of dimensions, then
    one big-endian uint32 per dimension; the data follow, row-major."""
    try:
        raw = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
    except (OSError, EOFError, gzip.BadGzipFile) as e:
        raise BadInput(f"{path} is not a readable IDX file: {e}") from e
    if len(raw) < 4 or raw[0:2] != b"\0\0" or raw[2] != 0x08:
        raise BadInput(f"{path} is not an IDX file of unsigned bytes (bad magic {raw[:4].hex()})")
    ndim = raw[3]
    header = 4 + 4 * ndim
    if ndim == 0 or len(raw) < header:
        raise BadInput(f"{path}: truncated IDX header")
    shape = tuple(int.from_bytes(raw[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim))
    if len(raw) - header != int(np.prod(shape)):
        raise BadInput(f"{path}: IDX header says {shape} ({int(np.prod(shape))} bytes); "
                       f"the file holds {len(raw) - header}")
    return np.frombuffer(raw, dtype=np.uint8, offset=header).reshape(shape)


def _idx_file(folder: Path, name: str) -> Path:
    for candidate in (folder / name, folder / f"{name}.gz"):
        if candidate.is_file():
            return candidate
    raise BadInput(f"data_source {folder} has no Fashion-MNIST file {name} (or {name}.gz)")


def read_fashion_mnist_dir(folder: Path, dataset: str = "fashion_mnist") -> tuple[ImageSet, ImageSet, int]:
    """(train, test, classes) from a directory holding the four IDX files, or one folder of them
    (as a tarball of that folder extracts)."""
    first = FASHION_MNIST_FILES["train"][0]
    if not any((folder / n).is_file() for n in (first, f"{first}.gz")):
        inner = [d for d in sorted(folder.iterdir()) if d.is_dir()
                 and any((d / n).is_file() for n in (first, f"{first}.gz"))] if folder.is_dir() else []
        if len(inner) == 1:
            folder = inner[0]

    def part(which: str) -> ImageSet:
        images_name, labels_name = FASHION_MNIST_FILES[which]
        images = read_idx(_idx_file(folder, images_name))
        labels = read_idx(_idx_file(folder, labels_name)).astype(np.int64)
        if images.ndim != 3 or labels.ndim != 1 or len(images) != len(labels):
            raise BadInput(f"{folder}: {which} images {images.shape} and labels {labels.shape} do not "
                           "match (expected (N, H, W) and (N,))")
        if labels.size and (labels.min() < 0 or labels.max() > 9):
            raise BadInput(f"{folder}: {which} labels outside 0..9")
        return ImageSet(torch.from_numpy(images.copy()).unsqueeze(1), torch.from_numpy(labels))

    return part("train"), part("test"), 10


def fashion_mnist_installed() -> bool:
    """Whether Debian's ``dataset-fashion-mnist`` has put the four files where it puts them."""
    return all((FASHION_MNIST_DEBIAN / f"{n}.gz").is_file() for pair in FASHION_MNIST_FILES.values() for n in pair)


def _fashion_mnist_default(cache_dir: Path) -> tuple[ImageSet, ImageSet, int]:
    if fashion_mnist_installed():
        return read_fashion_mnist_dir(FASHION_MNIST_DEBIAN)
    from torchvision import datasets

    root = cache_dir / "torchvision"
    try:
        datasets.FashionMNIST(str(root), train=True, download=True)
    except (OSError, RuntimeError) as e:
        reason = " ".join(str(e).split())  # torchvision's message spans lines; ours is one
        raise Infrastructure("Fashion-MNIST is missing: install the Debian package "
                             "dataset-fashion-mnist (apt-get install dataset-fashion-mnist), set "
                             "data_source, or train on digits (dataset: digits); torchvision "
                             f"could not download it either ({reason[:200]})") from e
    return read_fashion_mnist_dir(root / "FashionMNIST" / "raw")


def default_cache_dir() -> Path:
    """Where children keep downloaded and extracted data: ``$ACTSEARCH_CACHE_DIR`` or
    ``~/.cache/actsearch``."""
    return Path(os.environ.get("ACTSEARCH_CACHE_DIR") or Path.home() / ".cache" / "actsearch")


def prefetch(cfg: TrainConfig, cache_dir: Path | None = None) -> None:
    """Before local children start: fetch the data set they would fetch by default, once.

    A missing data set is then one error at the start (Infrastructure, one line naming the
    Debian package) instead of one failed child per trial, and children never race each other
    to download into one cache. Does nothing for data that need no fetching: digits, synthetic,
    an explicit ``data_source``, Fashion-MNIST installed by Debian. CIFAR is left to the
    children (its runs are GPU Jobs, each with its own cache)."""
    if cfg.dataset == "fashion_mnist" and cfg.data_source is None and not fashion_mnist_installed():
        _fashion_mnist_default(cache_dir or default_cache_dir())


# ---------------------------------------------------------------------------------------------
# Built-in data sets
# ---------------------------------------------------------------------------------------------


def _digits() -> tuple[ImageSet, ImageSet, int]:
    from sklearn.datasets import load_digits

    d = load_digits()
    images = torch.from_numpy(np.clip(d.images * (255.0 / 16.0), 0, 255).astype(np.uint8)).unsqueeze(1)
    labels = torch.from_numpy(d.target.astype(np.int64))
    order = torch.randperm(len(labels), generator=torch.Generator().manual_seed(0))
    test, train = order[:DIGITS_TEST_SIZE], order[DIGITS_TEST_SIZE:]
    return ImageSet(images[train], labels[train]), ImageSet(images[test], labels[test]), 10


def synthetic(n_train: int = SYNTHETIC_SIZES[0], n_test: int = SYNTHETIC_SIZES[1],
              classes: int = 10, shape: tuple[int, int, int] = (3, 32, 32)) -> tuple[ImageSet, ImageSet, int]:
    """Smooth per-class templates plus pixel noise: learnable, CIFAR-shaped, fixed by seed 0."""
    g = torch.Generator().manual_seed(0)
    c, h, w = shape
    coarse = torch.rand(classes, c, 4, 4, generator=g)
    templates = torch.nn.functional.interpolate(coarse, size=(h, w), mode="bilinear", align_corners=False)

    def draw(n: int) -> ImageSet:
        labels = torch.randint(0, classes, (n,), generator=g)
        x = 0.6 * templates[labels] + 0.4 * torch.rand(n, c, h, w, generator=g)
        return ImageSet((x * 255).round().to(torch.uint8), labels)

    return draw(n_train), draw(n_test), classes


# ---------------------------------------------------------------------------------------------


def split(train: ImageSet, val_fraction: float, seed: int) -> tuple[ImageSet, ImageSet]:
    """A seeded held-out split; the same seed and size give the same validation images."""
    n_val = round(len(train) * val_fraction)
    if not 0 < n_val < len(train):
        raise BadInput(f"val_fraction {val_fraction} leaves no training or validation images "
                       f"out of {len(train)}")
    order = torch.randperm(len(train), generator=torch.Generator().manual_seed(seed))
    v, t = order[:n_val], order[n_val:]
    return ImageSet(train.images[t], train.labels[t]), ImageSet(train.images[v], train.labels[v])


def load(cfg: TrainConfig, cache_dir: Path) -> Data:
    """The configured data set, split; CIFAR sources are fetched into ``cache_dir`` once."""
    sha = None
    if cfg.dataset in CIFAR_DIRS:
        full, test, classes, sha = _sourced(cfg, cache_dir, read_cifar_dir,
                                            lambda: _torchvision(cfg.dataset, cache_dir))
    elif cfg.dataset == "fashion_mnist":
        full, test, classes, sha = _sourced(cfg, cache_dir, read_fashion_mnist_dir,
                                            lambda: _fashion_mnist_default(cache_dir))
    elif cfg.dataset == "digits":
        full, test, classes = _digits()
    else:
        full, test, classes = synthetic()
    train, val = split(full, cfg.val_fraction, cfg.split_seed)
    if cfg.batch_size > len(train):
        raise BadInput(f"batch_size {cfg.batch_size} exceeds the {len(train)} training images of {cfg.dataset}")
    pixels = train.images.to(torch.float32).div_(255).transpose(0, 1).reshape(train.images.shape[1], -1)
    mean, std = pixels.mean(1), pixels.std(1).clamp(min=1e-3)
    log.info("%s: %d train, %d validation, %d test images", cfg.dataset, len(train), len(val), len(test))
    return Data(cfg.dataset, train, val, test, classes, tuple(mean.tolist()), tuple(std.tolist()), sha)

