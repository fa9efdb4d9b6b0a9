"""``actsearch-ctl`` starts without torch: subcommands are imported when used, and the commands a
user runs to look around (help, the cluster commands' help, ``space show``) load no heavy stack."""

from __future__ import annotations

import json
import subprocess
import sys

import click
import pytest

from orchestrator.cli import COMMANDS, main

HEAVY = ("torch", "mlflow", "kubernetes", "matplotlib")
WRAPPER = (
    "import json, sys\n"
    "from orchestrator.cli import main\n"
    "try:\n"
    "    main(sys.argv[1:], prog_name='actsearch-ctl')\n"
    "except SystemExit as e:\n"
    "    code = e.code\n"
    f"loaded = [m for m in {HEAVY!r} if m in sys.modules]\n"
    "print('\\n' + json.dumps({'code': code, 'loaded': loaded}))\n"
)


def _fresh(*args: str) -> dict[str, object]:
    out = subprocess.run([sys.executable, "-c", WRAPPER, *args], check=True,
                         capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


@pytest.mark.parametrize("args", [
    ("--help",),
    ("list", "--help"),
    ("submit", "--help"),
    ("table", "--help"),
    ("space", "show", "sigmul(mul_beta(x), id(x))"),
], ids=" ".join)
def test_looking_around_imports_no_torch_mlflow_kubernetes_or_matplotlib(args: tuple[str, ...]) -> None:
    result = _fresh(*args)
    assert result == {"code": 0, "loaded": []}


def test_every_subcommand_keeps_its_name_and_loads_on_demand() -> None:
    assert sorted(COMMANDS) == sorted([
        "space", "run", "top", "ui", "search-sim", "benchmark", "benchmark-report", "oneshot",
        "table", "submit", "list", "status", "logs", "retry", "cancel", "crd", "operator",
    ])
    ctx = click.Context(main)
    assert main.list_commands(ctx) == sorted(COMMANDS)
    for name in COMMANDS:
        command = main.get_command(ctx, name)
        assert isinstance(command, click.Command) and command.name == name


def test_help_lists_every_subcommand_with_its_summary() -> None:
    from click.testing import CliRunner

    out = CliRunner().invoke(main, ["--help"]).output
    ctx = click.Context(main)
    for name in COMMANDS:
        command = main.get_command(ctx, name)
        assert command is not None
        assert f"  {name} " in out
        assert command.get_short_help_str(limit=45)[:20] in out
