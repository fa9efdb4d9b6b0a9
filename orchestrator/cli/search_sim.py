"""``actsearch-ctl search-sim``: compare search strategies without training.

Two rewards (docs/search.md): ``--target``, the similarity of a candidate to a target function
(at its best β); ``--table``, the real accuracies of an accuracy table replayed (a random seed's
final validation accuracy; functions outside the table refused for free), where a run's goal is
the table's top ``--top-fraction`` of functions. Either way a strategy's search quality is
measured in seconds over many seeds. ``--protocol FILE`` runs the comparison protocol
(``orchestrator.search.protocol``): declared strategies on the development or the held-out
targets. Evaluations to the goal are censored where a run does not reach it: Kaplan–Meier
median and quartiles, and log-rank and Gehan tests of each strategy against the baseline.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from typing import Any

import click

from orchestrator.cli.options import EXPRESSION, echo_json
from orchestrator.cli.space import _space, space_options
from orchestrator.errors import ConfigError
from orchestrator.search import STRATEGY_NAMES, StrategyError, make_strategy
from orchestrator.search.protocol import ComparisonProtocol, TableProtocol, load_protocol
from orchestrator.search.simulate import (
    Reward,
    SimilarityReward,
    Spread,
    Summary,
    Versus,
    simulate,
    summarize,
    versus,
)
from orchestrator.search.survival import Quartiles
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
@click.option("--protocol", "protocol_path", type=click.Path(dir_okay=False), default=None,
              help="A comparison protocol file (examples/search-protocol.yaml): its strategies, "
                   "targets, space, budget, seeds and threshold replace the options above.")
@click.option("--split", type=click.Choice(["development", "heldout", "whole"]),
              default="development", show_default=True,
              help="With --protocol: the targets to run, or the half of its table to replay "
                   "(whole: a table protocol's whole table, development half included).")
@click.option("--only", default=None, metavar="LABEL,...",
              help="With --protocol: run only these strategies (by label) and the baseline, "
                   "e.g. to spread one protocol over several processes.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def search_sim(strategy_name: str, target: Expr | None, table_path: str | None,
               top_fraction: float, units: int, unary: str | None, binary: str | None,
               budget: int, seeds: int, threshold: float, batch: int,
               settings: tuple[str, ...], protocol_path: str | None, split: str,
               only: str | None, as_json: bool) -> None:
    """Best reward over the budget and evaluations to the goal (reward >= THRESHOLD, or the
    table's top functions), over seeds: reached/total, Kaplan–Meier median and quartiles with
    unreached runs censored, and log-rank and Gehan p-values against random search."""
    if protocol_path is not None:
        if target is not None or table_path is not None or settings:
            raise click.BadParameter("the protocol names the targets and options; drop --target, "
                                     "--table and --set", param_hint="--protocol")
        try:
            protocol = load_protocol(protocol_path)
        except ConfigError as e:
            raise click.BadParameter(str(e), param_hint="--protocol") from e
        labels = None if only is None else [x.strip() for x in only.split(",") if x.strip()]
        unknown = sorted(set(labels or ()) - {a.label for a in protocol.strategies})
        if unknown:
            raise click.BadParameter(f"{', '.join(map(repr, unknown))} not among the protocol's "
                                     f"strategies: {', '.join(a.label for a in protocol.strategies)}",
                                     param_hint="--only")
        if isinstance(protocol, TableProtocol):
            _run_table_protocol(protocol, protocol_path, split, labels, as_json)
        elif split == "whole":
            raise click.BadParameter("whole is for a table protocol; this one names targets: "
                                     "development or heldout", param_hint="--split")
        else:
            _run_protocol(protocol, protocol_path, split, labels, as_json)
        return
    if (target is None) == (table_path is None):
        raise click.UsageError("give exactly one of --target, --table and --protocol")
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
    summaries = _run_arms([(name, name, options) for name in names], space, _every_seed(reward),
                          budget, seeds, threshold, batch)
    tests = _tests(summaries, "random")
    if as_json:
        echo_json(_as_json(summaries, tests, target, units, options))
    else:
        _print_table(summaries, tests, target, space.count())


def _every_seed(reward: Reward) -> Callable[[int], Reward]:
    """The same reward for every seed (the symbolic reward has no noise)."""
    return lambda _seed: reward


def _run_arms(arms: list[tuple[str, str, dict[str, Any]]], space: SearchSpace,
              reward: Callable[[int], Reward], budget: int, seeds: int, threshold: float,
              batch: int, goal: set[str] | None = None) -> list[Summary]:
    """Each (label, strategy, options) run on seeds 0..K-1 (``reward(seed)``), summarised."""
    summaries = []
    for label, name, options in arms:
        traces = [simulate(make_strategy(name, space, s, **options), reward(s), budget, batch=batch)
                  for s in range(seeds)]
        summaries.append(summarize(label, traces, budget, threshold, goal))
    return summaries


def _tests(summaries: list[Summary], baseline: str) -> dict[str, Versus]:
    """Each strategy against the baseline (when it ran), by label."""
    base = next((s for s in summaries if s.strategy == baseline), None)
    if base is None:
        return {}
    return {s.strategy: versus(s, base) for s in summaries if s is not base}


def _run_protocol(protocol: ComparisonProtocol, path: str, split: str, only: list[str] | None,
                  as_json: bool) -> None:
    import torch

    torch.set_num_threads(1)
    space = protocol.space()
    arms = [(a.label, a.name, a.options) for a in protocol.strategies
            if only is None or a.label in only or a.label == protocol.baseline]
    results = []
    for target in protocol.targets("heldout" if split == "heldout" else "development"):
        reward = SimilarityReward(target)
        summaries = _run_arms(arms, space, _every_seed(reward), protocol.budget, protocol.seeds,
                              protocol.threshold, protocol.batch)
        tests = _tests(summaries, protocol.baseline)
        results.append((target, summaries, tests))
        if not as_json:
            _print_table(summaries, tests, target, space.count(), brief=True)
    if as_json:
        echo_json({
            "protocol": path,
            "split": split,
            "units": protocol.units,
            "baseline": protocol.baseline,
            "targets": [_as_json(s, t, target, protocol.units, {}) for target, s, t in results],
        })


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
    from orchestrator.table.replay import table_space

    torch.set_num_threads(1)
    try:
        tbl = load(table_path)
        space = table_space(tbl)
    except (TableError, ValueError) as e:
        raise click.BadParameter(str(e), param_hint="--table") from e
    options = _parse_set(settings)
    names = _strategies(strategy_name, space, options)
    _replay_arms([(name, name, options, None) for name in names], tbl, table_path, top_fraction,
                 budget, seeds, batch, "random", as_json, {})


def _run_table_protocol(protocol: TableProtocol, path: str, split: str, only: list[str] | None,
                        as_json: bool) -> None:
    """A table protocol: its strategies replayed on one half of its table (or the whole), each
    surrogate with a ``prior`` pre-fitted on the other half's functions only."""
    import torch

    from orchestrator.table.format import TableError, load
    from orchestrator.table.split import HALVES, RULE, half, prior

    torch.set_num_threads(1)
    try:
        tbl = load(protocol.table)
    except (TableError, OSError) as e:
        raise click.BadParameter(f"table: {e}", param_hint="--protocol") from e
    arms = [a for a in protocol.strategies
            if only is None or a.label in only or a.label == protocol.baseline]
    for a in arms:
        if a.prior is not None and split in (a.prior, "whole"):
            raise click.BadParameter(
                f"strategy {a.label!r} pre-fits its surrogate on the {a.prior} half, which the "
                f"{split} split replays: a surrogate must not have seen the functions it is "
                "measured on", param_hint="--split")
    play = tbl if split == "whole" else half(tbl, "heldout" if split == "heldout" else "development")
    priors: dict[str, list[tuple[str, float]]] = {
        h: prior(half(tbl, h)) for h in HALVES if any(a.prior == h for a in arms)}
    _replay_arms([(a.label, a.name, a.options, a.prior) for a in arms], play, protocol.table,
                 protocol.top_fraction, protocol.budget, protocol.seeds, protocol.batch,
                 protocol.baseline, as_json, priors,
                 head={"protocol": path, "split": split, "split_rule": RULE,
                       "table_functions": len(tbl)})


def _replay_arms(arms: list[tuple[str, str, dict[str, Any], str | None]], tbl: Any,
                 table_path: str, top_fraction: float, budget: int, seeds: int, batch: int,
                 baseline: str, as_json: bool, priors: dict[str, list[tuple[str, float]]],
                 head: dict[str, Any] | None = None) -> None:
    """Each (label, strategy, options, prior half) replayed on ``tbl`` over seeds 0..K-1, and
    the comparison printed: the goal is ``tbl``'s own top ``top_fraction``."""
    from orchestrator.table.replay import TableReward, proposal_cap, table_space, top

    try:
        space = table_space(tbl)
        goal = top(tbl, top_fraction)
    except ValueError as e:
        raise click.BadParameter(str(e), param_hint="--table") from e
    cap = proposal_cap(tbl, budget)
    summaries, refused = [], {}
    for label, name, options, prior_half in arms:
        traces = []
        for s in range(seeds):
            strategy = make_strategy(name, space, s, **options,
                                     surrogate_prior=None if prior_half is None else priors[prior_half])
            traces.append(simulate(strategy, TableReward(tbl, seed=s), budget, batch=batch,
                                   max_proposals=cap))
        refused[label] = Spread.of([float(t.failures - sum(r is None for r in t.rewards))
                                    for t in traces])
        summaries.append(summarize(label, traces, budget, goal.threshold, set(goal.fingerprints)))
    tests = _tests(summaries, baseline)
    partial = bool(tbl.meta.get("partial"))
    head = {**(head or {}), "table": table_path, "functions": len(tbl),
            "seeds_in_table": list(tbl.seeds), "partial": partial, "top_fraction": top_fraction,
            "top_functions": goal.count, "top_threshold": round(goal.threshold, 5)}
    if as_json:
        out = _as_json(summaries, tests, None, space.units, arms[0][2] if len(arms) == 1 else {})
        out.pop("target")
        for entry, (label, *_rest) in zip(out["strategies"], arms, strict=True):
            entry["refused"] = _spread(refused[label])
        echo_json({**head, **out})
        return
    from rich.console import Console

    where = f" ({head['split']} half)" if head.get("split") in ("development", "heldout") else ""
    Console(width=200).print(
        f"table {table_path}{where}: {len(tbl)} functions{' (PARTIAL)' if partial else ''}, "
        f"goal: its top {100 * top_fraction:g} % = {goal.count} functions with mean final "
        f"validation accuracy >= {goal.threshold:.4f}; rewards: a random seed's final accuracy",
        soft_wrap=True)
    _print_table(summaries, tests, None, space.count(),
                 goal_text=f"the table's top {100 * top_fraction:g} %", refused=refused)


def _num(v: float | None) -> float | None:
    return None if v is None or math.isnan(v) else round(v, 4)


def _spread(s: Spread) -> dict[str, Any]:
    return {"mean": _num(s.mean), "std": _num(s.std), "n": s.n}


def _quartiles(q: Quartiles) -> dict[str, Any]:
    return {"q1": _num(q.q1), "median": _num(q.median), "q3": _num(q.q3), "n": q.n}


def _as_json(summaries: list[Summary], tests: dict[str, Versus], target: Expr | None,
             units: int, options: dict[str, Any]) -> dict[str, Any]:
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
                    {"evaluations": c, **_quartiles(b)}
                    for c, b in zip(s.checkpoints, s.best, strict=True)
                ],
                "threshold": s.threshold,
                "reached": s.reached,
                "median_evaluations_to_threshold": s.median_to_threshold,
                "evaluations_to_threshold": {
                    "km_q1": s.to_threshold[0], "km_median": s.to_threshold[1],
                    "km_q3": s.to_threshold[2],
                    "times": list(s.hits.times), "reached": list(s.hits.reached),
                },
                "versus": None if s.strategy not in tests else {
                    "baseline": tests[s.strategy].baseline,
                    "logrank_z": _num(tests[s.strategy].logrank.z),
                    "logrank_p": _num(tests[s.strategy].logrank.p_value),
                    "gehan_z": _num(tests[s.strategy].gehan.z),
                    "gehan_p": _num(tests[s.strategy].gehan.p_value),
                },
                "proposals": _quartiles(s.proposals),
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


def _km(v: float | None, budget: int) -> str:
    return f"> {budget}" if v is None else f"{v:g}"


def _iqr(q: Quartiles, digits: int = 3) -> str:
    if q.n == 0:
        return "-"
    return f"{q.median:.{digits}f} [{q.q1:.{digits}f}, {q.q3:.{digits}f}]"


def _p(v: Versus | None) -> tuple[str, str]:
    if v is None:
        return "-", "-"
    return (f"{v.logrank.p_value:.3g} ({'earlier' if v.logrank.z < 0 else 'later'})",
            f"{v.gehan.p_value:.3g}")


def _print_table(summaries: list[Summary], tests: dict[str, Versus], target: Expr | None,
                 count: int, brief: bool = False, goal_text: str | None = None,
                 refused: dict[str, Spread] | None = None) -> None:
    from rich.console import Console
    from rich.table import Table

    first = summaries[0]
    console = Console(width=200)
    what = f"target {to_text(target)}" if target is not None else "real accuracies"
    if not brief:
        best = Table(title=f"best reward after % of {first.budget} evaluations, median [IQR] "
                           f"({what}, {count:,} sequences, {first.seeds} seeds)")
        best.add_column("strategy")
        for c in first.checkpoints:
            best.add_column(f"{round(100 * c / first.budget)}%", justify="right")
        for s in summaries:
            best.add_row(s.strategy, *[f"{b.median:.3f} [{b.q1:.3f}, {b.q3:.3f}]" for b in s.best])
        console.print(best)
    title = f"evaluations to {goal_text or f'reward >= {first.threshold:g}'}"
    if brief:
        title = f"{what}: {title}, {first.seeds} seeds, budget {first.budget}"
    reach = Table(title=title)
    cols = ["strategy", "reached", "KM median [q1, q3]", "log-rank p", "Gehan p",
            f"best @ {first.budget} median [IQR]", "proposals median"]
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
        q1, med, q3 = (_km(v, s.budget) for v in s.to_threshold)
        lr, gehan = _p(tests.get(s.strategy))
        extra = [] if refused is None else [_fmt(refused[s.strategy], 0)]
        reach.add_row(s.strategy, f"{s.reached}/{s.seeds}", f"{med} [{q1}, {q3}]", lr, gehan,
                      _iqr(s.best[-1]), f"{s.proposals.median:.0f}", *extra, ent, rew)
    console.print(reach)
    if tests:
        base = next(iter(tests.values())).baseline
        console.print(f"p: two-sided, against {base}, on evaluations to the threshold with "
                      "unreached seeds censored; 'earlier' = reaches it sooner than the baseline")
