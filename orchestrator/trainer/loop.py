"""The training loop of one child: build, step, measure, evaluate. No I/O; results go to ``Hooks``.

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

from orchestrator.space.activation import ActivationRef, build_site, is_activation_site
from orchestrator.space.module import Activation
from orchestrator.trainer.augment import Batches, normalize
from orchestrator.trainer.config import TrainConfig
from orchestrator.trainer.data import Data, ImageSet
from orchestrator.trainer.errors import BadInput, NonFiniteLoss
from orchestrator.trainer.models import build_model

log = logging.getLogger(__name__)

SYNC_EVERY_CUDA = 25
EVAL_BATCH = 1000
GRAPH_WARMUP = 3

StepFn = Callable[[Tensor, Tensor], tuple[Tensor, Tensor]]
"""(normalised images, labels) -> (loss, number correct), both 0-dim device tensors."""


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
    mode: str  # eager | compile | graph

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
    if cfg.compile == "graph" and not on_cuda:
        raise BadInput("compile 'graph' needs CUDA; this child runs on CPU (use 'eager' or 'compile')")
    bf16 = cfg.precision == "bf16" or (cfg.precision == "auto" and on_cuda)
    mode = cfg.compile if cfg.compile != "auto" else ("graph" if on_cuda else "eager")
    return Runtime(device, bf16, mode)


@dataclass
class Child:
    """A built child: the network, its optimizer and schedule, on its device."""

    model: nn.Module
    optimizer: torch.optim.Optimizer
    lr_at: Callable[[int], float]  # learning rate of 0-based step s: the schedule is a function of s

    def set_lr(self, step: int) -> float:
        """Set the learning rate for ``step``; device-tensor lrs are filled in place (no sync)."""
        lr = self.lr_at(step)
        for g in self.optimizer.param_groups:
            if isinstance(g["lr"], Tensor):
                g["lr"].fill_(lr)
            else:
                g["lr"] = lr
        return lr

    def activations(self) -> list[Activation]:
        return [m for m in self.model.modules() if isinstance(m, Activation)]

    def beta_mean(self) -> float:
        betas = [a.beta.detach().float().flatten() for a in self.activations()]
        return float(torch.cat(betas).mean()) if betas else float("nan")

    def state(self, step: int, elapsed_s: float) -> dict[str, Any]:
        rng = {"cpu": torch.get_rng_state()}
        if torch.cuda.is_available():
            rng["cuda"] = torch.cuda.get_rng_state_all()
        return {
            "step": step, "elapsed_s": elapsed_s, "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(), "rng": rng,
        }

    def load(self, state: dict[str, Any]) -> None:
        self.model.load_state_dict(state["model"])
        live_lrs = [g["lr"] for g in self.optimizer.param_groups]  # device tensors in graph mode
        self.optimizer.load_state_dict(state["optimizer"])
        for g, lr in zip(self.optimizer.param_groups, live_lrs, strict=True):
            g["lr"] = lr
        torch.set_rng_state(state["rng"]["cpu"])
        if "cuda" in state["rng"] and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(state["rng"]["cuda"])


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


def build(cfg: TrainConfig, activation: ActivationRef, data: Data, rt: Runtime) -> Child:
    torch.manual_seed(cfg.seed)

    def make_act(channels: int) -> nn.Module:
        return build_site(activation, channels, cfg.beta_mode, cfg.beta_init, cfg.numerics)

    model = build_model(cfg.model, data.num_classes, data.image_shape, make_act).to(rt.device)
    if rt.channels_last:
        model = model.to(memory_format=torch.channels_last)
    # the activations' own parameters (β, PReLU's α) are not decayed
    own = {id(p) for m in model.modules() if is_activation_site(m) for p in m.parameters()}
    groups = [
        {"params": [p for p in model.parameters() if id(p) not in own], "weight_decay": cfg.weight_decay},
        {"params": [p for p in model.parameters() if id(p) in own], "weight_decay": 0.0},
    ]
    graph = rt.mode == "graph"
    # A CUDA graph replays the step with the lr it read at capture time unless lr is a device
    # tensor that set_lr fills in place; fused SGD and capturable AdamW read it from there.
    lr: float | Tensor = torch.tensor(cfg.lr, device=rt.device) if graph else cfg.lr
    for g in groups:
        g["lr"] = lr.clone() if isinstance(lr, Tensor) else lr
    optimizer: torch.optim.Optimizer
    if cfg.optimizer == "sgd":
        optimizer = torch.optim.SGD(groups, lr=lr, momentum=cfg.momentum, nesterov=cfg.nesterov,
                                    fused=True if graph else None)
    else:
        optimizer = torch.optim.AdamW(groups, lr=lr, betas=(cfg.momentum, 0.999),
                                      capturable=graph, fused=True if graph else None)
    factor = lr_factor(cfg)
    return Child(model, optimizer, lambda s: cfg.lr * factor(s))


# ---------------------------------------------------------------------------------------------
# The step, three ways
# ---------------------------------------------------------------------------------------------


def _autocast(rt: Runtime, cache: bool = True) -> contextlib.AbstractContextManager[Any]:
    if rt.bf16:
        return torch.autocast(rt.device.type, dtype=torch.bfloat16, cache_enabled=cache)
    return contextlib.nullcontext()


def _eager_step(forward: Callable[[Tensor], Tensor], child: Child, rt: Runtime,
                cache: bool = True) -> StepFn:
    opt = child.optimizer

    def step(x: Tensor, y: Tensor) -> tuple[Tensor, Tensor]:
        opt.zero_grad(set_to_none=True)
        with _autocast(rt, cache):
            out = forward(x)
            loss = F.cross_entropy(out.float(), y)
        loss.backward()
        opt.step()
        return loss.detach(), (out.argmax(1) == y).sum()

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


@torch.no_grad()
def evaluate(model: nn.Module, data: ImageSet, mean: Tensor, std: Tensor, rt: Runtime) -> tuple[float, float]:
    """(accuracy, mean loss) of ``model`` in eval mode over ``data``."""
    was_training = model.training
    model.eval()
    correct, loss_sum = torch.zeros((), device=rt.device), torch.zeros((), device=rt.device)
    for i in range(0, len(data), EVAL_BATCH):
        x = normalize(data.images[i : i + EVAL_BATCH], mean, std, rt.channels_last)
        y = data.labels[i : i + EVAL_BATCH]
        with _autocast(rt):
            out = model(x).float()
        loss_sum += F.cross_entropy(out, y, reduction="sum")
        correct += (out.argmax(1) == y).sum()
    model.train(was_training)
    n = max(1, len(data))
    return float(correct) / n, float(loss_sum) / n


@dataclass(frozen=True)
class Outcome:
    val_accuracy: float
    val_loss: float
    test_accuracy: float
    test_loss: float
    steps: int
    start_step: int
    wall_time_s: float  # all attempts, including compilation and evaluation
    steps_per_s: float  # this attempt, training steps only, after the first step
    beta_mean: float
    mode: str
    model: nn.Module = field(repr=False, compare=False)


def train(cfg: TrainConfig, activation: ActivationRef, data: Data, hooks: Hooks,
          resume: dict[str, Any] | None = None) -> Outcome:
    """Train one child to ``cfg.steps``, from ``resume`` (a checkpoint state) when given.

    Raises NonFiniteLoss at the first step whose loss is NaN or infinite.
    """
    t0 = time.perf_counter()
    rt = resolve(cfg)
    child = build(cfg, activation, data, rt)
    start, elapsed_before = 0, 0.0
    if resume is not None:
        child.load(resume)
        start, elapsed_before = int(resume["step"]), float(resume["elapsed_s"])
        log.info("resuming at step %d of %d", start, cfg.steps)
    train_set, val_set, test_set = data.train.to(rt.device), data.val.to(rt.device), data.test.to(rt.device)
    mean = torch.tensor(data.mean, device=rt.device)
    std = torch.tensor(data.std, device=rt.device)
    batches = Batches(train_set, cfg.batch_size, cfg.seed, cfg.crop_padding, cfg.flip)

    def batch(step: int) -> tuple[Tensor, Tensor]:
        images, labels = batches(step)
        return normalize(images, mean, std, rt.channels_last), labels

    step_fn, mode = make_step(child, rt, batch(start))
    log.info("training %s on %s, %s, mode %s, steps %d..%d", cfg.model, rt.device,
             "bf16" if rt.bf16 else "fp32", mode, start, cfg.steps)

    sync_every = SYNC_EVERY_CUDA if rt.device.type == "cuda" else 1
    losses = torch.zeros(sync_every, device=rt.device)
    corrects = torch.zeros(sync_every, device=rt.device)
    pending = 0  # steps in the buffers not yet read by the host
    window_loss, window_correct, window_steps = 0.0, 0.0, 0
    eval_time, warm_at, warm_step = 0.0, None, start

    child.model.train()
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
        if pending == sync_every or log_now or eval_now or ckpt_now:
            values = losses[:pending].tolist()
            for i, v in enumerate(values):
                if not math.isfinite(v):
                    failed = done - pending + i + 1
                    hooks.on_metrics(failed, {"train_loss": v})
                    raise NonFiniteLoss(failed, v)
            window_loss += sum(values)
            window_correct += float(corrects[:pending].sum())
            window_steps += pending
            pending = 0
        if warm_at is None:
            warm_at, warm_step = time.perf_counter(), done
        if log_now:
            hooks.on_metrics(done, {
                "train_loss": window_loss / window_steps,
                "train_accuracy": window_correct / (window_steps * cfg.batch_size),
                "lr": lr,
            })
            window_loss, window_correct, window_steps = 0.0, 0.0, 0
        if eval_now:
            te = time.perf_counter()
            acc, vloss = evaluate(child.model, val_set, mean, std, rt)
            hooks.on_metrics(done, {"val_accuracy": acc, "val_loss": vloss})
            eval_time += time.perf_counter() - te
        if ckpt_now:
            hooks.on_checkpoint(done, child.state(done, elapsed_before + time.perf_counter() - t0))

    if rt.device.type == "cuda":
        torch.cuda.synchronize()
    t_end = time.perf_counter()
    timed = cfg.steps - warm_step
    steps_per_s = timed / max(1e-9, t_end - (warm_at or t_end) - eval_time) if timed > 0 else float("nan")
    val_acc, val_loss = evaluate(child.model, val_set, mean, std, rt)
    test_acc, test_loss = evaluate(child.model, test_set, mean, std, rt)
    outcome = Outcome(
        val_accuracy=val_acc, val_loss=val_loss, test_accuracy=test_acc, test_loss=test_loss,
        steps=cfg.steps, start_step=start,
        wall_time_s=elapsed_before + time.perf_counter() - t0, steps_per_s=steps_per_s,
        beta_mean=child.beta_mean(), mode=mode, model=child.model,
    )
    return outcome
