"""K children fused side by side into one network (horizontal fusion, as in HFTA, MLSys 2021).

A ResNet-20 child at batch 128 leaves a large GPU mostly idle. Packing K children trains them as
one network whose every tensor carries the K members' channels in K consecutive blocks of dim 1:
a convolution becomes one grouped convolution (groups = K), a batch norm one batch norm over
K·C channels (statistics are per channel, so per member), a linear layer one batched matmul, and
an activation site applies member k's function to block k. No operation mixes blocks, so each
member computes exactly what it would alone: its loss, its gradients, its optimizer update (SGD
and AdamW are elementwise) and its batch statistics depend on its own block only, and a member
whose loss turns NaN poisons nothing but its own block.

The packed network has the solo network's module tree (``models.py`` builds both from one
architecture description), so state converts by name:

- a packed layer's tensor is the concatenation of the members' tensors along dim 0
  (conv ``[K·cout, cin, kh, kw]``, batch norm ``[K·C]``, linear ``[K·out, in]``);
- activation sites keep one module per member (``<site>.sites.<k>.<param>``);
- 0-dim tensors (``num_batches_tracked``, AdamW's ``step``) are shared: members train in lockstep.

``pack_state``/``unpack_state`` (and the optimizer versions) map between the two, so a member's
checkpoint is an ordinary solo checkpoint: a packed child resumes solo and a solo one packed.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from orchestrator.trainer.models import MakeAct, build_network

_SITE_KEY = re.compile(r"^(?P<site>.*)\.sites\.(?P<member>\d+)\.(?P<rest>[^.]+)$")


class PackedConv2d(nn.Conv2d):
    """K convolutions ``cin -> cout`` as one grouped convolution ``K·cin -> K·cout``.

    The input may also be shared by every member (``cin`` channels, the images of a pack whose
    members draw the same batches): then the same weight runs as an ungrouped convolution
    ``cin -> K·cout``, which is what the grouped one computes on the input repeated K times.
    """

    def __init__(self, k: int, cin: int, cout: int, kernel: int, stride: int = 1, padding: int = 0) -> None:
        super().__init__(k * cin, k * cout, kernel, stride=stride, padding=padding, groups=k, bias=False)
        self.k, self.member_in = k, cin

    def forward(self, x: Tensor) -> Tensor:
        if self.k > 1 and x.shape[1] == self.member_in:
            return F.conv2d(x, self.weight, None, self.stride, self.padding)
        return super().forward(x)


class PackedLinear(nn.Linear):
    """K linear layers ``fin -> fout``: input ``[B, K·fin]`` (or ``[B, fin]`` shared), output
    ``[B, K·fout]``; the weight is the members' weights stacked, ``[K·fout, fin]``."""

    def __init__(self, k: int, fin: int, fout: int, bias: bool = True) -> None:
        super().__init__(fin, k * fout, bias=bias)
        self.k, self.member_out = k, fout

    def forward(self, x: Tensor) -> Tensor:
        if x.shape[1] == self.in_features:  # shared input: one matmul against the stacked weights
            return F.linear(x, self.weight, self.bias)
        w = self.weight.view(self.k, self.member_out, self.in_features)
        y = torch.bmm(x.unflatten(1, (self.k, self.in_features)).transpose(0, 1), w.transpose(1, 2))
        y = y.transpose(0, 1).flatten(1)
        return y if self.bias is None else y + self.bias

    def extra_repr(self) -> str:
        return f"k={self.k}, in_features={self.in_features}, out_features={self.member_out} each"


class PackedSite(nn.Module):
    """One activation site of K members: member k's own module applied to block k."""

    def __init__(self, sites: Sequence[nn.Module]) -> None:
        super().__init__()
        self.sites = nn.ModuleList(sites)

    def forward(self, x: Tensor) -> Tensor:
        if len(self.sites) == 1:
            return self.sites[0](x)
        blocks = x.chunk(len(self.sites), dim=1)
        return torch.cat([site(block) for site, block in zip(self.sites, blocks, strict=True)], 1)


class PackedLayers:
    """``models.Layers`` for K members; member k's activations come from ``make_acts[k]``."""

    def __init__(self, make_acts: Sequence[MakeAct]) -> None:
        self.make_acts = list(make_acts)
        self.k = len(self.make_acts)

    def conv(self, cin: int, cout: int, kernel: int, stride: int = 1, padding: int = 0) -> nn.Module:
        return PackedConv2d(self.k, cin, cout, kernel, stride, padding)

    def bn(self, channels: int) -> nn.Module:
        return nn.BatchNorm2d(self.k * channels)

    def bn1d(self, features: int) -> nn.Module:
        return nn.BatchNorm1d(self.k * features)

    def act(self, channels: int) -> nn.Module:
        return PackedSite([make(channels) for make in self.make_acts])

    def linear(self, fin: int, fout: int, bias: bool = True) -> nn.Module:
        return PackedLinear(self.k, fin, fout, bias)


def build_packed_network(name: str, num_classes: int, image_shape: tuple[int, int, int],
                         make_acts: Sequence[MakeAct]) -> nn.Module:
    """The packed network of ``len(make_acts)`` members (uninitialised: load ``pack_state``)."""
    return build_network(name, num_classes, image_shape, PackedLayers(make_acts))


# ---------------------------------------------------------------------------------------------
# State: packed <-> per member
# ---------------------------------------------------------------------------------------------


def member_key(packed_key: str) -> tuple[str, int | None]:
    """(solo key, member) of a packed key; member None for a key every member has a slice of."""
    m = _SITE_KEY.match(packed_key)
    if m is None:
        return packed_key, None
    return f"{m['site']}.{m['rest']}", int(m["member"])


def _split(t: Tensor, k: int, member: int) -> Tensor:
    return t.clone() if t.dim() == 0 else t.chunk(k, 0)[member].clone()


def _join(ts: list[Tensor]) -> Tensor:
    return ts[0].clone() if ts[0].dim() == 0 else torch.cat(ts, 0)


def unpack_state(packed: dict[str, Tensor], k: int, member: int) -> dict[str, Tensor]:
    """Member ``member``'s solo ``state_dict`` out of a packed one of ``k`` members."""
    out: dict[str, Tensor] = {}
    for key, t in packed.items():
        solo, owner = member_key(key)
        if owner is None:
            out[solo] = _split(t, k, member)
        elif owner == member:
            out[solo] = t.clone()
    return out


def pack_state(packed_keys: Sequence[str], members: Sequence[dict[str, Tensor]]) -> dict[str, Tensor]:
    """The packed ``state_dict`` (keys ``packed_keys``) holding the members' solo states."""
    out: dict[str, Tensor] = {}
    for key in packed_keys:
        solo, owner = member_key(key)
        out[key] = _join([m[solo] for m in members]) if owner is None else members[owner][solo].clone()
    return out


def optimizer_names(model: nn.Module, optimizer: torch.optim.Optimizer) -> list[str]:
    """Parameter names in the optimizer's state_dict index order (groups in order)."""
    name_of = {id(p): n for n, p in model.named_parameters()}
    return [name_of[id(p)] for g in optimizer.param_groups for p in g["params"]]


def _member_indices(names: list[str], member: int) -> dict[int, int]:
    """Packed optimizer index -> the member's solo index, for the parameters the member has."""
    mine = [i for i, n in enumerate(names) if member_key(n)[1] in (None, member)]
    return {i: j for j, i in enumerate(mine)}


def unpack_optimizer_state(state: dict[str, Any], names: list[str], k: int, member: int) -> dict[str, Any]:
    """Member ``member``'s solo optimizer ``state_dict`` out of the packed one."""
    index = _member_indices(names, member)

    def piece(i: int, v: Any) -> Any:
        if not isinstance(v, Tensor) or member_key(names[i])[1] is not None:
            return v.clone() if isinstance(v, Tensor) else v
        return _split(v, k, member)

    return {
        "state": {index[i]: {key: piece(i, v) for key, v in st.items()}
                  for i, st in state["state"].items() if i in index},
        "param_groups": [{**g, "params": [index[i] for i in g["params"] if i in index]}
                         for g in state["param_groups"]],
    }


def pack_optimizer_state(template: dict[str, Any], names: list[str],
                         members: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """The packed optimizer ``state_dict`` from the members' solo ones.

    ``template`` is the packed optimizer's own ``state_dict`` (its groups and hyperparameters).
    """
    indices = [_member_indices(names, m) for m in range(len(members))]
    state: dict[int, dict[str, Any]] = {}
    for i, name in enumerate(names):
        owner = member_key(name)[1]
        if owner is not None:
            solo = members[owner]["state"].get(indices[owner][i])
            if solo is not None:
                state[i] = {key: v.clone() if isinstance(v, Tensor) else v for key, v in solo.items()}
            continue
        pieces = [m["state"].get(idx[i]) for m, idx in zip(members, indices, strict=True)]
        if any(p is None for p in pieces):  # a fresh optimizer has no state yet
            continue
        state[i] = {key: _join([p[key] for p in pieces]) if isinstance(v, Tensor) else v
                    for key, v in pieces[0].items()}
    return {"state": state, "param_groups": template["param_groups"]}


def packed_sites(model: nn.Module) -> Iterator[PackedSite]:
    return (m for m in model.modules() if isinstance(m, PackedSite))
