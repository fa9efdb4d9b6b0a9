"""The training loop: build, step, measure, evaluate. No I/O; results go to ``Hooks``.

One loop trains a pack of K children (``train_pack``; K = 1 is the plain child, ``train``): the
network is the members fused side by side (packing.py), the step returns a loss and a count of
correct predictions per member, and every member reports to its own hooks. A member whose loss
turns non-finite fails alone at that exact step; the others train on and finish.

Speed on CUDA: data resident on the GPU and augmented there (augment.py), bf16 autocast,
channels_last, the model (and so the activation) fused by ``torch.compile``, and the whole step
(forward, backward, optimizer) captured in one CUDA graph when ``compile='graph'``; a capture that
fails falls back to the compiled step. On CPU: float32, eager unless asked otherwise.

The host reads the loss only at sync points (every step on CPU, every ``SYNC_EVERY_CUDA`` steps on
CUDA, and at every log/eval/checkpoint boundary); per-step losses wait in a device buffer, so a
non-finite loss is still reported at the exact step it first appeared, and training stops there.
"""

from __future__ import annotations

import contextlib
import logging
import math
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, Protocol

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from orchestrator.contract import TrainConfig
from orchestrator.space.activation import ActivationRef
from orchestrator.space.module import Activation, build_site, is_activation_site
from orchestrator.trainer import termination
from orchestrator.trainer.augment import Batches, normalize
from orchestrator.trainer.data import Data, ImageSet
from orchestrator.trainer.errors import BadInput, Interrupted, NonFiniteLoss
from orchestrator.trainer.models import MakeAct, build_model
from orchestrator.trainer.packing import (
    build_packed_network,
    optimizer_names,
    pack_optimizer_state,
    pack_state,
    packed_sites,
    unpack_optimizer_state,
    unpack_state,
)

log = logging.getLogger(__name__)

SYNC_EVERY_CUDA = 25
EVAL_BATCH = 1000
GRAPH_WARMUP = 3

StepFn = Callable[[Tensor, Tensor], tuple[Tensor, Tensor]]
"""(normalised images, labels) -> (loss, number correct) of each member, both ``[K]`` device
tensors. Images are ``[B, C, H, W]`` shared by the members or ``[B, K·C, H, W]`` (member k's in
block k); labels ``[B]`` or ``[B, K]``."""


class Hooks(Protocol):
    """Where the loop reports; the MLflow adapter implements it, tests may use a list."""

    def on_metrics(self, step: int, metrics: dict[str, float]) -> None: ...

    def on_checkpoint(self, step: int, state: dict[str, Any]) -> None:
        """``state`` aliases the live tensors: serialise it before returning."""


@dataclass(frozen=True)
class Runtime:
    """``TrainConfig``'s auto choices resolved against this machine."""

    device: torch.device
    bf16: bool
    mode: str  # eager | compile | graph | eager_graph

    @property
    def graph(self) -> bool:
        """Whether the step is captured in a CUDA graph (device-tensor lrs, fused optimizers)."""
        return self.mode in ("graph", "eager_graph")

    @property
    def channels_last(self) -> bool:
        return self.device.type == "cuda"


def resolve(cfg: TrainConfig) -> Runtime:
    cuda = torch.cuda.is_available()
    if cfg.device == "cuda" and not cuda:
        raise BadInput("device 'cuda' was asked for but CUDA is not available here")
    device = torch.device("cuda" if cfg.device == "cuda" or (cfg.device == "auto" and cuda) else "cpu")
    on_cuda = device.type == "cuda"
    if cfg.precision == "bf16" and not on_cuda:
        raise BadInput("precision 'bf16' needs CUDA; this child runs on CPU (use 'fp32' or 'auto')")
    if cfg.compile in ("graph", "eager_graph") and not on_cuda:
        raise BadInput(f"compile {cfg.compile!r} needs CUDA; this child runs on CPU (use 'eager' or 'compile')")
    bf16 = cfg.precision == "bf16" or (cfg.precision == "auto" and on_cuda)
    mode = cfg.compile if cfg.compile != "auto" else ("graph" if on_cuda else "eager")
    return Runtime(device, bf16, mode)


@dataclass
class Child:
    """A built pack of ``k`` children (k = 1: one plain network), its optimizer and schedule."""

    model: nn.Module
    optimizer: torch.optim.Optimizer
    lr_at: Callable[[int], float]  # learning rate of 0-based step s: the schedule is a function of s
    k: int = 1

    def set_lr(self, step: int) -> float:
        """Set the learning rate for ``step``; device-tensor lrs are filled in place (no sync)."""
        lr = self.lr_at(step)
        for g in self.optimizer.param_groups:
            if isinstance(g["lr"], Tensor):
                g["lr"].fill_(lr)
            else:
                g["lr"] = lr
        return lr

    def activations(self, member: int = 0) -> list[Activation]:
        """Member ``member``'s searched activation sites (none for a built-in)."""
        if self.k == 1:
            return [m for m in self.model.modules() if isinstance(m, Activation)]
        return [site for s in packed_sites(self.model)
                if isinstance(site := s.sites[member], Activation)]

    def beta_mean(self, member: int = 0) -> float:
        betas = [a.beta.detach().float().flatten() for a in self.activations(member)]
        return float(torch.cat(betas).mean()) if betas else float("nan")

    def weights(self, member: int = 0) -> dict[str, Tensor]:
        """Member ``member``'s ``state_dict`` in the plain network's layout."""
        state = self.model.state_dict()
        return state if self.k == 1 else unpack_state(state, self.k, member)

    def state(self, step: int, elapsed_s: float, member: int = 0) -> dict[str, Any]:
        """Member ``member``'s checkpoint: a plain child's, whatever the pack (packing.py)."""
        rng: dict[str, Any] = {"cpu": torch.get_rng_state()}
        if torch.cuda.is_available():
            rng["cuda"] = torch.cuda.get_rng_state_all()
        optimizer = self.optimizer.state_dict()
        if self.k > 1:
            optimizer = unpack_optimizer_state(optimizer, optimizer_names(self.model, self.optimizer),
                                               self.k, member)
        return {"step": step, "elapsed_s": elapsed_s, "model": self.weights(member),
                "optimizer": optimizer, "rng": rng}

    def load(self, states: list[dict[str, Any]]) -> None:
        """Load one checkpoint per member (all at the same step)."""
        if self.k == 1:
            model, optimizer = states[0]["model"], states[0]["optimizer"]
        else:
            model = pack_state(list(self.model.state_dict()), [s["model"] for s in states])
            optimizer = pack_optimizer_state(self.optimizer.state_dict(),
                                             optimizer_names(self.model, self.optimizer),
                                             [s["optimizer"] for s in states])
        self.model.load_state_dict(model)
        live_lrs = [g["lr"] for g in self.optimizer.param_groups]  # device tensors in graph mode
        self.optimizer.load_state_dict(optimizer)
        for g, lr in zip(self.optimizer.param_groups, live_lrs, strict=True):
            g["lr"] = lr
        torch.set_rng_state(states[0]["rng"]["cpu"])
        if "cuda" in states[0]["rng"] and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(states[0]["rng"]["cuda"])


def lr_factor(cfg: TrainConfig) -> Callable[[int], float]:
    """Multiplier of ``cfg.lr`` before step ``s`` (0-based): linear warm-up, then cosine or flat."""

    def factor(s: int) -> float:
        if s < cfg.warmup_steps:
            return (s + 1) / cfg.warmup_steps
        if cfg.schedule == "constant":
            return 1.0
        t = (s - cfg.warmup_steps) / max(1, cfg.steps - cfg.warmup_steps)
        return 0.5 * (1.0 + math.cos(math.pi * min(t, 1.0)))

    return factor


def _make_act(cfg: TrainConfig, activation: ActivationRef) -> MakeAct:
    def make_act(channels: int) -> nn.Module:
        return build_site(activation, channels, cfg.beta_mode, cfg.beta_init, cfg.numerics)

    return make_act


def build(cfg: TrainConfig | list[TrainConfig], activation: ActivationRef | list[ActivationRef],
          data: Data, rt: Runtime) -> Child:
    """One child, or (given lists) a pack whose member k starts from exactly the weights it
    would start from alone: each member is initialised from its own seed, then packed."""
    cfgs = cfg if isinstance(cfg, list) else [cfg]
    acts = activation if isinstance(activation, list) else [activation]
    first = cfgs[0]
    solos = []
    for c, a in zip(cfgs, acts, strict=True):
        torch.manual_seed(c.seed)
        solos.append(build_model(c.model, data.num_classes, data.image_shape, _make_act(c, a)))
    if len(solos) == 1:
        model = solos[0]
    else:
        model = build_packed_network(first.model, data.num_classes, data.image_shape,
                                     [_make_act(c, a) for c, a in zip(cfgs, acts, strict=True)])
        model.load_state_dict(pack_state(list(model.state_dict()), [m.state_dict() for m in solos]))
    model = model.to(rt.device)
    if rt.channels_last:
        model = model.to(memory_format=torch.channels_last)
    # the activations' own parameters (β, PReLU's α) are not decayed
    own = {id(p) for m in model.modules() if is_activation_site(m) for p in m.parameters()}
    groups = [
        {"params": [p for p in model.parameters() if id(p) not in own], "weight_decay": first.weight_decay},
        {"params": [p for p in model.parameters() if id(p) in own], "weight_decay": 0.0},
    ]
    graph = rt.graph
    # A CUDA graph replays the step with the lr it read at capture time unless lr is a device
    # tensor that set_lr fills in place; fused SGD and capturable AdamW read it from there.
    lr: float | Tensor = torch.tensor(first.lr, device=rt.device) if graph else first.lr
    for g in groups:
        g["lr"] = lr.clone() if isinstance(lr, Tensor) else lr
    optimizer: torch.optim.Optimizer
    if first.optimizer == "sgd":
        optimizer = torch.optim.SGD(groups, lr=lr, momentum=first.momentum, nesterov=first.nesterov,
                                    fused=True if graph else None)
    else:
        optimizer = torch.optim.AdamW(groups, lr=lr, betas=(first.momentum, 0.999),
                                      capturable=graph, fused=True if graph else None)
    factor = lr_factor(first)
    return Child(model, optimizer, lambda s: first.lr * factor(s), len(solos))


# ---------------------------------------------------------------------------------------------
# The step, three ways
# ---------------------------------------------------------------------------------------------


def _autocast(rt: Runtime, cache: bool = True) -> contextlib.AbstractContextManager[Any]:
    if rt.bf16:
        return torch.autocast(rt.device.type, dtype=torch.bfloat16, cache_enabled=cache)
    return contextlib.nullcontext()


def member_losses(out: Tensor, y: Tensor, k: int, reduction: str = "mean") -> tuple[Tensor, Tensor]:
    """(cross-entropy, number correct) per member, ``[K]`` each, of logits ``[B, K·classes]``."""
    logits = out.float().unflatten(1, (k, -1))
    target = y if y.dim() == 2 else y.unsqueeze(1).expand(-1, k)
    losses = F.cross_entropy(logits.transpose(1, 2), target, reduction="none")
    losses = losses.mean(0) if reduction == "mean" else losses.sum(0)
    return losses, (logits.argmax(2) == target).sum(0)


def _eager_step(forward: Callable[[Tensor], Tensor], child: Child, rt: Runtime,
                cache: bool = True) -> StepFn:
    opt, k = child.optimizer, child.k

    def step(x: Tensor, y: Tensor) -> tuple[Tensor, Tensor]:
        opt.zero_grad(set_to_none=True)
        with _autocast(rt, cache):
            losses, correct = member_losses(forward(x), y, k)
        # each member's parameters get the gradient of its own loss alone: the sum's
        # derivative by each term is 1, whatever the others' values (NaN included)
        losses.sum().backward()
        opt.step()
        return losses.detach(), correct

    return step


@contextlib.contextmanager
def _state_preserved(child: Child) -> Iterator[None]:
    """Warm-up steps before a capture must not train: put every tensor back, in place.

    In place because the captured graph holds these exact tensors. Optimizer state that the
    warm-up created (momentum buffers, Adam moments and counts of a fresh optimizer) is zeroed,
    which gives the same next update as a fresh optimizer.
    """
    def optimizer_tensors() -> list[Tensor]:
        return [v for st in child.optimizer.state.values() for v in st.values() if isinstance(v, Tensor)]

    before = list(child.model.state_dict(keep_vars=True).values()) + optimizer_tensors()
    saved = {id(t): t.detach().clone() for t in before}
    try:
        yield
    finally:
        with torch.no_grad():
            for t in list(child.model.state_dict(keep_vars=True).values()) + optimizer_tensors():
                if id(t) in saved:
                    t.copy_(saved[id(t)])
                else:
                    t.zero_()


def _graph_step(forward: Callable[[Tensor], Tensor], child: Child, rt: Runtime,
                example: tuple[Tensor, Tensor]) -> StepFn:
    """Capture forward + backward + optimizer step in one CUDA graph; replay it each step."""
    static_x, static_y = example[0].clone(), example[1].clone()
    inner = _eager_step(forward, child, rt, cache=False)
    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with _state_preserved(child), torch.cuda.stream(side):
        for _ in range(GRAPH_WARMUP):
            inner(static_x, static_y)
    torch.cuda.current_stream().wait_stream(side)
    graph = torch.cuda.CUDAGraph()
    child.optimizer.zero_grad(set_to_none=True)
    with torch.cuda.graph(graph):
        static_loss, static_correct = inner(static_x, static_y)

    def step(x: Tensor, y: Tensor) -> tuple[Tensor, Tensor]:
        static_x.copy_(x)
        static_y.copy_(y)
        graph.replay()
        return static_loss, static_correct

    return step


def make_step(child: Child, rt: Runtime, example: tuple[Tensor, Tensor]) -> tuple[StepFn, str]:
    """The step function for ``rt.mode`` and the mode actually used.

    Compilation is triggered here, by one warm-up step whose effects are undone, so it is not
    timed as training and a failure (no C compiler for Triton, an op Inductor cannot lower)
    degrades graph -> compile -> eager with a warning instead of failing the child.
    """
    if rt.mode == "eager":
        return _eager_step(child.model, child, rt), "eager"
    if rt.mode == "eager_graph":  # no compile: nothing to wait for, nothing fused
        try:
            return _graph_step(child.model, child, rt, example), "eager_graph"
        except Exception as e:  # capture is best effort, as below
            log.warning("CUDA graph capture failed (%s: %s); using the eager step", type(e).__name__, e)
            torch.cuda.synchronize()
            return _eager_step(child.model, child, rt), "eager"
    compiled = torch.compile(child.model)
    if rt.mode == "graph":
        try:
            return _graph_step(compiled, child, rt, example), "graph"
        except Exception as e:  # capture is best effort: any failure means "not safe here"
            log.warning("CUDA graph capture failed (%s: %s); trying the compiled step", type(e).__name__, e)
            torch.cuda.synchronize()
    step = _eager_step(compiled, child, rt)
    try:
        with _state_preserved(child):
            step(*example)
        return step, "compile"
    except Exception as e:  # same: a child that cannot be compiled still trains, slower
        log.warning("torch.compile failed (%s: %s); using the eager step", type(e).__name__, e)
        return _eager_step(child.model, child, rt), "eager"


# ---------------------------------------------------------------------------------------------
# Evaluation and the loop
# ---------------------------------------------------------------------------------------------


def evaluate(model: nn.Module, data: ImageSet, mean: Tensor, std: Tensor, rt: Runtime) -> tuple[float, float]:
    """(accuracy, mean loss) of one network in eval mode over ``data``."""
    (acc,), (loss,) = evaluate_members(model, data, mean, std, rt, 1)
    return acc, loss


@torch.no_grad()
def evaluate_members(model: nn.Module, data: ImageSet, mean: Tensor, std: Tensor, rt: Runtime,
                     k: int) -> tuple[list[float], list[float]]:
    """(accuracy, mean loss) of each of the ``k`` members of ``model``, in eval mode, over ``data``."""
    was_training = model.training
    model.eval()
    correct, loss_sum = torch.zeros(k, device=rt.device), torch.zeros(k, device=rt.device)
    for i in range(0, len(data), EVAL_BATCH):
        x = normalize(data.images[i : i + EVAL_BATCH], mean, std, rt.channels_last)
        y = data.labels[i : i + EVAL_BATCH]
        with _autocast(rt):
            losses, right = member_losses(model(x), y, k, reduction="sum")
        loss_sum += losses
        correct += right
    model.train(was_training)
    n = max(1, len(data))
    return (correct / n).tolist(), (loss_sum / n).tolist()


@dataclass(frozen=True)
class Outcome:
    val_accuracy: float
    val_loss: float
    test_accuracy: float
    test_loss: float
    steps: int
    start_step: int
    wall_time_s: float  # all attempts, including compilation and evaluation
    steps_per_s: float  # this attempt, training steps only, after the first step (of the pack)
    beta_mean: float
    mode: str
    weights: dict[str, Tensor] = field(repr=False, compare=False)  # the plain network's state_dict
    pack_size: int = 1


MemberResult = Outcome | NonFiniteLoss
"""What ``train_pack`` returns per member: its outcome, or the divergence that stopped it."""


def train(cfg: TrainConfig, activation: ActivationRef, data: Data, hooks: Hooks,
          resume: dict[str, Any] | None = None) -> Outcome:
    """Train one child to ``cfg.steps``, from ``resume`` (a checkpoint state) when given.

    Raises NonFiniteLoss at the first step whose loss is NaN or infinite.
    """
    result = train_pack([cfg], [activation], data, [hooks], [resume])[0]
    if isinstance(result, NonFiniteLoss):
        raise result
    return result


def _common_resume(resumes: list[dict[str, Any] | None]) -> list[dict[str, Any]] | None:
    """Every member's checkpoint when all have one at the same step; else start afresh."""
    if all(r is None for r in resumes):
        return None
    steps = {None if r is None else int(r["step"]) for r in resumes}
    if len(steps) != 1:
        log.warning("members' checkpoints are at different steps (%s); starting the pack from step 0",
                    ", ".join("none" if s is None else str(s) for s in sorted(steps, key=lambda s: s or -1)))
        return None
    return [r for r in resumes if r is not None]


def train_pack(cfgs: list[TrainConfig], activations: list[ActivationRef], data: Data,
               hooks: list[Hooks], resumes: list[dict[str, Any] | None] | None = None,
               ) -> list[MemberResult]:
    """Train K children side by side to ``cfgs[0].steps``, one result per member, in order.

    The members share every setting but the seed (``config.PackSpec`` checks it); each resumes
    from its checkpoint in ``resumes`` when all have one at the same step.
    """
    t0 = time.perf_counter()
    k, cfg = len(cfgs), cfgs[0]
    rt = resolve(cfg)
    child = build(list(cfgs), list(activations), data, rt)
    start, elapsed_before = 0, 0.0
    common = _common_resume(list(resumes or [None] * k))
    if common is not None:
        child.load(common)
        start, elapsed_before = int(common[0]["step"]), float(common[0]["elapsed_s"])
        log.info("resuming at step %d of %d", start, cfg.steps)
    train_set, val_set, test_set = data.train.to(rt.device), data.val.to(rt.device), data.test.to(rt.device)
    mean = torch.tensor(data.mean, device=rt.device)
    std = torch.tensor(data.std, device=rt.device)
    seeds = [c.seed for c in cfgs]
    # members with one seed draw the same batches: augment once, feed the images to all
    streams = [Batches(train_set, cfg.batch_size, s, cfg.crop_padding, cfg.flip)
               for s in (seeds[:1] if len(set(seeds)) == 1 else seeds)]

    def batch(step: int) -> tuple[Tensor, Tensor]:
        drawn = [b(step) for b in streams]
        if len(drawn) == 1:
            return normalize(drawn[0][0], mean, std, rt.channels_last), drawn[0][1]
        x = torch.cat([normalize(images, mean, std, rt.channels_last) for images, _ in drawn], 1)
        if rt.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        return x, torch.stack([labels for _, labels in drawn], 1)

    step_fn, mode = make_step(child, rt, batch(start))
    log.info("training %s%s on %s, %s, mode %s, steps %d..%d", cfg.model,
             f" x{k} (packed)" if k > 1 else "", rt.device, "bf16" if rt.bf16 else "fp32", mode,
             start, cfg.steps)

    sync_every = SYNC_EVERY_CUDA if rt.device.type == "cuda" else 1
    losses = torch.zeros(sync_every, k, device=rt.device)
    corrects = torch.zeros(sync_every, k, device=rt.device)
    pending = 0  # steps in the buffers not yet read by the host
    window_loss, window_correct, window_steps = [0.0] * k, [0.0] * k, 0
    eval_time, warm_at, warm_step = 0.0, None, start
    failed: dict[int, NonFiniteLoss] = {}
    done = start

    def alive() -> list[int]:
        return [m for m in range(k) if m not in failed]

    child.model.train()
    termination.training_started()
    for step in range(start, cfg.steps):
        x, y = batch(step)
        lr = child.set_lr(step)
        loss, correct = step_fn(x, y)
        losses[pending], corrects[pending] = loss, correct
        pending += 1
        done = step + 1
        last = done == cfg.steps
        log_now = done % cfg.log_every == 0 or last
        eval_now = cfg.eval_every > 0 and done % cfg.eval_every == 0 and not last
        ckpt_now = cfg.checkpoint_every > 0 and done % cfg.checkpoint_every == 0 and not last
        stop_now = termination.requested() and not last  # SIGTERM: checkpoint, then stop
        if pending == sync_every or log_now or eval_now or ckpt_now or stop_now:
            rows, right = losses[:pending].tolist(), corrects[:pending].sum(0).tolist()
            for m in alive():
                bad = next((i for i, row in enumerate(rows) if not math.isfinite(row[m])), None)
                if bad is not None:
                    at, value = done - pending + bad + 1, rows[bad][m]
                    hooks[m].on_metrics(at, {"train_loss": value})
                    failed[m] = NonFiniteLoss(at, value)
                    log.warning("member %d of %d diverged at step %d (loss %s)%s", m, k, at, value,
                                "; the others train on" if len(failed) < k else "")
                    continue
                window_loss[m] += sum(row[m] for row in rows)
                window_correct[m] += right[m]
            window_steps += pending
            pending = 0
            if not alive():
                break
        if warm_at is None:
            warm_at, warm_step = time.perf_counter(), done
        if log_now:
            for m in alive():
                hooks[m].on_metrics(done, {
                    "train_loss": window_loss[m] / window_steps,
                    "train_accuracy": window_correct[m] / (window_steps * cfg.batch_size),
                    "lr": lr,
                })
            window_loss, window_correct, window_steps = [0.0] * k, [0.0] * k, 0
        if eval_now:
            te = time.perf_counter()
            accs, vlosses = evaluate_members(child.model, val_set, mean, std, rt, k)
            for m in alive():
                hooks[m].on_metrics(done, {"val_accuracy": accs[m], "val_loss": vlosses[m]})
            eval_time += time.perf_counter() - te
        if ckpt_now or stop_now:
            elapsed = elapsed_before + time.perf_counter() - t0
            for m in alive():
                hooks[m].on_checkpoint(done, child.state(done, elapsed, m))
        if stop_now:
            log.warning("SIGTERM: stopped after step %d of %d, checkpoint stored", done, cfg.steps)
            raise Interrupted(f"stopped by SIGTERM after step {done} of {cfg.steps}; its "
                              "checkpoint is stored and the next attempt resumes from it")

    if rt.device.type == "cuda":
        torch.cuda.synchronize()
    t_end = time.perf_counter()
    timed = done - warm_step
    steps_per_s = timed / max(1e-9, t_end - (warm_at or t_end) - eval_time) if timed > 0 else float("nan")
    if not alive():
        return [failed[m] for m in range(k)]
    val_acc, val_loss = evaluate_members(child.model, val_set, mean, std, rt, k)
    test_acc, test_loss = evaluate_members(child.model, test_set, mean, std, rt, k)
    wall = elapsed_before + time.perf_counter() - t0
    return [
        failed[m] if m in failed else Outcome(
            val_accuracy=val_acc[m], val_loss=val_loss[m], test_accuracy=test_acc[m],
            test_loss=test_loss[m], steps=cfg.steps, start_step=start, wall_time_s=wall,
            steps_per_s=steps_per_s, beta_mean=child.beta_mean(m), mode=mode,
            weights=child.weights(m), pack_size=k,
        )
        for m in range(k)
    ]
