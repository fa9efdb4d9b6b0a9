"""Plots of activation functions and their derivatives (matplotlib, headless)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from orchestrator.space.activation import ActivationRef, activation_math
from orchestrator.space.module import build_site
from orchestrator.space.naming import has_beta
from orchestrator.space.ops import Numerics


def curve(
    expr: ActivationRef, lo: float = -5.0, hi: float = 5.0, n: int = 501, beta: float = 1.0,
    numerics: Numerics = "safe",
) -> tuple[list[float], list[float], list[float]]:
    """(x, f(x), f'(x)) on a grid, with the training ops in float64."""
    x = torch.linspace(lo, hi, n, dtype=torch.float64, requires_grad=True)
    act = build_site(expr, beta_mode="scalar", beta_init=beta, numerics=numerics).double()
    y = act(x)
    (g,) = torch.autograd.grad(y.sum(), x, allow_unused=True)
    g = torch.zeros_like(x) if g is None else g
    return x.detach().tolist(), y.detach().tolist(), g.detach().tolist()


def plot_functions(
    exprs: Sequence[ActivationRef],
    path: str | Path,
    betas: Sequence[float] | None = None,
    labels: Sequence[str] | None = None,
    numerics: Numerics = "safe",
) -> Path:
    """Write a PNG with f (left) and f' (right) of each expression; returns the path."""

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    betas = list(betas) if betas is not None else [1.0] * len(exprs)
    labels = list(labels) if labels is not None else [activation_math(e) for e in exprs]
    fig, (ax_f, ax_g) = plt.subplots(1, 2, figsize=(10, 4))
    for expr, beta, label in zip(exprs, betas, labels, strict=True):
        x, y, g = curve(expr, beta=beta, numerics=numerics)
        # β only where the function has one: a legend "(β=1)" on ReLU would be noise
        shown = f"{label} (β={beta:.3g})" if has_beta(expr) else label
        ax_f.plot(x, y, label=shown)
        ax_g.plot(x, g, label=shown)
    for ax, title in ((ax_f, "f(x)"), (ax_g, "f'(x)")):
        ax.set_title(title)
        ax.axhline(0, color="grey", lw=0.5)
        ax.axvline(0, color="grey", lw=0.5)
        ax.grid(alpha=0.3)
    ax_f.legend(fontsize=8)
    return save_figure(fig, path)


def save_figure(fig: Any, path: str | Path) -> Path:
    """Write a matplotlib figure as a PNG (folders created) and free it."""
    import matplotlib.pyplot as plt

    fig.tight_layout()
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=100)
    plt.close(fig)
    return out
