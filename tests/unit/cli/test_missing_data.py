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


def test_the_availability_check_says_why_in_one_line_and_exits_1(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    from orchestrator.trainer import available

    no_fashion_mnist(monkeypatch, tmp_path)
    monkeypatch.setenv("ACTSEARCH_CACHE_DIR", str(tmp_path / "cache"))
    assert available.main(["fashion_mnist"]) == 1
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1 and err[0].startswith("Error:") and "apt-get install dataset-fashion-mnist" in err[0]
    assert available.main(["digits"]) == 0  # ships with scikit-learn: nothing to fetch
    assert available.main(["mnist-ish"]) == 2
    assert "dataset" in capsys.readouterr().err


STUB_PYTHON = """#!/bin/sh
# Stands in for the venv's python: only the availability check is asked of it.
[ "$2" = orchestrator.trainer.available ] || exit 99
exit "$AVAILABLE_RC"
"""
STUB_CTL = """#!/bin/sh
echo "$@" >> "$CTL_LOG"
"""


@pytest.mark.parametrize(("available_rc", "spec"), [
    (0, "examples/quickstart.yaml"), (1, "examples/quickstart-digits.yaml"),
])
def test_make_quickstart_runs_the_digits_search_where_fashion_mnist_is_not_at_hand(
        tmp_path: Path, available_rc: int, spec: str) -> None:
    """The Makefile's own rule, run by make in a copy of it, with the venv's python and
    actsearch-ctl replaced by stubs that record what they were asked (the search itself is tested
    elsewhere): a fresh machine without Fashion-MNIST still runs a search, and says which."""
    import os
    import shutil
    import subprocess

    root = Path(__file__).parents[3]
    for name in ("Makefile", "pyproject.toml", "constraints.txt"):
        shutil.copy(root / name, tmp_path / name)
    bin_dir = tmp_path / "venv" / "bin"
    bin_dir.mkdir(parents=True)
    for name, text in (("python", STUB_PYTHON), ("actsearch-ctl", STUB_CTL)):
        (bin_dir / name).write_text(text)
        (bin_dir / name).chmod(0o755)
    (tmp_path / "venv" / ".installed").touch()  # newer than the copies: no venv is built
    log = tmp_path / "ctl.log"
    env = {**os.environ, "AVAILABLE_RC": str(available_rc), "CTL_LOG": str(log)}
    done = subprocess.run(["make", "--no-print-directory", "quickstart", "VENV=venv"], cwd=tmp_path,
                          env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr
    assert log.read_text().split() == ["run", spec]
    assert ("digits" in done.stdout) == (available_rc != 0)
