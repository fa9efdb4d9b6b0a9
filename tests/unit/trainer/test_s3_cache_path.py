"""The trainer's S3 download cache keeps every object inside ``<cache>/s3/<bucket>``."""

from __future__ import annotations

from pathlib import Path

import pytest

from orchestrator.trainer.errors import BadInput
from orchestrator.trainer.s3 import cache_path


@pytest.mark.parametrize("key", ["cifar.tar.gz", "datasets/v1/cifar.tar.gz", "a/./b.tgz",
                                 "a/../b.tgz"])
def test_keys_inside_the_bucket_folder_are_kept_there(key: str, tmp_path: Path) -> None:
    got = cache_path(tmp_path, "bucket", key, f"s3://bucket/{key}")
    assert got.is_relative_to((tmp_path / "s3" / "bucket").resolve())
    assert got.name == Path(key).name


@pytest.mark.parametrize(("bucket", "key"), [
    ("bucket", "../other/x.tgz"), ("bucket", "../../x.tgz"), ("bucket", "/etc/passwd"),
    ("bucket", "a/../../x.tgz"), ("..", "x.tgz"), (".", "x.tgz"), ("bucket", "."),
    ("bucket", "a/.."),
])
def test_keys_and_buckets_that_leave_it_are_refused(bucket: str, key: str,
                                                    tmp_path: Path) -> None:
    with pytest.raises(BadInput, match=r"^data_source .*must name a file inside the download"):
        cache_path(tmp_path, bucket, key, f"s3://{bucket}/{key}")
