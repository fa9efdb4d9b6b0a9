"""The one-shot search loop: warm-start, alternating first-order updates, shrinking, discretising.

No I/O: progress goes to ``Hooks`` (the MLflow adapter in the child, a list in tests).

1. The training split is cut once more: ``arch_fraction`` of it trains the architecture (α and
   every site's β), the rest trains the network weights. The validation split is left alone, so
   the discretised child is later rewarded on the same images as every other child.
2. Warm-start: ``warmstart_steps`` weight steps with a plain ReLU at every site (GRAFS).
3. ``search_steps`` first-order DARTS steps: one architecture step on a held-out batch, then one
   weight step on a training batch. With shrinking, the number of ops a slot keeps follows a log
   schedule, ``ceil(n ** (1 - s / S))`` at step s with S = shrink_end · search_steps, dropping the
   op with the smallest α each time, until one op per slot remains.
4. Discretise: the most probable op of every slot, checked against the grammar.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import Tensor

from orchestrator.contract import TrainConfig
from orchestrator.oneshot.config import OneShotConfig
from orchestrator.oneshot.supernet import Architecture, MixedActivation
from orchestrator.space import Expr, parse, to_text
from orchestrator.trainer import data as data_mod
from orchestrator.trainer.augment import Batches, normalize
from orchestrator.trainer.errors import NonFiniteLoss
from orchestrator.trainer.loop import Hooks, evaluate, lr_factor, resolve
from orchestrator.trainer.models import build_model

log = logging.getLogger(__name__)


def ops_kept(n: int, step: int, end: int) -> int:
    """How many of a slot's ``n`` ops are still active at search step ``step`` (log schedule)."""
    if step >= end:
        return 1
    return max(1, math.ceil(n ** (1.0 - step / end) - 1e-9))


@dataclass(frozen=True)
class Drop:
    step: int  # global step (warm-start included)
    slot: str
    op: str


@dataclass(frozen=True)
class SearchOutcome:
    expr: Expr
    expression: str
    probabilities: dict[str, list[float]]  # slot -> weights over its ops, all ops (heatmap)
    chosen: dict[str, str]
    drops: list[Drop]
    supernet_val_accuracy: float
    warmstart_steps: int
    search_steps: int
    wall_time_s: float
    arch: Architecture = field(repr=False, compare=False)


def weight_metrics(arch: Architecture) -> dict[str, float]:
    """``alpha.<slot>.<op>``: the expected mixture weight of every op (0 once dropped)."""
    out: dict[str, float] = {}
    with torch.no_grad():
        for s in arch.slots:
            for op, w in zip(s.ops, arch.probabilities(s.name).tolist(), strict=True):
                out[f"alpha.{s.name}.{op}"] = w
    return out


def search(cfg: TrainConfig, ocfg: OneShotConfig, data: data_mod.Data, hooks: Hooks) -> SearchOutcome:
    """Run the one-shot search on ``data``; raises NonFiniteLoss if a loss is NaN or infinite."""
    t0 = time.perf_counter()
    rt = resolve(cfg)
    device = rt.device
    weight_set, arch_set = data_mod.split(data.train, ocfg.arch_fraction, cfg.split_seed + 1)
    weight_set, arch_set, val_set = weight_set.to(device), arch_set.to(device), data.val.to(device)
    mean, std = torch.tensor(data.mean, device=device), torch.tensor(data.std, device=device)
    w_batches = Batches(weight_set, cfg.batch_size, cfg.seed, cfg.crop_padding, cfg.flip)
    a_batches = Batches(arch_set, min(cfg.batch_size, len(arch_set)), cfg.seed + 1, cfg.crop_padding, cfg.flip)
    warm = 0 if ocfg.warmstart == "none" else (
        w_batches.per_epoch if ocfg.warmstart_steps is None else ocfg.warmstart_steps)

    torch.manual_seed(cfg.seed)
    arch = Architecture(ocfg.units, ocfg.variant, ocfg.unary, ocfg.binary, ocfg.clamp, cfg.numerics).to(device)
    model = build_model(cfg.model, data.num_classes, data.image_shape,
                        lambda c: MixedActivation(arch, c, cfg.beta_mode, cfg.beta_init)).to(device)
    betas = [m.beta for m in model.modules() if isinstance(m, MixedActivation)]
    beta_ids = {id(b) for b in betas}
    weights = [p for p in model.parameters() if id(p) not in beta_ids]
    if cfg.optimizer == "sgd":
        w_opt: torch.optim.Optimizer = torch.optim.SGD(
            weights, lr=cfg.lr, momentum=cfg.momentum, nesterov=cfg.nesterov, weight_decay=cfg.weight_decay)
    else:
        w_opt = torch.optim.AdamW(weights, lr=cfg.lr, betas=(cfg.momentum, 0.999), weight_decay=cfg.weight_decay)
    a_opt = torch.optim.Adam([
        {"params": list(arch.alpha.values()), "weight_decay": ocfg.arch_weight_decay},
        {"params": betas, "weight_decay": 0.0},
    ], lr=ocfg.arch_lr, betas=(0.5, 0.999))
    total = warm + ocfg.search_steps
    factor = lr_factor(cfg.model_copy(update={"steps": total, "warmup_steps": min(cfg.warmup_steps, total - 1)}))

    def loss_on(batches: Batches, step: int) -> tuple[Tensor, Tensor]:
        images, labels = batches(step)
        out = model(normalize(images, mean, std, rt.channels_last))
        return F.cross_entropy(out, labels), (out.argmax(1) == labels).float().mean()

    def check(loss: Tensor, step: int, what: str) -> float:
        v = float(loss.detach())
        if not math.isfinite(v):
            hooks.on_metrics(step, {what: v})
            raise NonFiniteLoss(step, v)
        return v

    model.train()
    drops: list[Drop] = []
    window: list[tuple[float, float, float]] = []
    shrink_end = max(1, round(ocfg.shrink_end * ocfg.search_steps))
    log.info("one-shot %s search: %d warm-start + %d search steps, %d slots, %s on %s",
             ocfg.variant, warm, ocfg.search_steps, len(arch.slots), cfg.model, device)
    for g in range(total):
        s = g - warm  # search step; negative during the warm-start
        arch.warm = s < 0
        for group in w_opt.param_groups:
            group["lr"] = cfg.lr * factor(g)
        arch_loss = float("nan")
        if s >= 0:
            if ocfg.shrink:
                for slot in arch.slots:
                    while len(arch.active(slot.name)) > ops_kept(len(slot.ops), s, shrink_end):
                        drops.append(Drop(g, slot.name, arch.drop_weakest(slot.name)))
            if ocfg.variant == "gdas":
                arch.tau = ocfg.tau_max * (ocfg.tau_min / ocfg.tau_max) ** (s / max(1, ocfg.search_steps - 1))
            a_opt.zero_grad(set_to_none=True)
            loss, _ = loss_on(a_batches, s)
            loss.backward()
            a_opt.step()
            arch_loss = check(loss, g + 1, "arch_loss")
        w_opt.zero_grad(set_to_none=True)
        loss, acc = loss_on(w_batches, g)
        loss.backward()
        w_opt.step()
        window.append((check(loss, g + 1, "train_loss"), float(acc), arch_loss))
        done = g + 1
        if done % cfg.log_every == 0 or done == total:
            metrics = {
                "train_loss": sum(w[0] for w in window) / len(window),
                "train_accuracy": sum(w[1] for w in window) / len(window),
                "lr": cfg.lr * factor(g),
                "active_ops": float(sum(len(arch.active(sl.name)) for sl in arch.slots)),
            }
            arch_losses = [w[2] for w in window if not math.isnan(w[2])]
            if arch_losses:
                metrics["arch_loss"] = sum(arch_losses) / len(arch_losses)
            if s >= 0:
                metrics.update(weight_metrics(arch))
            hooks.on_metrics(done, metrics)
            window.clear()

    arch.warm = False
    val_acc, _ = evaluate(model, val_set, mean, std, rt)  # eval mode: expected weights
    expr = arch.discretise()
    expression = to_text(expr)
    if to_text(parse(expression)) != expression or not ocfg.space().contains(expr):
        raise RuntimeError(f"discretisation produced {expression!r}, outside the template's space")
    with torch.no_grad():
        probabilities = {sl.name: arch.probabilities(sl.name, masked=False).tolist() for sl in arch.slots}
    outcome = SearchOutcome(
        expr=expr, expression=expression, probabilities=probabilities,
        chosen={sl.name: arch.choice(sl.name) for sl in arch.slots}, drops=drops,
        supernet_val_accuracy=val_acc, warmstart_steps=warm, search_steps=ocfg.search_steps,
        wall_time_s=time.perf_counter() - t0, arch=arch,
    )
    log.info("one-shot search found %s (supernet val_accuracy %.4f) in %.1f s",
             expression, val_acc, outcome.wall_time_s)
    return outcome
