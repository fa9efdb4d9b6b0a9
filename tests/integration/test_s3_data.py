"""CIFAR from an s3:// URI on a real S3-compatible server: downloaded once, checksum verified."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
import torch

from orchestrator.contract import TrainConfig
from orchestrator.trainer import data as D
from orchestrator.trainer.errors import BadInput
from tests.cifar_files import tarball_of, write_small_cifar


@pytest.fixture
def cifar_object(tmp_path: Path, s3_client, s3_bucket: str) -> tuple[str, str, D.ImageSet]:  # type: ignore[no-untyped-def]
    """(uri, sha256, test split) of a small CIFAR-100 tarball uploaded to the bucket."""
    _, test = write_small_cifar(tmp_path / "src", "cifar100")
    tgz = tarball_of(tmp_path / "src" / "cifar-100-python", tmp_path / "cifar-100-python.tar.gz")
    key = f"datasets/{tmp_path.name}/cifar-100-python.tar.gz"
    s3_client.upload_file(str(tgz), s3_bucket, key)
    return f"s3://{s3_bucket}/{key}", hashlib.sha256(tgz.read_bytes()).hexdigest(), test


def test_cifar_loads_from_s3_once_and_then_from_the_cache(
    cifar_object, s3_env: dict[str, str], s3_client, s3_bucket: str, tmp_path: Path,  # type: ignore[no-untyped-def]
) -> None:
    uri, sha, test = cifar_object
    cfg = TrainConfig(dataset="cifar100", data_source=uri, data_sha256=sha, batch_size=16)
    got = D.load(cfg, tmp_path / "cache")
    assert torch.equal(got.test.images, test.images) and got.num_classes == 100 and got.sha256 == sha
    s3_client.delete_object(Bucket=s3_bucket, Key=uri.removeprefix(f"s3://{s3_bucket}/"))
    again = D.load(cfg, tmp_path / "cache")  # the object is gone: only the verified cache can serve
    assert torch.equal(again.val.images, got.val.images)


def test_a_wrong_checksum_fails_clearly_and_keeps_nothing(
    cifar_object, s3_env: dict[str, str], tmp_path: Path,  # type: ignore[no-untyped-def]
) -> None:
    uri, sha, _ = cifar_object
    wrong = "f" * 64
    with pytest.raises(BadInput, match=f"data_sha256 mismatch for {uri}: expected {wrong}, got {sha}"):
        D.load(TrainConfig(dataset="cifar100", data_source=uri, data_sha256=wrong), tmp_path / "cache")
    assert not [p for p in (tmp_path / "cache").rglob("*") if p.is_file()]


def test_a_missing_object_is_bad_input_naming_the_uri(
    s3_env: dict[str, str], s3_bucket: str, tmp_path: Path,
) -> None:
    uri = f"s3://{s3_bucket}/datasets/none.tar.gz"
    with pytest.raises(BadInput, match=uri):
        D.load(TrainConfig(data_source=uri), tmp_path / "cache")


@pytest.mark.parametrize("key", ["../../escaped.tar.gz", "datasets/../../../escaped.tar.gz",
                                 "/tmp-escaped.tar.gz"])
def test_a_key_that_leaves_the_cache_is_refused_and_nothing_is_written(
    key: str, s3_env: dict[str, str], s3_client, s3_bucket: str, tmp_path: Path,  # type: ignore[no-untyped-def]
) -> None:
    """An object whose key holds ``../`` (or starts with ``/``) exists on the real S3-compatible
    server; joined as a path it would land outside ``<cache>/s3/<bucket>``. The child refuses it
    before downloading."""
    s3_client.put_object(Bucket=s3_bucket, Key=key, Body=b"not a tarball")
    cache = tmp_path / "deep" / "cache"
    uri = f"s3://{s3_bucket}/{key}"
    with pytest.raises(BadInput, match="must name a file inside the download cache"):
        D.load(TrainConfig(dataset="cifar10", data_source=uri), cache)
    assert [p for p in tmp_path.rglob("*") if p.is_file()] == []


def test_a_bucket_of_dots_is_refused(s3_env: dict[str, str], tmp_path: Path) -> None:
    with pytest.raises(BadInput, match="must name a file inside the download cache"):
        D.load(TrainConfig(dataset="cifar10", data_source="s3://../escaped.tar.gz"),
               tmp_path / "cache")
    assert not (tmp_path / "escaped.tar.gz").exists()
