"""Child trainer throughput: steps/s and peak memory per model, activation, step mode and pack.

Measures the trainer's own step (loop.make_step) on synthetic CIFAR-shaped data, including the
on-device batch draw and augmentation; compilation and graph capture happen in the warm-up, which
is timed apart and excluded from the rate (as airbench does). Repeats give mean ± spread.

``--pack K`` (repeatable) trains K children at once, fused into one network (docs/trainer.md,
"Packing"), with K distinct random 2-unit activations: the figure that matters is child-steps/s,
K × steps/s. ``--end-to-end N`` instead times whole packed children through ``run_pack``, N steps
each, against a local MLflow store: data loading, compilation, logging, evaluation and the plots
all counted, reported as children per device-hour at that length.

    python bench/child_throughput.py --device cpu --model tiny_cnn --model resnet20 --steps 20
    python bench/child_throughput.py --device cuda --mode graph --model resnet20 --steps 500
    python bench/child_throughput.py --device cuda --model resnet20 --pack 1 --pack 8 --pack 32
    python bench/child_throughput.py --device cuda --model resnet20 --pack 32 --end-to-end 10000
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

from orchestrator.contract import PackSpec, TrainConfig, TrialSpec
from orchestrator.space import SearchSpace, parse, to_text
from orchestrator.space.activation import ActivationRef, activation_text
from orchestrator.trainer import data as D
from orchestrator.trainer import loop
from orchestrator.trainer.augment import Batches, normalize

ACTIVATIONS = {
    "relu": "max(id(x), relu(x))",
    "swish": "sigmul(mul_beta(x), id(x))",
    "two_units": "add(cos(sigmul(mul_beta(x), id(x))), sin(x))",
}


def pack_activations(first: str, k: int, seed: int = 0) -> list[ActivationRef]:
    """``first``, then k - 1 distinct random 2-unit functions: a pack as a search sends it."""
    rest = [e for e in SearchSpace(units=2).sample_expressions(4 * k, seed) if to_text(e) != first]
    unique = list({to_text(e): e for e in rest}.values())
    return [parse(first), *unique[: k - 1]]


def measure(model: str, activation: str, device: str, mode: str, steps: int, warmup: int,
            batch_size: int, pack: int = 1) -> dict[str, object]:
    exprs = pack_activations(ACTIVATIONS.get(activation, activation), pack)
    cfg = TrainConfig(model=model, dataset="synthetic", batch_size=batch_size, device=device,
                      compile=mode, steps=max(steps + warmup, 2))
    rt = loop.resolve(cfg)
    data = D.load(cfg, Path("."))
    child = loop.build([cfg] * pack, exprs, data, rt)
    mean = torch.tensor(data.mean, device=rt.device)
    std = torch.tensor(data.std, device=rt.device)
    batches = Batches(data.train.to(rt.device), batch_size, 0, cfg.crop_padding, cfg.flip)

    def batch(s: int) -> tuple[torch.Tensor, torch.Tensor]:
        images, labels = batches(s)
        return normalize(images, mean, std, rt.channels_last), labels

    if rt.device.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
    sync = torch.cuda.synchronize if rt.device.type == "cuda" else (lambda: None)
    t_warm = time.perf_counter()
    step_fn, used = loop.make_step(child, rt, batch(0))
    for s in range(warmup):
        child.set_lr(s)
        step_fn(*batch(s))
    sync()
    t0 = time.perf_counter()
    for s in range(warmup, warmup + steps):
        child.set_lr(s)
        loss, _ = step_fn(*batch(s))
    sync()
    elapsed = time.perf_counter() - t0
    if rt.device.type == "cuda":
        peak_mb = torch.cuda.max_memory_allocated() / 2**20
    else:
        peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # process peak RSS
    return {"model": model, "activation": activation, "device": rt.device.type, "mode": used,
            "precision": "bf16" if rt.bf16 else "fp32", "batch_size": batch_size, "pack": pack,
            "steps_per_s": steps / elapsed, "child_steps_per_s": pack * steps / elapsed,
            "warmup_s": t0 - t_warm, "peak_mb": peak_mb, "final_loss": float(loss.float().mean())}


def end_to_end(model: str, activation: str, device: str, mode: str, steps: int, batch_size: int,
               pack: int) -> dict[str, object]:
    """Whole children through ``run_pack`` (the trainer's entry point) into a local MLflow store."""
    from orchestrator.trainer.run import run_pack

    exprs = pack_activations(ACTIVATIONS.get(activation, activation), pack)
    child = TrainConfig(model=model, dataset="synthetic", batch_size=batch_size, device=device,
                        compile=mode, steps=steps, log_every=100)
    spec = PackSpec(pack=[TrialSpec(expression=activation_text(e), child=child) for e in exprs])
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        results = run_pack(spec, tracking_uri=f"sqlite:///{tmp}/mlflow.db", cache_dir=Path(tmp))
        wall = time.perf_counter() - t0
    rate = [r.steps_per_s for _, r in results if isinstance(r, loop.Outcome)]
    return {"model": model, "device": device, "mode": mode, "pack": pack, "steps": steps,
            "wall_s": wall, "train_steps_per_s": rate[0] if rate else float("nan"),
            "children_per_hour": 3600 * pack / wall,
            "device_s_per_child": wall / pack,
            "diverged": sum(not isinstance(r, loop.Outcome) for _, r in results)}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--device", choices=["cpu", "cuda"], default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--model", action="append", help="repeatable; default resnet20")
    p.add_argument("--activation", action="append",
                   help=f"repeatable; a name ({', '.join(ACTIVATIONS)}) or an expression; default relu, swish")
    p.add_argument("--mode", choices=["eager", "compile", "graph", "eager_graph"], default=None,
                   help="default: graph on cuda, eager on cpu")
    p.add_argument("--steps", type=int, default=50)
    p.add_argument("--warmup", type=int, default=5)
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    p.add_argument("--pack", type=int, action="append",
                   help="repeatable; children trained at once, fused (default 1)")
    p.add_argument("--end-to-end", type=int, default=None, metavar="STEPS",
                   help="time whole packed children of STEPS steps through run_pack instead")
    p.add_argument("--json", action="store_true", help="one JSON object per line")
    a = p.parse_args()
    if a.threads:
        torch.set_num_threads(a.threads)
    mode = a.mode or ("graph" if a.device == "cuda" else "eager")
    print(f"# {platform.node()} {platform.processor() or platform.machine()}, torch {torch.__version__}, "
          f"{torch.get_num_threads()} CPU threads"
          + (f", {torch.cuda.get_device_name()}" if a.device == "cuda" else ""), file=sys.stderr)
    for model in a.model or ["resnet20"]:
        for act in a.activation or ["relu", "swish"]:
            for k in a.pack or [1]:
                if a.end_to_end:
                    row = end_to_end(model, act, a.device, mode, a.end_to_end, a.batch_size, k)
                    print(json.dumps(row) if a.json else
                          f"{model:<18} pack {k:<3} {a.end_to_end} steps end to end: {row['wall_s']:.1f} s, "
                          f"{row['device_s_per_child']:.2f} device-s per child, "
                          f"{row['children_per_hour']:.0f} children/h (train {row['train_steps_per_s']:.1f} steps/s)")
                    continue
                runs = [measure(model, act, a.device, mode, a.steps, a.warmup, a.batch_size, k)
                        for _ in range(a.repeats)]
                rates = [float(r["steps_per_s"]) for r in runs]  # type: ignore[arg-type]
                row = {**runs[-1], "steps_per_s": statistics.mean(rates),
                       "child_steps_per_s": k * statistics.mean(rates),
                       "spread": (max(rates) - min(rates)) / 2, "repeats": a.repeats}
                if a.json:
                    print(json.dumps(row))
                else:
                    print(f"{model:<18} {act:<10} pack {k:<3} {row['device']}/{row['mode']}/{row['precision']} "
                          f"batch {a.batch_size}: {row['steps_per_s']:.2f} ± {row['spread']:.2f} steps/s, "
                          f"{row['child_steps_per_s']:.1f} child-steps/s, warm-up {row['warmup_s']:.1f} s, "
                          f"peak {row['peak_mb']:.0f} MB")


if __name__ == "__main__":
    main()
