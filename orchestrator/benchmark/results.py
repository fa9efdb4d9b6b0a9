"""From cell runs to the paper-style table: medians over seeds, the sign test, Markdown, JSON and
a plot. Built from what MLflow holds (the cells' tags and logged metrics), so the table of a
finished benchmark and ``actsearch-ctl benchmark-report`` agree with the runs one can browse."""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from orchestrator.benchmark.stats import SignTest, Summary, sign_test, summarize
from orchestrator.contract import Tag
from orchestrator.space.plot import save_figure

Column = tuple[str, str]  # (model, dataset)
Key = tuple[str, str, str]  # (label, model, dataset)
MARK = {1: "+", 0: "=", -1: "−"}


@dataclass(frozen=True)
class Record:
    """One cell as logged: its coordinates, and its value or why it has none."""

    row: int
    label: str
    expression: str
    model: str
    dataset: str
    seed: int
    value: float | None  # None: failed or not finished
    failure: str | None = None


def records_from_runs(runs: Iterable[Any], metric: str) -> list[Record]:
    """Records from cell runs (``TrialRun``s with tags and metrics); runs without the cell tags
    are skipped. A run still in progress has neither value nor failure."""
    out = []
    for r in runs:
        t = r.tags
        if not {Tag.ACTIVATION, Tag.MODEL, Tag.DATASET, Tag.SEED} <= set(t):
            continue
        value = r.metrics.get(metric) if r.status == "FINISHED" else None
        failure = None
        if r.done and value is None:
            failure = r.failure or t.get(Tag.FAILURE) or f"run {r.status} without {metric}"
        out.append(Record(int(t.get(Tag.ROW, "0")), t[Tag.ACTIVATION], t.get(Tag.EXPRESSION, ""),
                          t[Tag.MODEL], t[Tag.DATASET], int(t[Tag.SEED]), value, failure))
    return out


@dataclass
class Results:
    metric: str
    baseline: str
    tie_tolerance: float
    pairs: str
    labels: list[str]
    expressions: dict[str, str]
    columns: list[Column]
    values: dict[Key, dict[int, float]] = field(default_factory=dict)
    failures: dict[Key, int] = field(default_factory=dict)
    pending: int = 0

    def summary(self, label: str, column: Column) -> Summary:
        seeds = self.values.get((label, *column), {})
        return summarize([seeds[s] for s in sorted(seeds)])

    def marks(self, label: str) -> dict[Column, str]:
        """Per column: ``+``/``=``/``−`` of the medians, or ``w/t/l`` over seeds."""
        out = {}
        for col in self.columns:
            test = self._test(label, [col])
            if self.pairs == "seeds":
                out[col] = f"{test.wins}/{test.ties}/{test.losses}"
            elif test.wins + test.ties + test.losses:
                out[col] = MARK[1 if test.wins else -1 if test.losses else 0]
            else:
                out[col] = "·"
        return out

    def sign_test(self, label: str) -> SignTest:
        return self._test(label, self.columns)

    def _test(self, label: str, columns: Sequence[Column]) -> SignTest:
        pairs: list[tuple[float, float]] = []
        for col in columns:
            if self.pairs == "medians":
                pairs.append((self.summary(label, col).median, self.summary(self.baseline, col).median))
            else:
                mine = self.values.get((label, *col), {})
                base = self.values.get((self.baseline, *col), {})
                pairs += [(mine[s], base[s]) for s in sorted(mine.keys() & base.keys())]
        return sign_test(pairs, self.tie_tolerance)

    @property
    def candidates(self) -> list[str]:
        return [x for x in self.labels if x != self.baseline]


def build(records: Iterable[Record], metric: str, baseline: str, tie_tolerance: float = 0.0,
          pairs: str = "medians", columns: Sequence[Column] | None = None) -> Results:
    """Results over ``records``; rows ordered by their row index, columns as given (default:
    in order of first appearance)."""
    recs = sorted(records, key=lambda r: (r.row, r.seed))
    labels: list[str] = []
    expressions: dict[str, str] = {}
    cols: list[Column] = list(columns or [])
    for r in recs:
        if r.label not in expressions:
            labels.append(r.label)
            expressions[r.label] = r.expression
        if columns is None and (r.model, r.dataset) not in cols:
            cols.append((r.model, r.dataset))
    res = Results(metric, baseline, tie_tolerance, pairs, labels, expressions, cols)
    for r in recs:
        key = (r.label, r.model, r.dataset)
        if r.value is not None and math.isfinite(r.value):
            res.values.setdefault(key, {})[r.seed] = r.value
        elif r.failure is not None:
            res.failures[key] = res.failures.get(key, 0) + 1
        else:
            res.pending += 1
    return res


def metric_key(*parts: str) -> str:
    """An MLflow metric name from labels that may hold any character (``|x|``, ``σ``...)."""
    return ".".join(re.sub(r"[^A-Za-z0-9_\-/ ]+", "_", p).strip("_") or "_" for p in parts)


def to_metrics(res: Results) -> dict[str, float]:
    """The parent run's metrics: per activation × model × dataset the median and its spread
    (``lo``/``hi`` over seeds), per activation the sign test against the baseline (wins, ties,
    losses and ``p_value``), so the compare view can plot and sort what the table says."""
    out: dict[str, float] = {}
    for label in res.labels:
        for model, dataset in res.columns:
            sm = res.summary(label, (model, dataset))
            if sm.n:
                for stat, value in (("median", sm.median), ("lo", sm.lo), ("hi", sm.hi)):
                    out[metric_key(stat, label, model, dataset)] = value
        if label != res.baseline:
            t = res.sign_test(label)
            out |= {metric_key("sign_wins", label): t.wins, metric_key("sign_ties", label): t.ties,
                    metric_key("sign_losses", label): t.losses,
                    metric_key("sign_p", label): t.p_value}
    return {k: float(v) for k, v in out.items() if math.isfinite(float(v))}


# ---------------------------------------------------------------------------------------------
# Markdown, JSON, plot
# ---------------------------------------------------------------------------------------------


def _pct(v: float) -> str:
    return "–" if math.isnan(v) else f"{100 * v:.2f}"


def _column_name(col: Column) -> str:
    return f"{col[0]} / {col[1]}"


def to_markdown(res: Results, title: str) -> str:
    """The medians table (rows: activations; columns: model / dataset; best median in bold) and
    the sign-test table against the baseline."""
    metric = res.metric.replace("_", " ")
    lines = [f"## {title}: median {metric} (%) over seeds [min–max]", ""]
    lines.append("| activation | " + " | ".join(_column_name(c) for c in res.columns) + " |")
    lines.append("|---|" + "---|" * len(res.columns))
    best = {c: max((res.summary(x, c).median for x in res.labels
                    if not math.isnan(res.summary(x, c).median)), default=math.nan)
            for c in res.columns}
    seeds_seen = {len(v) for v in res.values.values()}
    full = max(seeds_seen, default=0)
    for label in res.labels:
        cells = []
        for c in res.columns:
            s = res.summary(label, c)
            if s.n == 0:
                text = "–"
            else:
                text = _pct(s.median)
                if s.median == best[c]:
                    text = f"**{text}**"
                text += f" [{_pct(s.lo)}–{_pct(s.hi)}]"
                if s.n < full:
                    text += f" (n={s.n})"
            failed = res.failures.get((label, *c), 0)
            if failed:
                text += f" ({failed} failed)"
            cells.append(text)
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    lines.append("")
    if res.baseline in res.labels and res.candidates:
        unit = ("medians of each model / dataset" if res.pairs == "medians"
                else "each seed of each model / dataset (wins/ties/losses per column)")
        lines += [f"## Sign test against {res.baseline}: {unit}; ties within "
                  f"{100 * res.tie_tolerance:g} points", ""]
        lines.append("| activation | " + " | ".join(_column_name(c) for c in res.columns)
                     + " | wins | ties | losses | p (two-sided) |")
        lines.append("|---|" + "---|" * (len(res.columns) + 4))
        for label in res.candidates:
            marks = res.marks(label)
            t = res.sign_test(label)
            lines.append(f"| {label} | " + " | ".join(marks[c] for c in res.columns)
                         + f" | {t.wins} | {t.ties} | {t.losses} | {t.p_value:.3f} |")
        lines.append("")
    if res.pending:
        lines += [f"{res.pending} cell(s) not finished yet.", ""]
    return "\n".join(lines)


def _num(v: float) -> float | None:
    return None if math.isnan(v) else v


def to_json(res: Results) -> dict[str, Any]:
    table = []
    for label in res.labels:
        for c in res.columns:
            s = res.summary(label, c)
            table.append({
                "activation": label, "expression": res.expressions[label], "model": c[0],
                "dataset": c[1], "n": s.n, "median": _num(s.median), "min": _num(s.lo),
                "max": _num(s.hi), "failed": res.failures.get((label, *c), 0),
                "values": {str(k): v for k, v in sorted(res.values.get((label, *c), {}).items())},
            })
    tests = []
    if res.baseline in res.labels:
        for label in res.candidates:
            t = res.sign_test(label)
            tests.append({"activation": label, "wins": t.wins, "ties": t.ties,
                          "losses": t.losses, "p_value": t.p_value,
                          "per_column": {_column_name(c): m for c, m in res.marks(label).items()}})
    return {"metric": res.metric, "baseline": res.baseline, "tie_tolerance": res.tie_tolerance,
            "pairs": res.pairs, "table": table, "sign_test": tests, "pending": res.pending}


def plot(res: Results, path: str | Path) -> Path:
    """Grouped bars (median per activation, min–max whiskers) with every seed as a dot, one
    group per model / dataset."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n = max(1, len(res.labels))
    width = 0.8 / n
    fig, ax = plt.subplots(figsize=(max(6.0, 1.2 + len(res.columns) * n * 0.5), 4.5))
    for i, label in enumerate(res.labels):
        xs, meds, lo, hi = [], [], [], []
        for j, c in enumerate(res.columns):
            s = res.summary(label, c)
            if s.n == 0:
                continue
            x = j - 0.4 + width * (i + 0.5)
            xs.append(x)
            meds.append(100 * s.median)
            lo.append(100 * (s.median - s.lo))
            hi.append(100 * (s.hi - s.median))
            seeds = list(res.values[(label, *c)].values())
            ax.scatter([x] * len(seeds), [100 * v for v in seeds], s=10, color="black", zorder=3)
        ax.bar(xs, meds, width=width * 0.9, yerr=[lo, hi], capsize=2, label=label)
    ax.set_xticks(range(len(res.columns)), [_column_name(c) for c in res.columns])
    ax.set_ylabel(f"{res.metric.replace('_', ' ')} (%)")
    lows = [100 * v for seeds in res.values.values() for v in seeds.values()]
    if lows:
        top, bottom = max(lows), min(lows)
        margin = max(0.5, 0.1 * (top - bottom))
        ax.set_ylim(max(0.0, bottom - margin), min(100.0, top + margin))
    ax.legend(fontsize=8, ncol=min(n, 5))
    ax.grid(axis="y", alpha=0.3)
    return save_figure(fig, path)

