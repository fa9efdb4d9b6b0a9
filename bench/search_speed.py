"""Speed of the search controller: 2,000 simulated PPO evaluations, and the controller alone.

Run: PYTHONPATH=. python bench/search_speed.py [--budget 2000] [--target EXPR] [--repeats 3]

Prints wall time and evaluations/s of the whole simulated search (sampling, dedup, screen,
reward, PPO updates) over ``--repeats`` seeds, then the controller's share: one propose(20)
and one PPO update (4 epochs over 20 children), in milliseconds. One thread, CPU.
Not a timed test: the figure goes into docs/benchmarks.md with the machine and date.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time

import torch

from orchestrator.search import Candidate, Result, make_strategy
from orchestrator.search.simulate import SimilarityReward, simulate
from orchestrator.space import SearchSpace, parse


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--budget", type=int, default=2000)
    ap.add_argument("--target", default="max(id(x), sigmoid(x))")
    ap.add_argument("--units", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    torch.set_num_threads(1)
    space = SearchSpace(units=args.units)
    reward = SimilarityReward(parse(args.target))

    walls, rates = [], []
    for seed in range(args.repeats):
        strategy = make_strategy("ppo", space, seed)
        t0 = time.perf_counter()
        trace = simulate(strategy, reward, args.budget)
        wall = time.perf_counter() - t0
        walls.append(wall)
        rates.append(len(trace.rewards) / wall)
        print(f"seed {seed}: {len(trace.rewards)} evaluations, {trace.proposals} proposals, "
              f"{len(trace.updates)} updates in {wall:.2f} s ({len(trace.rewards) / wall:.0f} eval/s)")

    strategy = make_strategy("ppo", space, 0)
    propose_ms, update_ms = [], []
    for _ in range(50):
        t0 = time.perf_counter()
        batch = strategy.propose(20)
        t1 = time.perf_counter()
        strategy.observe([_fake(c) for c in batch])
        t2 = time.perf_counter()
        propose_ms.append(1e3 * (t1 - t0))
        update_ms.append(1e3 * (t2 - t1))

    print(f"\n{platform.processor() or platform.machine()}, torch {torch.__version__}, 1 thread")
    print(f"simulated search: {statistics.median(walls):.2f} s median for {args.budget} evaluations "
          f"({statistics.median(rates):.0f} eval/s)")
    print(f"controller: propose(20) {statistics.median(propose_ms):.2f} ms, "
          f"PPO update (20 children) {statistics.median(update_ms):.2f} ms (medians of 50)")


def _fake(candidate: Candidate) -> Result:
    """A reward with no evaluation cost, so the second figure is the controller's alone."""
    return Result.success(candidate, (sum(candidate.tokens) % 11) / 10)


if __name__ == "__main__":
    main()
