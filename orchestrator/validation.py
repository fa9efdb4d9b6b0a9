"""Validation errors as sentences: one line per problem, naming the field and what it allows."""

from __future__ import annotations

from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from orchestrator.errors import ConfigError

M = TypeVar("M", bound=BaseModel)


def describe(error: ValidationError, what: str = "spec") -> str:
    """``child.model: Input should be 'resnet20', ...; got 'vgg'``, one line per problem."""
    lines = []
    for item in error.errors():
        where = ".".join(str(p) for p in item["loc"]) or what
        msg = item["msg"].removeprefix("Value error, ")
        if item["type"] == "extra_forbidden":
            msg = f"unknown field (not part of the {what})"
        elif item["type"] == "literal_error":
            msg = f"{msg}; got {item.get('input')!r}"
        lines.append(f"{where}: {msg}")
    return "\n".join(lines)


def validate(model: type[M], data: Any, source: str, what: str) -> M:
    """``data`` as a ``model``, or ConfigError naming every bad field (nothing else happens)."""
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: a {what} is a mapping of fields; got {type(data).__name__}")
    try:
        return model.model_validate(data)
    except ValidationError as e:
        raise ConfigError(f"{source} is not a valid {what}:\n{describe(e, what)}") from e


def read_yaml(path: str | Path) -> Any:
    """A YAML file's content, or ConfigError saying why it cannot be read."""
    p = Path(path)
    try:
        return yaml.safe_load(p.read_text())
    except OSError as e:
        raise ConfigError(f"cannot read spec {p}: {e.strerror}") from e
    except yaml.YAMLError as e:
        raise ConfigError(f"{p} is not valid YAML: {e}") from e
