"""``actsearch-ctl search-sim``: compare search strategies without training.

Two rewards (docs/search.md): ``--target``, the similarity of a candidate to a target function
(at its best β); ``--table``, the real accuracies of an accuracy table replayed (a random seed's
final validation accuracy; functions outside the table refused for free), where a run's goal is
the table's top ``--top-fraction`` of functions. Either way a strategy's search quality is
measured in seconds over many seeds.
"""

from __future__ import annotations

import json
import math
from typing import Any

import click

from orchestrator.cli.options import EXPRESSION, echo_json
from orchestrator.cli.space import _space, space_options
from orchestrator.search import STRATEGY_NAMES, StrategyError, make_strategy
from orchestrator.search.simulate import (
    SimilarityReward,
    Spread,
    Summary,
    simulate,
    summarize,
)
from orchestrator.space import Expr, SearchSpace, to_text

EXHAUSTIVE_LIMIT = 1_000_000
"""With ``--strategy all``, exhaustive search runs only where the space has at most this many
sequences; beyond it, enumerating in order says nothing about search quality."""


def _parse_set(values: tuple[str, ...]) -> dict[str, Any]:
    options: dict[str, Any] = {}
    for item in values:
        key, sep, raw = item.partition("=")
        if not sep or not key:
            raise click.BadParameter(f"expected KEY=VALUE; got {item!r}", param_hint="--set")
        try:
            options[key] = json.loads(raw)
        except json.JSONDecodeError:
            options[key] = raw
    return options


@click.command(name="search-sim")
@click.option("--strategy", "strategy_name", type=click.Choice([*STRATEGY_NAMES, "all"]),
              default="all", show_default=True, help="Strategy to run, or all side by side.")
@click.option("--target", type=EXPRESSION, default=None,
              help="The function to find, e.g. 'max(id(x), sigmoid(x))' (or give --table).")
@click.option("--table", "table_path", type=click.Path(dir_okay=False), default=None,
              help="Replay this accuracy table instead (tables/*.jsonl.gz): its space, its "
              "real accuracies; the goal is its top --top-fraction of functions.")
@click.option("--top-fraction", type=click.FloatRange(0.0, 1.0, min_open=True), default=0.01,
              show_default=True, help="With --table: the share of its best functions to reach.")
@space_options
@click.option("--budget", type=click.IntRange(min=1), default=2000, show_default=True,
              help="Evaluations per run: new functions that pass the screen.")
@click.option("--seeds", type=click.IntRange(min=1), default=5, show_default=True,
              help="Runs per strategy, seeds 0..K-1.")
@click.option("--threshold", type=click.FloatRange(0.0, 1.0), default=0.98, show_default=True,
              help="Reward to reach (1 = the target's function).")
@click.option("--batch", type=click.IntRange(min=1), default=20, show_default=True,
              help="Candidates per propose/observe round.")
@click.option("--set", "settings", multiple=True, metavar="KEY=VALUE",
              help="A strategy option (JSON value), e.g. --set lr=3.5e-4; only with one strategy.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def search_sim(strategy_name: str, target: Expr | None, table_path: str | None,
               top_fraction: float, units: int, unary: str | None, binary: str | None,
               budget: int, seeds: int, threshold: float, batch: int,
               settings: tuple[str, ...], as_json: bool) -> None:
    """Best reward over the budget and evaluations to the goal (reward >= THRESHOLD, or the
    table's top functions), over seeds: reached/total and the median, unreached runs censored."""
    if (target is None) == (table_path is None):
        raise click.UsageError("give exactly one of --target and --table")
    if table_path is not None:
        ctx = click.get_current_context()
        given = [f"--{n}" for n in ("units", "unary", "binary")
                 if ctx.get_parameter_source(n) is not click.core.ParameterSource.DEFAULT]
        if given:
            raise click.BadParameter(f"the table fixes the space; drop {', '.join(given)}",
                                     param_hint="--table")
        _replay(strategy_name, table_path, top_fraction, budget, seeds, batch, settings, as_json)
        return
    assert target is not None
    import torch  # the policy strategies train a small torch controller

    torch.set_num_threads(1)
    space = _space(units, unary, binary)
    options = _parse_set(settings)
    try:
        reward = SimilarityReward(target)
    except ValueError as e:
        raise click.BadParameter(str(e), param_hint="--target") from e
    names = _strategies(strategy_name, space, options)
    summaries = []
    for name in names:
        traces = [simulate(make_strategy(name, space, s, **options), reward, budget, batch=batch)
                  for s in range(seeds)]
        summaries.append(summarize(name, traces, budget, threshold))
    if as_json:
        echo_json(_as_json(summaries, target, units, options))
    else:
        _print_table(summaries, target, space.count())


def _strategies(strategy_name: str, space: SearchSpace, options: dict[str, Any]) -> list[str]:
    if options and strategy_name == "all":
        raise click.BadParameter("options apply to one strategy; pick one with --strategy",
                                 param_hint="--set")
    names = list(STRATEGY_NAMES) if strategy_name == "all" else [strategy_name]
    if strategy_name == "all" and space.count() > EXHAUSTIVE_LIMIT:
        names.remove("exhaustive")
    try:
        make_strategy(names[0], space, 0, **options)  # refuse bad options before the long runs
    except StrategyError as e:
        raise click.BadParameter(str(e), param_hint="--set") from e
    return names


def _replay(strategy_name: str, table_path: str, top_fraction: float, budget: int, seeds: int,
            batch: int, settings: tuple[str, ...], as_json: bool) -> None:
    """search-sim --table: every strategy against the table's real accuracies."""
    import torch

    from orchestrator.table.format import TableError, load
    from orchestrator.table.replay import TableReward, table_space, top

    torch.set_num_threads(1)
    try:
        tbl = load(table_path)
        space = table_space(tbl)
        goal = top(tbl, top_fraction)
    except (TableError, ValueError) as e:
        raise click.BadParameter(str(e), param_hint="--table") from e
    options = _parse_set(settings)
    names = _strategies(strategy_name, space, options)
    summaries, refused = [], {}
    for name in names:
        traces = []
        for s in range(seeds):
            traces.append(simulate(make_strategy(name, space, s, **options),
                                   TableReward(tbl, seed=s), budget, batch=batch))
        refused[name] = Spread.of([float(t.failures - sum(r is None for r in t.rewards))
                                   for t in traces])
        summaries.append(summarize(name, traces, budget, goal.threshold, set(goal.fingerprints)))
    head = {"table": table_path, "functions": len(tbl), "seeds_in_table": list(tbl.seeds),
            "partial": bool(tbl.meta.get("partial")), "top_fraction": top_fraction,
            "top_functions": goal.count, "top_threshold": round(goal.threshold, 5)}
    if as_json:
        out = _as_json(summaries, None, space.units, options)
        out.pop("target")
        for entry, name in zip(out["strategies"], names, strict=True):
            entry["refused"] = _spread(refused[name])
        echo_json({**head, **out})
        return
    from rich.console import Console

    Console(width=200).print(
        f"table {table_path}: {len(tbl)} functions{' (PARTIAL)' if head['partial'] else ''}, "
        f"goal: its top {100 * top_fraction:g} % = {goal.count} functions with mean final "
        f"validation accuracy >= {goal.threshold:.4f}; rewards: a random seed's final accuracy",
        soft_wrap=True)
    _print_table(summaries, None, space.count(), goal_text=f"the table's top {100 * top_fraction:g} %",
                 refused=refused)


def _num(v: float) -> float | None:
    return None if math.isnan(v) else round(v, 4)


def _spread(s: Spread) -> dict[str, Any]:
    return {"mean": _num(s.mean), "std": _num(s.std), "n": s.n}


def _as_json(summaries: list[Summary], target: Expr | None, units: int,
             options: dict[str, Any]) -> dict[str, Any]:
    return {
        "target": None if target is None else to_text(target),
        "units": units,
        "options": options,
        "strategies": [
            {
                "strategy": s.strategy,
                "seeds": s.seeds,
                "budget": s.budget,
                "best_after": [
                    {"evaluations": c, **_spread(b)} for c, b in zip(s.checkpoints, s.best, strict=True)
                ],
                "threshold": s.threshold,
                "evaluations_to_threshold": _spread(s.to_threshold),
                "reached": s.reached,
                "evaluations_to_threshold_censored": _spread(s.to_threshold_censored),
                "median_evaluations_to_threshold": s.median_to_threshold,
                "proposals": _spread(s.proposals),
                "entropy_first_last": None if s.entropy_first_last is None
                else [_spread(x) for x in s.entropy_first_last],
                "batch_reward_first_last": None if s.reward_first_last is None
                else [_spread(x) for x in s.reward_first_last],
            }
            for s in summaries
        ],
    }


def _fmt(s: Spread, digits: int = 3) -> str:
    if s.n == 0:
        return "-"
    return f"{s.mean:.{digits}f} ± {s.std:.{digits}f}"


def _median(s: Summary) -> str:
    return f"> {s.budget}" if s.median_to_threshold is None else f"{s.median_to_threshold:g}"


def _print_table(summaries: list[Summary], target: Expr | None, count: int,
                 goal_text: str | None = None, refused: dict[str, Spread] | None = None) -> None:
    from rich.console import Console
    from rich.table import Table

    first = summaries[0]
    console = Console(width=200)
    what = f"target {to_text(target)}" if target is not None else "real accuracies"
    best = Table(title=f"best reward after % of {first.budget} evaluations "
                       f"({what}, {count:,} sequences, {first.seeds} seeds)")
    best.add_column("strategy")
    for c in first.checkpoints:
        best.add_column(f"{round(100 * c / first.budget)}%", justify="right")
    for s in summaries:
        best.add_row(s.strategy, *[f"{b.mean:.3f}±{b.std:.3f}" for b in s.best])
    console.print(best)
    reach = Table(title=f"evaluations to {goal_text or f'reward >= {first.threshold:g}'}")
    cols = ["strategy", "reached", "median evals (unreached censored)",
            "mean evals (seeds that reached)", "proposals"]
    if refused is not None:
        cols.append("refused (not in table)")
    cols += ["entropy first→last 10 %", "batch reward first→last 10 %"]
    for col in cols:
        reach.add_column(col, justify="left" if col == "strategy" else "right")
    for s in summaries:
        ent = rew = "-"
        if s.entropy_first_last is not None and s.reward_first_last is not None:
            ent = f"{s.entropy_first_last[0].mean:.2f} → {s.entropy_first_last[1].mean:.2f}"
            rew = f"{s.reward_first_last[0].mean:.3f} → {s.reward_first_last[1].mean:.3f}"
        extra = [] if refused is None else [_fmt(refused[s.strategy], 0)]
        reach.add_row(s.strategy, f"{s.reached}/{s.seeds}", _median(s), _fmt(s.to_threshold, 0),
                      _fmt(s.proposals, 0), *extra, ent, rew)
    console.print(reach)
