"""One CLI shape: one meaning of -v for every program (orchestrator.log_setup) and one rule
that turns the project's expected errors into a one-line message and exit code 1
(orchestrator.cli.errors)."""

from __future__ import annotations

import contextlib
import json
import logging
from collections.abc import Iterator
from pathlib import Path

import click
import pytest
import yaml
from click.testing import CliRunner

from orchestrator.adapters.kube import NotFound
from orchestrator.cli.errors import EXPECTED_FAILURE, USAGE_ERROR, expected_errors
from orchestrator.errors import ConfigError
from orchestrator.log_setup import CHILD, JsonFormatter, configure_logging, level_of


@pytest.mark.parametrize(("verbosity", "command_line", "child"), [
    (0, logging.WARNING, logging.INFO),
    (1, logging.INFO, logging.DEBUG),
    (2, logging.DEBUG, logging.DEBUG),
    (5, logging.DEBUG, logging.DEBUG),
])
def test_each_v_is_one_level_more_than_the_programs_default(
        verbosity: int, command_line: int, child: int) -> None:
    assert level_of(verbosity) == command_line
    assert level_of(verbosity, CHILD) == child


@contextlib.contextmanager
def bare_root() -> Iterator[logging.Logger]:
    """The root logger with no handlers (as in a fresh program), restored afterwards."""
    root = logging.getLogger()
    saved = root.handlers[:], root.level, logging.getLogger("botocore").level
    root.handlers = []
    try:
        yield root
    finally:
        root.handlers, root.level = saved[0], saved[1]
        logging.getLogger("botocore").setLevel(saved[2])


def test_a_child_logs_info_by_default_and_debug_with_v() -> None:
    with bare_root() as root:
        configure_logging(0, default=CHILD, replace=True)
        assert root.level == logging.INFO
        configure_logging(1, default=CHILD, replace=True)
        assert root.level == logging.DEBUG and len(root.handlers) == 1
        assert logging.getLogger("botocore").level == logging.WARNING


def test_a_command_line_logs_warnings_and_keeps_a_setup_already_in_place() -> None:
    with bare_root() as root:
        configure_logging(1)
        assert root.level == logging.INFO
        handlers = root.handlers[:]
        configure_logging(2)
        assert root.handlers == handlers and root.level == logging.INFO


@pytest.mark.parametrize(("args", "level"), [
    (["operator"], logging.WARNING),
    (["-v", "operator"], logging.INFO),  # the chart's default controller.verbosity
    (["-vv", "operator"], logging.DEBUG),
    (["operator", "-v"], logging.INFO),
    (["-v", "operator", "-v"], logging.DEBUG),
])
def test_a_v_before_or_after_the_operator_command_means_the_same(
        args: list[str], level: int) -> None:
    from orchestrator.cli import main

    with bare_root() as root:
        result = CliRunner().invoke(main, [*args, "--storage-uri", "/not/s3"])
        assert result.exit_code == 1 and "must look like s3://" in result.stderr
        assert root.level == level


def test_json_logs_are_one_object_per_line() -> None:
    record = logging.LogRecord("orchestrator.x", logging.INFO, __file__, 1, 'say "%s"', ("hi",),
                               None)
    line = json.loads(JsonFormatter().format(record))
    assert (line["level"], line["logger"], line["message"]) == ("INFO", "orchestrator.x", 'say "hi"')
    assert set(line) == {"time", "level", "logger", "message"}


def command_raising(error: Exception) -> click.Command:
    @click.command()
    @expected_errors
    def cmd() -> None:
        raise error

    return cmd


@pytest.mark.parametrize("error", [ConfigError("bad spec: fix it"),
                                   NotFound("reading ActivationSearch ns/s: not found (404)")])
def test_an_expected_error_is_one_line_on_stderr_and_exit_code_1(error: Exception) -> None:
    result = CliRunner().invoke(command_raising(error), [])
    assert result.exit_code == EXPECTED_FAILURE == 1
    assert result.stderr == f"Error: {error}\n" and result.stdout == ""
    assert "Traceback" not in result.output


def test_a_bug_is_not_disguised_as_an_expected_error() -> None:
    with pytest.raises(KeyError):  # it keeps its traceback
        CliRunner().invoke(command_raising(KeyError("oops")), [], catch_exceptions=False)


def test_a_usage_error_keeps_clicks_exit_code_2() -> None:
    assert CliRunner().invoke(command_raising(ConfigError("x")), ["--nope"]).exit_code == USAGE_ERROR


def test_run_refuses_a_cluster_spec_with_one_line_and_exit_code_1(tmp_path: Path) -> None:
    from orchestrator.cli import main

    spec = tmp_path / "search.yaml"
    spec.write_text(yaml.safe_dump({"name": "s1", "backend": {"kind": "kubernetes"},
                                    "strategy": {"name": "random"}}))
    result = CliRunner().invoke(main, ["run", str(spec), "--workdir", str(tmp_path)])
    assert result.exit_code == 1, result.output
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.output
    assert "backend.kind is 'kubernetes'" in result.stderr and "actsearch-ctl submit" in result.stderr
    assert not (tmp_path / "s1").exists()  # nothing was created
