"""The accuracy table's file format and API: real child accuracies of many distinct activation
functions, trained once by ``actsearch-ctl table build`` and replayed by ``search-sim --table``.

One gzipped JSON-lines file. The first line is the metadata (an object with ``"format":
"actsearch-table/1"`` and ``"steps"``: the step counts at which validation accuracy was read,
plus the build spec, code version, machine and timing). Every further line is one function::

    {"expression": "sigmul(mul_beta(x), id(x))", "fingerprint": "0f3a...",
     "seeds": {"0": {"val": [0.81, 0.84, 0.86, 0.87], "test": 0.865},
               "1": {"val": [0.80, null, null, null], "test": null, "failure": "nan"}}}

``val`` holds the validation accuracy at each of the metadata's ``steps``; a seed whose training
diverged (or failed) has null from the first step it did not reach, a null ``test`` and a
``failure`` naming why: it is recorded, never dropped. Torch-free and NumPy-free, so anything
(the simulator, a surrogate, a notebook) can read it cheaply.
"""

from __future__ import annotations

import gzip
import json
import math
import os
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

FORMAT = "actsearch-table/1"
DIGITS = 5
"""Accuracies are stored rounded to 5 decimals: finer than one image in 10,000."""


class TableError(ValueError):
    """A table file that cannot be read: names the line and the field."""


@dataclass(frozen=True)
class Curve:
    """One seed's training of one function: validation accuracy at each of the table's steps
    (None where it had diverged or failed), the final test accuracy, and why it failed."""

    val: tuple[float | None, ...]
    test: float | None
    failure: str | None = None

    @property
    def final(self) -> float | None:
        """The validation accuracy at the last step: the search's reward; None if it failed."""
        return self.val[-1] if self.val else None


@dataclass(frozen=True)
class Entry:
    """One distinct function (by fingerprint) and its curves, by seed."""

    expression: str
    fingerprint: str
    curves: Mapping[int, Curve]

    @property
    def seeds(self) -> tuple[int, ...]:
        return tuple(sorted(self.curves))

    def final(self, seed: int) -> float | None:
        """Seed ``seed``'s final validation accuracy; None if it diverged or failed
        (KeyError for a seed the table did not train)."""
        return self.curves[seed].final

    def mean_final(self) -> float | None:
        """The function's accuracy in the table, what ranks it and defines a replay's goal: mean
        final validation accuracy over *every* seed; None if any seed failed (a function that
        diverges on one seed in a few is not a good function, whatever its lucky seed got)."""
        finals = [c.final for c in self.curves.values()]
        if not finals or any(f is None for f in finals):
            return None
        return sum(f for f in finals if f is not None) / len(finals)

    def mean_finished(self) -> float | None:
        """Mean final validation accuracy over the seeds that *finished* (None if none did):
        what a function a search completed on one seed scores when another seed diverged, where
        ``mean_final`` gives nothing (``table.staged.outcome``'s best function found)."""
        finals = [f for c in self.curves.values() if (f := c.final) is not None]
        return sum(finals) / len(finals) if finals else None


@dataclass(frozen=True)
class Table:
    """A loaded table: its metadata, steps and entries (one per distinct function)."""

    meta: Mapping[str, Any]
    entries: tuple[Entry, ...]
    _index: dict[str, Entry] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        index: dict[str, Entry] = {}
        for e in self.entries:
            if e.fingerprint in index:
                raise TableError(f"fingerprint {e.fingerprint} appears twice "
                                 f"({index[e.fingerprint].expression}, {e.expression})")
            if len(e.curves) == 0:
                raise TableError(f"{e.expression}: no seeds")
            for seed, c in e.curves.items():
                if len(c.val) != len(self.steps):
                    raise TableError(f"{e.expression}: seed {seed} has {len(c.val)} validation "
                                     f"accuracies for {len(self.steps)} steps")
            index[e.fingerprint] = e
        object.__setattr__(self, "_index", index)

    @property
    def steps(self) -> tuple[int, ...]:
        """The step counts at which every curve's validation accuracy was read."""
        return tuple(int(s) for s in self.meta["steps"])

    @property
    def seeds(self) -> tuple[int, ...]:
        """Every seed any entry was trained with."""
        return tuple(sorted({s for e in self.entries for s in e.curves}))

    def get(self, fingerprint: str) -> Entry | None:
        return self._index.get(fingerprint)

    def __len__(self) -> int:
        return len(self.entries)

    def __iter__(self) -> Iterator[Entry]:
        return iter(self.entries)


def _acc(v: float | None) -> float | None:
    if v is None or not math.isfinite(v):
        return None
    return round(float(v), DIGITS)


def entry_json(e: Entry) -> dict[str, Any]:
    seeds: dict[str, Any] = {}
    for seed in sorted(e.curves):
        c = e.curves[seed]
        d: dict[str, Any] = {"val": [_acc(v) for v in c.val], "test": _acc(c.test)}
        if c.failure is not None:
            d["failure"] = c.failure
        seeds[str(seed)] = d
    return {"expression": e.expression, "fingerprint": e.fingerprint, "seeds": seeds}


def save(table: Table, path: str | Path) -> Path:
    """Write ``table`` (atomically: a reader never sees half a file); byte-identical for equal
    tables, so a rebuilt table diffs only where it changed."""
    path = Path(path)
    meta = {**table.meta, "format": FORMAT, "steps": list(table.steps)}
    lines = [json.dumps(meta, sort_keys=True, ensure_ascii=False)]
    lines += [json.dumps(entry_json(e), ensure_ascii=False) for e in table.entries]
    data = ("\n".join(lines) + "\n").encode()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as raw, gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0) as gz:
        gz.write(data)
    os.replace(tmp, path)
    return path


def _number(v: Any, where: str) -> float | None:
    if v is None:
        return None
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not 0.0 <= v <= 1.0:
        raise TableError(f"{where}: an accuracy is a number in [0, 1] or null; got {v!r}")
    return float(v)


def _entry(obj: Any, where: str) -> Entry:
    if not isinstance(obj, dict):
        raise TableError(f"{where}: expected an object")
    for key in ("expression", "fingerprint", "seeds"):
        if key not in obj:
            raise TableError(f"{where}: missing {key!r}")
    seeds = obj["seeds"]
    if not isinstance(seeds, dict) or not seeds:
        raise TableError(f"{where}.seeds: expected an object of seeds")
    curves: dict[int, Curve] = {}
    for key, c in seeds.items():
        at = f"{where}.seeds.{key}"
        try:
            seed = int(key)
        except ValueError:
            raise TableError(f"{at}: a seed is an integer") from None
        if not isinstance(c, dict) or not isinstance(c.get("val"), list):
            raise TableError(f"{at}: expected {{'val': [...], 'test': ...}}")
        failure = c.get("failure")
        if failure is not None and not isinstance(failure, str):
            raise TableError(f"{at}.failure: expected a string or null")
        curves[seed] = Curve(tuple(_number(v, f"{at}.val") for v in c["val"]),
                             _number(c.get("test"), f"{at}.test"), failure)
    return Entry(str(obj["expression"]), str(obj["fingerprint"]), curves)


def parse_lines(lines: Iterable[str], source: str = "table") -> Table:
    """A table from its JSON lines (the first the metadata)."""
    it = iter(lines)
    first = next(it, None)
    if first is None:
        raise TableError(f"{source}: empty file")
    try:
        meta = json.loads(first)
    except json.JSONDecodeError as e:
        raise TableError(f"{source}:1: not JSON: {e}") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise TableError(f"{source}:1: metadata must say \"format\": {FORMAT!r}")
    steps = meta.get("steps")
    if (not isinstance(steps, list) or not steps
            or not all(isinstance(s, int) and not isinstance(s, bool) and s > 0 for s in steps)
            or steps != sorted(set(steps))):
        raise TableError(f"{source}:1: steps must be increasing positive integers; got {steps!r}")
    entries = []
    for n, line in enumerate(it, start=2):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as e:
            raise TableError(f"{source}:{n}: not JSON: {e}") from None
        entries.append(_entry(obj, f"{source}:{n}"))
    try:
        return Table(meta, tuple(entries))
    except TableError as e:
        raise TableError(f"{source}: {e}") from None


def load(path: str | Path) -> Table:
    """Read a table file (gzipped, or plain JSON lines); TableError names what is wrong."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as e:
        raise TableError(f"{path}: cannot read: {e.strerror}") from None
    if raw[:2] == b"\x1f\x8b":
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError) as e:
            raise TableError(f"{path}: broken gzip data: {e}") from None
    try:
        text = raw.decode()
    except UnicodeDecodeError:
        raise TableError(f"{path}: not UTF-8 text") from None
    return parse_lines(text.splitlines(), str(path))
