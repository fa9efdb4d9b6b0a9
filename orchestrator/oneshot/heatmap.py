"""The op-weight heatmap of a one-shot search (matplotlib, headless): one row per slot, one
column per op, colour the op's weight at the end of the search with no op masked out (so dropped
ops still show where they ranked), the op kept at discretisation outlined."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

from orchestrator.oneshot.supernet import Slot


def plot_heatmap(slots: Sequence[Slot], weights: Mapping[str, Sequence[float]],
                 chosen: Mapping[str, str], path: str | Path, title: str = "") -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import Rectangle

    groups = [[s for s in slots if s.kind == kind] for kind in ("unary", "binary")]
    widths = [len(g[0].ops) for g in groups]
    fig, axes = plt.subplots(1, 2, figsize=(0.32 * sum(widths) + 3, 0.45 * len(groups[0]) + 2.2),
                             gridspec_kw={"width_ratios": widths}, squeeze=True)
    for ax, group in zip(axes, groups, strict=True):
        ops = group[0].ops
        grid = [list(weights[s.name]) for s in group]
        image = ax.imshow(grid, aspect="auto", cmap="viridis")
        ax.set_xticks(range(len(ops)), ops, rotation=90, fontsize=7)
        ax.set_yticks(range(len(group)), [s.name for s in group], fontsize=8)
        for row, s in enumerate(group):
            col = ops.index(chosen[s.name])
            ax.add_patch(Rectangle((col - 0.5, row - 0.5), 1, 1, fill=False, edgecolor="red", linewidth=2))
        ax.set_title(f"{group[0].kind} slots", fontsize=9)
        fig.colorbar(image, ax=ax, fraction=0.05, pad=0.02)
    if title:
        fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    out = Path(path)
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out
