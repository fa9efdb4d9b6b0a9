"""``actsearch-ctl search-sim``: compare search strategies on a simulated reward, no training.

The reward of a candidate is its similarity to a target function (docs/search.md), so a strategy's
search quality can be measured in seconds over many seeds.
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
from orchestrator.space import Expr, to_text

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
@click.option("--target", type=EXPRESSION, required=True,
              help="The function to find, e.g. 'max(id(x), sigmoid(x))'.")
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
def search_sim(strategy_name: str, target: Expr, units: int, unary: str | None,
               binary: str | None, budget: int, seeds: int, threshold: float, batch: int,
               settings: tuple[str, ...], as_json: bool) -> None:
    """Best reward over the budget and evaluations to THRESHOLD, mean ± sd over seeds."""
    import torch  # the policy strategies train a small torch controller

    torch.set_num_threads(1)
    space = _space(units, unary, binary)
    options = _parse_set(settings)
    if options and strategy_name == "all":
        raise click.BadParameter("options apply to one strategy; pick one with --strategy",
                                 param_hint="--set")
    names = list(STRATEGY_NAMES) if strategy_name == "all" else [strategy_name]
    if strategy_name == "all" and space.count() > EXHAUSTIVE_LIMIT:
        names.remove("exhaustive")
    try:
        reward = SimilarityReward(target)
    except ValueError as e:
        raise click.BadParameter(str(e), param_hint="--target") from e
    try:
        make_strategy(names[0], space, 0, **options)  # refuse bad options before the long runs
    except StrategyError as e:
        raise click.BadParameter(str(e), param_hint="--set") from e
    summaries = []
    for name in names:
        traces = [simulate(make_strategy(name, space, s, **options), reward, budget, batch=batch)
                  for s in range(seeds)]
        summaries.append(summarize(name, traces, budget, threshold))
    if as_json:
        echo_json(_as_json(summaries, target, units, options))
    else:
        _print_table(summaries, target, space.count())


def _num(v: float) -> float | None:
    return None if math.isnan(v) else round(v, 4)


def _spread(s: Spread) -> dict[str, Any]:
    return {"mean": _num(s.mean), "std": _num(s.std), "n": s.n}


def _as_json(summaries: list[Summary], target: Expr, units: int,
             options: dict[str, Any]) -> dict[str, Any]:
    return {
        "target": to_text(target),
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


def _print_table(summaries: list[Summary], target: Expr, count: int) -> None:
    from rich.console import Console
    from rich.table import Table

    first = summaries[0]
    console = Console(width=200)
    best = Table(title=f"best reward after % of {first.budget} evaluations "
                       f"(target {to_text(target)}, {count:,} sequences, {first.seeds} seeds)")
    best.add_column("strategy")
    for c in first.checkpoints:
        best.add_column(f"{round(100 * c / first.budget)}%", justify="right")
    for s in summaries:
        best.add_row(s.strategy, *[f"{b.mean:.3f}±{b.std:.3f}" for b in s.best])
    console.print(best)
    reach = Table(title=f"evaluations to reward >= {first.threshold:g}")
    for col in ("strategy", "reached", "evals (seeds that reached)", "evals (unreached = budget)",
                "proposals", "entropy first→last 10 %", "batch reward first→last 10 %"):
        reach.add_column(col, justify="left" if col == "strategy" else "right")
    for s in summaries:
        ent = rew = "-"
        if s.entropy_first_last is not None and s.reward_first_last is not None:
            ent = f"{s.entropy_first_last[0].mean:.2f} → {s.entropy_first_last[1].mean:.2f}"
            rew = f"{s.reward_first_last[0].mean:.3f} → {s.reward_first_last[1].mean:.3f}"
        reach.add_row(s.strategy, f"{s.reached}/{s.seeds}", _fmt(s.to_threshold, 0),
                      _fmt(s.to_threshold_censored, 0), _fmt(s.proposals, 0), ent, rew)
    console.print(reach)
