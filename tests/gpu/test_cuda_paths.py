"""The CUDA paths (bf16, channels_last, torch.compile, whole-step CUDA graph). Skipped without CUDA."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch

from orchestrator.contract import TrainConfig
from orchestrator.space import parse
from orchestrator.trainer import data as D
from orchestrator.trainer import loop

pytestmark = pytest.mark.gpu
SWISH = parse("sigmul(mul_beta(x), id(x))")


class Losses:
    def __init__(self) -> None:
        self.values: list[float] = []

    def on_metrics(self, step: int, metrics: dict[str, float]) -> None:
        if "train_loss" in metrics:
            self.values.append(metrics["train_loss"])

    def on_checkpoint(self, step: int, state: dict[str, Any]) -> None:
        pass


def _cfg(mode: str, **kw: Any) -> TrainConfig:
    return TrainConfig(**{"model": "resnet20", "dataset": "synthetic", "steps": 60, "log_every": 20,
                          "device": "cuda", "compile": mode, **kw})


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory: pytest.TempPathFactory) -> D.Data:
    return D.load(_cfg("eager"), tmp_path_factory.mktemp("cache"))


def test_the_whole_step_is_captured_in_a_cuda_graph_and_learns(synthetic: D.Data) -> None:
    rec = Losses()
    out = loop.train(_cfg("graph"), SWISH, synthetic, rec)
    assert out.mode == "graph"
    assert rec.values[-1] < rec.values[0]
    assert out.val_accuracy > 0.3


def test_graph_and_eager_steps_follow_the_same_trajectory(synthetic: D.Data) -> None:
    eager, graph = Losses(), Losses()
    loop.train(_cfg("eager", steps=20, log_every=1), SWISH, synthetic, eager)
    loop.train(_cfg("graph", steps=20, log_every=1), SWISH, synthetic, graph)
    # same batches, same init; only kernel choice and bf16 rounding differ
    assert graph.values[0] == pytest.approx(eager.values[0], rel=0.05)
    assert graph.values[-1] == pytest.approx(eager.values[-1], rel=0.25)


def test_resume_works_in_graph_mode(synthetic: D.Data) -> None:
    import io

    states: list[dict[str, Any]] = []

    class Keep(Losses):
        def on_checkpoint(self, step: int, state: dict[str, Any]) -> None:
            buf = io.BytesIO()
            torch.save(state, buf)
            buf.seek(0)
            states.append(torch.load(buf, weights_only=True))

    cfg = _cfg("graph", steps=40, checkpoint_every=20)
    loop.train(cfg, SWISH, synthetic, Keep())
    out = loop.train(cfg, SWISH, synthetic, Losses(), resume=states[0])
    assert out.start_step == 20 and out.mode == "graph"


def test_bench_runs_on_cuda(tmp_path: Path) -> None:
    import subprocess
    import sys

    done = subprocess.run([sys.executable, "bench/child_throughput.py", "--device", "cuda", "--mode", "graph",
                           "--steps", "20", "--repeats", "1", "--json"], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]


@pytest.mark.parametrize("name", ["prelu", "gelu"])
def test_builtin_activations_train_in_a_cuda_graph_with_bf16(synthetic: D.Data, name: str) -> None:
    from orchestrator.space.activation import Builtin

    rec = Losses()
    out = loop.train(_cfg("graph"), Builtin(name), synthetic, rec)
    assert out.mode == "graph"
    assert rec.values[-1] < rec.values[0]


def test_a_packed_pack_in_a_cuda_graph_follows_each_members_solo_trajectory(synthetic: D.Data) -> None:
    """Packing on the GPU: grouped convolutions, per-member sites, the whole step in one graph."""
    exprs = [SWISH, parse("max(id(x), relu(x))"), parse("add(cos(sigmul(mul_beta(x), id(x))), sin(x))")]
    cfg = _cfg("graph", steps=20, log_every=1)
    packed = [Losses() for _ in exprs]
    results = loop.train_pack([cfg] * 3, exprs, synthetic, packed)
    assert all(isinstance(r, loop.Outcome) and r.mode == "graph" and r.pack_size == 3 for r in results)
    for expr, rec in zip(exprs, packed, strict=True):
        alone = Losses()
        loop.train(cfg, expr, synthetic, alone)
        # bf16 and kernel choice differ between a grouped and a plain convolution
        assert rec.values[0] == pytest.approx(alone.values[0], rel=0.05)
        assert rec.values[-1] == pytest.approx(alone.values[-1], rel=0.25)


def test_the_bench_packs_on_cuda() -> None:
    import json
    import subprocess
    import sys

    done = subprocess.run([sys.executable, "bench/child_throughput.py", "--device", "cuda", "--mode", "graph",
                           "--activation", "two_units", "--pack", "1", "--pack", "8", "--steps", "20",
                           "--repeats", "1", "--json"], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    rows = [json.loads(line) for line in done.stdout.splitlines()]
    assert [r["pack"] for r in rows] == [1, 8]
    assert all(r["mode"] == "graph" for r in rows)


def test_the_eager_step_captured_in_a_graph_learns_without_compiling(synthetic: D.Data) -> None:
    rec = Losses()
    out = loop.train(_cfg("eager_graph"), SWISH, synthetic, rec)
    assert out.mode == "eager_graph"
    assert rec.values[-1] < rec.values[0]
