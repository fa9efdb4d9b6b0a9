"""A search or benchmark whose local children need Fashion-MNIST, on a machine that has neither
Debian's package nor a network: one ``Error:`` line naming the package, exit 1, nothing started."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from orchestrator.cli import main as ctl
from tests.unit.trainer.test_fashion_mnist import no_fashion_mnist

EXAMPLES = Path(__file__).parents[3] / "examples"


@pytest.mark.parametrize(("command", "example"), [
    ("run", "quickstart.yaml"), ("benchmark", "benchmark-fashion-mnist.yaml"),
])
def test_the_quickstart_and_the_benchmark_stop_with_one_line_naming_the_package(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, command: str, example: str) -> None:
    asked = no_fashion_mnist(monkeypatch, tmp_path)
    monkeypatch.setenv("ACTSEARCH_CACHE_DIR", str(tmp_path / "cache"))
    done = CliRunner().invoke(ctl, [command, str(EXAMPLES / example), "--workdir", str(tmp_path / "work")])
    assert done.exit_code == 1, done.output
    errors = [line for line in done.output.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1 and "apt-get install dataset-fashion-mnist" in errors[0], done.output
    assert len(asked) == 1  # one download tried, by the command, not one per child
    assert not (tmp_path / "work").exists()  # no store, no checkpoint, no child
