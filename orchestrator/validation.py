"""Validation errors as sentences: one line per problem, naming the field and what it allows."""

from __future__ import annotations

from pydantic import ValidationError


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
