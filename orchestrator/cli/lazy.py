"""A click group whose subcommands are imported when they are used, not when the CLI starts.

``actsearch-ctl --help`` or ``actsearch-ctl space show ...`` should not pay for torch, MLflow or
the Kubernetes client, which other subcommands need: each subcommand is named by
``"module:attribute"`` and its module is imported on first lookup. The command modules keep
their own heavy imports inside the functions that need them, so importing one stays cheap.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from typing import Any

import click


class LazyGroup(click.Group):
    """``click.Group`` plus ``lazy``: subcommand name -> ``"module:attribute"``."""

    def __init__(self, *args: Any, lazy: Mapping[str, str], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.lazy = dict(lazy)

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *self.lazy})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name in self.lazy and cmd_name not in self.commands:
            self.add_command(_load(self.lazy[cmd_name]), cmd_name)
        return super().get_command(ctx, cmd_name)


def _load(target: str) -> click.Command:
    module, attribute = target.split(":")
    command = getattr(importlib.import_module(module), attribute)
    if not isinstance(command, click.Command):
        raise TypeError(f"{target} is not a click command")
    return command
