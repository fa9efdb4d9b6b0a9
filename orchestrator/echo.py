"""Echoes of bad input, cut to a readable length: an error quotes what it refuses, never all of it.

A one-megabyte expression or field value refused with its own text in the message would make a
two-megabyte error (once in the message, once under the pointer), flood a terminal and overflow
a Kubernetes status or Event. Every message that quotes user input goes through ``clip``.
"""

from __future__ import annotations

from typing import Any

MAX_ECHO = 120
"""Characters of user input an error message quotes, at most (the omitted middle is counted)."""


def clip(text: str, limit: int = MAX_ECHO) -> str:
    """``text`` itself when short; otherwise its head and tail around ``…[N characters]…``."""
    if len(text) <= limit:
        return text
    keep = max(limit - 24, 2)
    head, tail = keep * 2 // 3, keep - keep * 2 // 3
    return f"{text[:head]}…[{len(text) - head - tail} characters]…{text[len(text) - tail:]}"


def clip_repr(value: Any, limit: int = MAX_ECHO) -> str:
    """``repr(value)``, clipped: the quoted form of a refused value."""
    return clip(repr(value), limit)
