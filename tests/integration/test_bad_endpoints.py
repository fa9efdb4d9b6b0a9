"""S3 refusals end a command with one line naming the object and the code, against a real
S3-compatible server (moto's, on 127.0.0.1, from tests/servers.py)."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from orchestrator.adapters.storage import S3Store
from orchestrator.cli import main
from orchestrator.errors import ConfigError, ServiceRefused


def test_a_missing_bucket_is_a_config_error_naming_it(s3_env: dict[str, str]) -> None:
    store = S3Store.from_uri("s3://no-such-bucket/search")
    for call in (lambda: store.get("checkpoint.pt"), lambda: store.put("checkpoint.pt", b"x")):
        with pytest.raises(ConfigError) as info:
            call()
        message = str(info.value)
        assert "s3://no-such-bucket/search/checkpoint.pt refused: NoSuchBucket: the bucket does not exist" \
            in message
        assert "\n" not in message
        # a refusal, which the operator waits out on the search (an admin fixes the bucket)
        assert isinstance(info.value, ServiceRefused) and info.value.reason == "StorageRefused"


def test_run_with_a_missing_bucket_ends_with_one_line_and_exit_1(tmp_path: Path, s3_env: dict[str, str]) -> None:
    spec = tmp_path / "s.yaml"
    spec.write_text(f"name: s\nbudget: {{trials: 1}}\nstorage: {{uri: 's3://no-such-bucket/x'}}\n"
                    f"backend: {{local: {{workdir: '{tmp_path / 'work'}'}}}}\n")
    result = CliRunner().invoke(main, ["run", str(spec), "--quiet"], catch_exceptions=False)
    assert result.exit_code == 1
    assert result.output.startswith("Error: S3 get s3://no-such-bucket/x/")
    assert "NoSuchBucket" in result.output and result.output.count("\n") == 1
