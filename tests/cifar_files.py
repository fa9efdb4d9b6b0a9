"""Small data sets in the official CIFAR python format, written through the production writer."""

from __future__ import annotations

import tarfile
from pathlib import Path

import torch

from orchestrator.trainer import data as D


def write_small_cifar(root: Path, dataset: str = "cifar10", n: int = 60) -> tuple[D.ImageSet, D.ImageSet]:
    classes = 10 if dataset == "cifar10" else 100
    g = torch.Generator().manual_seed(1)
    train = D.ImageSet(torch.randint(0, 256, (n, 3, 32, 32), dtype=torch.uint8, generator=g),
                       torch.randint(0, classes, (n,), generator=g))
    test = D.ImageSet(train.images[:12].clone(), train.labels[:12].clone())
    D.write_cifar(root, dataset, train, test)
    return train, test


def tarball_of(folder: Path, dest: Path) -> Path:
    with tarfile.open(dest, "w:gz") as tar:
        tar.add(folder, arcname=folder.name)
    return dest
