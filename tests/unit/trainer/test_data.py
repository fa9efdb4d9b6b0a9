"""CIFAR in the official python format from a directory and a tarball; built-in sets; splits."""

from __future__ import annotations

import hashlib
import pickle
from pathlib import Path

import pytest
import torch

from orchestrator.contract import TrainConfig
from orchestrator.trainer import data as D
from orchestrator.trainer.errors import BadInput
from tests.cifar_files import tarball_of, write_small_cifar


@pytest.mark.parametrize("dataset", ["cifar10", "cifar100"])
def test_cifar_loads_from_a_directory_in_the_official_format(tmp_path: Path, dataset: str) -> None:
    train, test = write_small_cifar(tmp_path / "src", dataset)
    got = D.load(TrainConfig(dataset=dataset, data_source=str(tmp_path / "src"), val_fraction=0.25, batch_size=16), tmp_path / "cache")
    assert (len(got.train), len(got.val), len(got.test)) == (45, 15, 12)
    assert got.num_classes == (10 if dataset == "cifar10" else 100)
    assert torch.equal(got.test.images, test.images) and torch.equal(got.test.labels, test.labels)
    seen = torch.cat([got.train.labels, got.val.labels]).sort().values
    assert torch.equal(seen, train.labels.sort().values)


def test_cifar_loads_from_a_tarball_with_its_checksum(tmp_path: Path) -> None:
    _, test = write_small_cifar(tmp_path / "src")
    tgz = tarball_of(tmp_path / "src" / "cifar-10-batches-py", tmp_path / "cifar-10-python.tar.gz")
    sha = hashlib.sha256(tgz.read_bytes()).hexdigest()
    got = D.load(TrainConfig(data_source=str(tgz), data_sha256=sha, batch_size=16), tmp_path / "cache")
    assert torch.equal(got.test.images, test.images)
    assert got.sha256 == sha


def test_a_tarball_with_the_wrong_checksum_is_refused_naming_both_digests(tmp_path: Path) -> None:
    write_small_cifar(tmp_path / "src")
    tgz = tarball_of(tmp_path / "src" / "cifar-10-batches-py", tmp_path / "c.tgz")
    with pytest.raises(BadInput, match=r"data_sha256 mismatch.*expected 0{64}, got [0-9a-f]{64}"):
        D.load(TrainConfig(data_source=str(tgz), data_sha256="0" * 64), tmp_path / "cache")


def test_a_pickle_that_names_a_class_is_refused_not_run(tmp_path: Path) -> None:
    folder = tmp_path / "cifar-10-batches-py"
    write_small_cifar(tmp_path)
    (folder / "test_batch").write_bytes(pickle.dumps({b"data": Path("/"), b"labels": []}))
    with pytest.raises(BadInput, match="refusing to load pathlib"):
        D.load(TrainConfig(data_source=str(tmp_path)), tmp_path / "cache")


def test_missing_batch_files_are_named(tmp_path: Path) -> None:
    write_small_cifar(tmp_path)
    (tmp_path / "cifar-10-batches-py" / "data_batch_3").unlink()
    with pytest.raises(BadInput, match="data_batch_3"):
        D.load(TrainConfig(data_source=str(tmp_path)), tmp_path / "cache")


def test_digits_ship_with_scikit_learn_and_split_into_three_disjoint_parts(tmp_path: Path) -> None:
    got = D.load(TrainConfig(dataset="digits"), tmp_path)
    assert (len(got.train), len(got.val), len(got.test)) == (1350, 150, 297)
    assert got.image_shape == (1, 8, 8) and got.num_classes == 10


def test_the_validation_split_depends_on_split_seed_only(tmp_path: Path) -> None:
    a = D.load(TrainConfig(dataset="digits", seed=1), tmp_path)
    b = D.load(TrainConfig(dataset="digits", seed=2), tmp_path)
    c = D.load(TrainConfig(dataset="digits", split_seed=5), tmp_path)
    assert torch.equal(a.val.images, b.val.images)
    assert not torch.equal(a.val.images, c.val.images)


def test_synthetic_data_is_cifar_shaped_and_fixed() -> None:
    train, _test, classes = D.synthetic(100, 20)
    again, _, _ = D.synthetic(100, 20)
    assert train.images.shape == (100, 3, 32, 32) and classes == 10
    assert torch.equal(train.images, again.images)


def test_a_batch_larger_than_the_training_split_is_bad_input(tmp_path: Path) -> None:
    with pytest.raises(BadInput, match="batch_size 2000 exceeds the 1350 training images of digits"):
        D.load(TrainConfig(dataset="digits", batch_size=2000), tmp_path)
