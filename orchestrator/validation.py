"""Validation errors as sentences: one line per problem, naming the field and what it allows.

Spec files are read strictly (``read_yaml``): UTF-8 only, and a key given twice in one mapping
is refused with both lines (YAML's own rule, which PyYAML does not enforce: it keeps the last,
so a second ``name:`` further down would silently rename a search). Quoted input is clipped
(``orchestrator.echo``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from orchestrator.echo import clip, clip_repr
from orchestrator.errors import ConfigError

M = TypeVar("M", bound=BaseModel)

MAX_MESSAGE_LINE = 300
"""Characters of one line of a validation message, at most (a line names one field)."""


def describe(error: ValidationError, what: str = "spec") -> str:
    """``child.model: Input should be 'resnet20', ...; got 'vgg'``, one line per problem."""
    lines = []
    for item in error.errors():
        where = ".".join(str(p) for p in item["loc"]) or what
        msg = item["msg"].removeprefix("Value error, ")
        if item["type"] == "extra_forbidden":
            msg = f"unknown field (not part of the {what})"
        elif item["type"] == "literal_error":
            msg = f"{msg}; got {clip_repr(item.get('input'))}"
        lines.append(clip(f"{clip(where)}: {msg}", MAX_MESSAGE_LINE))
    return "\n".join(lines)


def validate(model: type[M], data: Any, source: str, what: str) -> M:
    """``data`` as a ``model``, or ConfigError naming every bad field (nothing else happens)."""
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: a {what} is a mapping of fields; got {type(data).__name__}")
    try:
        return model.model_validate(data)
    except ValidationError as e:
        raise ConfigError(f"{source} is not a valid {what}:\n{describe(e, what)}") from e


class DuplicateKey(yaml.MarkedYAMLError):
    """A key given twice in one YAML mapping."""


class StrictLoader(yaml.SafeLoader):
    """PyYAML's safe loader that refuses a key given twice in one mapping."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: dict[Any, yaml.Node] = {}
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue  # "<<: *base" merges are allowed to repeat keys: that is their point
            key = self.construct_object(key_node, deep=True)
            try:
                first = seen.setdefault(key, key_node)
            except TypeError:
                continue  # an unhashable key: the base constructor says so
            if first is not key_node:
                raise DuplicateKey(
                    "while constructing a mapping", node.start_mark,
                    f"key {clip_repr(key, 60)} is given twice (first on line "
                    f"{first.start_mark.line + 1}); a key may appear once", key_node.start_mark)
        return super().construct_mapping(node, deep=deep)


def read_yaml(path: str | Path) -> Any:
    """A YAML file's content, or ConfigError saying why it cannot be read: unreadable, not
    UTF-8, not YAML, a key given twice, nested too deep."""
    p = Path(path)
    try:
        raw = p.read_bytes()
    except OSError as e:
        raise ConfigError(f"cannot read spec {p}: {e.strerror}") from e
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        lineno = raw[:e.start].count(b"\n") + 1
        raise ConfigError(f"{p} is not UTF-8 text: byte {raw[e.start]:#04x} on line {lineno} "
                          f"(offset {e.start}); save the spec as UTF-8") from e
    try:
        return yaml.load(text, Loader=StrictLoader)  # a SafeLoader subclass: no arbitrary objects
    except DuplicateKey as e:
        mark = e.problem_mark
        line = f"line {mark.line + 1}: " if mark is not None else ""
        raise ConfigError(f"{p}: {line}{e.problem}") from e
    except yaml.YAMLError as e:
        raise ConfigError(f"{p} is not valid YAML: {clip(str(e), 600)}") from e
    except RecursionError as e:
        raise ConfigError(f"{p}: YAML nested too deeply to read") from e
