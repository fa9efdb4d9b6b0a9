"""Child trainer throughput: steps/s and peak memory per model, activation and step mode.

Measures the trainer's own step (loop.make_step) on synthetic CIFAR-shaped data, including the
on-device batch draw and augmentation; compilation and graph capture happen in the warm-up, which
is excluded from the timing (as airbench does). Repeats give mean ± spread.

    python bench/child_throughput.py --device cpu --model tiny_cnn --model resnet20 --steps 20
    python bench/child_throughput.py --device cuda --mode graph --model resnet20 --steps 500
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import statistics
import sys
import time
from pathlib import Path

import torch

from orchestrator.space import parse
from orchestrator.trainer import data as D
from orchestrator.trainer import loop
from orchestrator.trainer.augment import Batches, normalize
from orchestrator.trainer.config import TrainConfig

ACTIVATIONS = {
    "relu": "max(id(x), relu(x))",
    "swish": "sigmul(mul_beta(x), id(x))",
    "two_units": "add(cos(sigmul(mul_beta(x), id(x))), sub(id(x), sin(x)))",
}


def measure(model: str, activation: str, device: str, mode: str, steps: int, warmup: int,
            batch_size: int) -> dict[str, object]:
    expr = parse(ACTIVATIONS.get(activation, activation))
    cfg = TrainConfig(model=model, dataset="synthetic", batch_size=batch_size, device=device,
                      compile=mode, steps=max(steps + warmup, 2))
    rt = loop.resolve(cfg)
    data = D.load(cfg, Path("."))
    child = loop.build(cfg, expr, data, rt)
    mean = torch.tensor(data.mean, device=rt.device)
    std = torch.tensor(data.std, device=rt.device)
    batches = Batches(data.train.to(rt.device), batch_size, 0, cfg.crop_padding, cfg.flip)

    def batch(s: int) -> tuple[torch.Tensor, torch.Tensor]:
        images, labels = batches(s)
        return normalize(images, mean, std, rt.channels_last), labels

    if rt.device.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
    step_fn, used = loop.make_step(child, rt, batch(0))
    for s in range(warmup):
        child.set_lr(s)
        step_fn(*batch(s))
    sync = torch.cuda.synchronize if rt.device.type == "cuda" else (lambda: None)
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
            "precision": "bf16" if rt.bf16 else "fp32", "batch_size": batch_size,
            "steps_per_s": steps / elapsed, "peak_mb": peak_mb, "final_loss": float(loss)}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--device", choices=["cpu", "cuda"], default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--model", action="append", help="repeatable; default resnet20")
    p.add_argument("--activation", action="append",
                   help=f"repeatable; a name ({', '.join(ACTIVATIONS)}) or an expression; default relu, swish")
    p.add_argument("--mode", choices=["eager", "compile", "graph"], default=None,
                   help="default: graph on cuda, eager on cpu")
    p.add_argument("--steps", type=int, default=50)
    p.add_argument("--warmup", type=int, default=5)
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads")
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
            runs = [measure(model, act, a.device, mode, a.steps, a.warmup, a.batch_size) for _ in range(a.repeats)]
            rates = [float(r["steps_per_s"]) for r in runs]  # type: ignore[arg-type]
            row = {**runs[-1], "steps_per_s": statistics.mean(rates),
                   "spread": (max(rates) - min(rates)) / 2, "repeats": a.repeats}
            if a.json:
                print(json.dumps(row))
            else:
                print(f"{model:<18} {act:<10} {row['device']}/{row['mode']}/{row['precision']} "
                      f"batch {a.batch_size}: {row['steps_per_s']:.2f} ± {row['spread']:.2f} steps/s, "
                      f"peak {row['peak_mb']:.0f} MB")


if __name__ == "__main__":
    main()
