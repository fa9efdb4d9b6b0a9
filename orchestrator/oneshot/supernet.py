"""The one-shot supernet: a mixed activation cell whose every slot is a weighted sum of all ops.

The cell is a chain of core units over the ops of ``orchestrator.space.ops`` (in their torch
forms, ``space.torch_ops``): unit 1 is ``b1(u1(x), u2(x))`` and unit k > 1 is
``bk(u(2k-1)(unit k-1), u(2k)(x))``, so two units give the paper's figure-1 template
``b2(u3(b1(u1(x), u2(x))), u4(x))``. Each slot mixes its ops with weights drawn from one
``Architecture``, shared by every activation site of the network (GRAFS:
the architecture is shared, the samples are not):

- ``darts``: softmax(α), the same weights at every site;
- ``drnas``: a Dirichlet sample with concentration elu(α) + 1, drawn independently per site and
  per forward pass (reparameterised, so α gets gradients);
- ``gdas``: a hard Gumbel-softmax sample per site (straight-through), temperature ``tau``.

Ops that were shrunk away are masked out and not computed. In evaluation mode every variant uses
its expected weights. Each op's output may be clamped to ±``clamp`` (GRAFS: unbounded ops such as
exp and x³ otherwise dominate the mixture). Pure model code: no I/O.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from orchestrator.space.activation import BetaMode
from orchestrator.space.expr import Expr, Node, Unit, X
from orchestrator.space.ops import BINARY_NAMES, UNARY_NAMES, Numerics
from orchestrator.space.torch_ops import BINARY_TORCH, UNARY_TORCH

Variant = Literal["darts", "drnas", "gdas"]
VARIANTS: tuple[Variant, ...] = ("darts", "drnas", "gdas")


@dataclass(frozen=True)
class Slot:
    name: str  # u1, u2, b1, ...
    kind: Literal["unary", "binary"]
    ops: tuple[str, ...]


def template_slots(units: int, unary: Sequence[str] = UNARY_NAMES,
                   binary: Sequence[str] = BINARY_NAMES) -> tuple[Slot, ...]:
    """The slots of the chain template in canonical order: u1, u2, b1, u3, u4, b2, ..."""
    if units < 1:
        raise ValueError(f"the one-shot template needs at least one unit; got {units}")
    slots: list[Slot] = []
    for k in range(1, units + 1):
        slots += [Slot(f"u{2 * k - 1}", "unary", tuple(unary)), Slot(f"u{2 * k}", "unary", tuple(unary)),
                  Slot(f"b{k}", "binary", tuple(binary))]
    return tuple(slots)


def template_expr(units: int, ops: Mapping[str, str]) -> Expr:
    """The chain template with ``ops[slot]`` in every slot, as a tree of core units."""
    prev: Node = X
    for k in range(1, units + 1):
        prev = Unit(ops[f"b{k}"], ops[f"u{2 * k - 1}"], prev, ops[f"u{2 * k}"], X)
    assert isinstance(prev, Unit), "the template has at least one unit"
    return prev


def mix(fns: Sequence[Callable[..., Tensor]], weights: Tensor, active: Sequence[int],
        args: Sequence[Tensor], beta: Tensor, clamp: float | None) -> Tensor:
    """``Σ_i weights[i] · fns[i](*args, beta)`` over the ``active`` ops, each output clamped."""
    total: Tensor | None = None
    for i in active:
        out = fns[i](*args, beta)
        if clamp is not None:
            out = out.clamp(-clamp, clamp)
        term = out * weights[i]
        total = term if total is None else total + term
    assert total is not None, "a slot always keeps at least one op"
    return total


class Architecture(nn.Module):
    """The architecture weights α of every slot, the shrinking masks, and how weights are drawn."""

    def __init__(self, units: int = 2, variant: Variant = "drnas", unary: Sequence[str] = UNARY_NAMES,
                 binary: Sequence[str] = BINARY_NAMES, clamp: float | None = 10.0,
                 numerics: Numerics = "safe") -> None:
        super().__init__()
        if variant not in VARIANTS:
            raise ValueError(f"variant must be one of {', '.join(VARIANTS)}; got {variant!r}")
        self.variant: Variant = variant
        self.units = units
        self.slots = template_slots(units, unary, binary)
        self.clamp = clamp
        self.tau = 1.0  # gdas temperature, set by the search
        self.warm = False  # True: every site is a plain ReLU (warm-start)
        self.alpha = nn.ParameterDict({s.name: nn.Parameter(torch.zeros(len(s.ops))) for s in self.slots})
        for s in self.slots:
            self.register_buffer(f"mask_{s.name}", torch.ones(len(s.ops), dtype=torch.bool))
        table = {"unary": UNARY_TORCH, "binary": BINARY_TORCH}
        self.fns = {s.name: [table[s.kind][op].fn(numerics) for op in s.ops] for s in self.slots}

    def slot(self, name: str) -> Slot:
        return next(s for s in self.slots if s.name == name)

    def mask(self, slot: str) -> Tensor:
        return getattr(self, f"mask_{slot}")

    def active(self, slot: str) -> list[int]:
        return torch.nonzero(self.mask(slot)).flatten().tolist()

    def weights(self, slot: str, sample: bool) -> Tensor:
        """Mixture weights over the slot's ops (0 for dropped ones); a fresh draw when ``sample``."""
        alpha, mask = self.alpha[slot], self.mask(slot)
        active = torch.nonzero(mask).flatten()
        if len(active) == 1:
            return mask.to(alpha.dtype)
        if not sample or self.variant == "darts":
            return self.probabilities(slot)
        if self.variant == "drnas":
            conc = F.elu(alpha[active]) + 1.0
            drawn = torch.distributions.Dirichlet(conc).rsample()
        else:
            drawn = F.gumbel_softmax(alpha[active], tau=self.tau, hard=True)
        return torch.zeros_like(alpha).index_put((active,), drawn)

    def probabilities(self, slot: str, masked: bool = True) -> Tensor:
        """Expected weights: softmax(α), or elu(α) + 1 normalised (drnas); over active ops unless
        ``masked`` is False (then over all ops, as the heatmap shows them)."""
        alpha, mask = self.alpha[slot], self.mask(slot)
        if self.variant == "drnas":
            conc = F.elu(alpha) + 1.0
            if masked:
                conc = conc * mask
            return conc / conc.sum()
        return F.softmax(alpha.masked_fill(~mask, float("-inf")) if masked else alpha, dim=0)

    @torch.no_grad()
    def drop_weakest(self, slot: str) -> str:
        """Progressive shrinking: remove the active op with the smallest α; returns its name."""
        active = self.active(slot)
        if len(active) <= 1:
            raise ValueError(f"slot {slot} has one op left; nothing to drop")
        alpha = self.alpha[slot]
        weakest = min(active, key=lambda i: float(alpha[i]))
        self.mask(slot)[weakest] = False
        return self.slot(slot).ops[weakest]

    @torch.no_grad()
    def choice(self, slot: str) -> str:
        """The op kept at discretisation: the most probable active op."""
        return self.slot(slot).ops[int(self.probabilities(slot).argmax())]

    def discretise(self) -> Expr:
        """The argmax op of every slot, as a tree of core units in the template's shape."""
        return template_expr(self.units, {s.name: self.choice(s.name) for s in self.slots})


class MixedActivation(nn.Module):
    """One activation site of the supernet; owns its β (per channel or scalar), reads the shared
    architecture without registering it (so α is not a parameter of every site)."""

    def __init__(self, arch: Architecture, channels: int | None = None, beta_mode: BetaMode = "channel",
                 beta_init: float = 1.0) -> None:
        super().__init__()
        object.__setattr__(self, "arch", arch)
        self.beta_mode = beta_mode
        size = channels if beta_mode == "channel" and channels is not None else 1
        self.beta = nn.Parameter(torch.full((size,), float(beta_init)))

    def _beta_for(self, x: Tensor) -> Tensor:
        if self.beta.numel() > 1 and x.dim() > 1:
            return self.beta.view(1, -1, *([1] * (x.dim() - 2)))
        return self.beta.view(*([1] * x.dim()))

    def forward(self, x: Tensor) -> Tensor:
        arch: Architecture = self.arch  # type: ignore[assignment]
        if arch.warm:
            return torch.relu(x)
        beta = self._beta_for(x)

        def slot(name: str, args: Sequence[Tensor]) -> Tensor:
            w = arch.weights(name, sample=self.training)
            return mix(arch.fns[name], w, arch.active(name), args, beta, arch.clamp)

        prev = x
        for k in range(1, arch.units + 1):
            a = slot(f"u{2 * k - 1}", (prev,))
            b = slot(f"u{2 * k}", (x,))
            prev = slot(f"b{k}", (a, b))
        return prev
