"""Child networks: pure model code, the activation injected through one factory.

Every activation site calls ``layers.act(channels)`` exactly once, so each site owns its own
module (and its own per-channel β). Nothing here does I/O or knows about the search space.

Architectures are written once against ``Layers``: ``SoloLayers`` gives the plain network of one
child; ``packing.PackedLayers`` gives K children fused side by side (packing.py), where every
tensor carries the K members' channels in K consecutive blocks of dim 1. ``self.k`` is that K;
the two channel operations that are not per-channel (the zero padding of option-A shortcuts,
DenseNet's concatenation) go through ``pad_channels``/``cat_channels``, which act per block.

- CIFAR ResNet-20/32/56 (He et al. 2016, §4.2): 3 stages of 16/32/64 channels, basic blocks,
  identity shortcuts with zero-padded channels (option A), activation after the residual add.
- Pre-activation ResNet-164 (He et al. 2016b): bottleneck blocks BN → act → conv.
- Wide ResNet 28-10 (Zagoruyko & Komodakis 2016): pre-activation basic blocks, widths 160/320/640.
- DenseNet-BC 100-12 (Huang et al. 2017): bottleneck + compression 0.5, growth 12 (our reading
  of the paper's "DenseNet 100-12").
- tiny_cnn and mlp: seconds-scale children for CPU quickstarts and tests.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Protocol

import torch
import torch.nn.functional as F
from torch import Tensor, nn

MakeAct = Callable[[int], nn.Module]
"""Builds the activation of one site from that site's channel count."""


class Layers(Protocol):
    """The layer factory an architecture is written against; channel counts are per member."""

    k: int

    def conv(self, cin: int, cout: int, kernel: int, stride: int = 1, padding: int = 0) -> nn.Module: ...

    def bn(self, channels: int) -> nn.Module: ...

    def bn1d(self, features: int) -> nn.Module: ...

    def act(self, channels: int) -> nn.Module: ...

    def linear(self, fin: int, fout: int, bias: bool = True) -> nn.Module: ...


class SoloLayers:
    """The plain layers of one network (k = 1)."""

    k = 1

    def __init__(self, make_act: MakeAct) -> None:
        self.make_act = make_act

    def conv(self, cin: int, cout: int, kernel: int, stride: int = 1, padding: int = 0) -> nn.Module:
        return nn.Conv2d(cin, cout, kernel, stride=stride, padding=padding, bias=False)

    def bn(self, channels: int) -> nn.Module:
        return nn.BatchNorm2d(channels)

    def bn1d(self, features: int) -> nn.Module:
        return nn.BatchNorm1d(features)

    def act(self, channels: int) -> nn.Module:
        return self.make_act(channels)

    def linear(self, fin: int, fout: int, bias: bool = True) -> nn.Module:
        return nn.Linear(fin, fout, bias=bias)


def _conv3(L: Layers, cin: int, cout: int, stride: int = 1) -> nn.Module:
    return L.conv(cin, cout, 3, stride=stride, padding=1)


def pad_channels(x: Tensor, before: int, after: int, k: int) -> Tensor:
    """Zero channels added before and after each member's block of dim 1."""
    if k == 1:
        return F.pad(x, (0, 0, 0, 0, before, after))
    return F.pad(x.unflatten(1, (k, -1)), (0, 0, 0, 0, before, after)).flatten(1, 2)


def cat_channels(xs: list[Tensor], k: int) -> Tensor:
    """Concatenation along channels, member by member."""
    if k == 1:
        return torch.cat(xs, 1)
    return torch.cat([x.unflatten(1, (k, -1)) for x in xs], 2).flatten(1, 2)


# ---------------------------------------------------------------------------------------------
# CIFAR ResNet (post-activation, option A shortcuts)
# ---------------------------------------------------------------------------------------------


class BasicBlock(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int, L: Layers) -> None:
        super().__init__()
        self.conv1, self.bn1, self.act1 = _conv3(L, cin, cout, stride), L.bn(cout), L.act(cout)
        self.conv2, self.bn2, self.act2 = _conv3(L, cout, cout), L.bn(cout), L.act(cout)
        self.stride, self.pad, self.k = stride, cout - cin, L.k

    def shortcut(self, x: Tensor) -> Tensor:
        if self.stride == 1 and self.pad == 0:
            return x
        x = x[:, :, :: self.stride, :: self.stride]
        return pad_channels(x, self.pad // 2, self.pad - self.pad // 2, self.k)

    def forward(self, x: Tensor) -> Tensor:
        out = self.act1(self.bn1(self.conv1(x)))
        return self.act2(self.bn2(self.conv2(out)) + self.shortcut(x))


class CifarResNet(nn.Module):
    def __init__(self, depth: int, num_classes: int, in_channels: int, L: Layers) -> None:
        super().__init__()
        if (depth - 2) % 6:
            raise ValueError(f"CIFAR ResNet depth must be 6n+2; got {depth}")
        n = (depth - 2) // 6
        self.stem = nn.Sequential(_conv3(L, in_channels, 16), L.bn(16), L.act(16))
        blocks: list[nn.Module] = []
        cin = 16
        for i, width in enumerate((16, 32, 64)):
            for j in range(n):
                blocks.append(BasicBlock(cin, width, 2 if i > 0 and j == 0 else 1, L))
                cin = width
        self.blocks = nn.Sequential(*blocks)
        self.head = L.linear(64, num_classes)

    def forward(self, x: Tensor) -> Tensor:
        x = self.blocks(self.stem(x))
        return self.head(torch.flatten(F.adaptive_avg_pool2d(x, 1), 1))


# ---------------------------------------------------------------------------------------------
# Pre-activation ResNet-164 and Wide ResNet 28-10
# ---------------------------------------------------------------------------------------------


class PreActBottleneck(nn.Module):
    expansion = 4

    def __init__(self, cin: int, planes: int, stride: int, L: Layers) -> None:
        super().__init__()
        cout = planes * self.expansion
        self.bn1, self.act1 = L.bn(cin), L.act(cin)
        self.conv1 = L.conv(cin, planes, 1)
        self.bn2, self.act2 = L.bn(planes), L.act(planes)
        self.conv2 = _conv3(L, planes, planes, stride)
        self.bn3, self.act3 = L.bn(planes), L.act(planes)
        self.conv3 = L.conv(planes, cout, 1)
        self.proj = L.conv(cin, cout, 1, stride=stride) if stride != 1 or cin != cout else None

    def forward(self, x: Tensor) -> Tensor:
        pre = self.act1(self.bn1(x))
        shortcut = x if self.proj is None else self.proj(pre)
        out = self.conv1(pre)
        out = self.conv2(self.act2(self.bn2(out)))
        out = self.conv3(self.act3(self.bn3(out)))
        return out + shortcut


class PreActBasic(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int, L: Layers, dropout: float) -> None:
        super().__init__()
        self.bn1, self.act1, self.conv1 = L.bn(cin), L.act(cin), _conv3(L, cin, cout, stride)
        self.bn2, self.act2, self.conv2 = L.bn(cout), L.act(cout), _conv3(L, cout, cout)
        self.dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        self.proj = L.conv(cin, cout, 1, stride=stride) if stride != 1 or cin != cout else None

    def forward(self, x: Tensor) -> Tensor:
        pre = self.act1(self.bn1(x))
        shortcut = x if self.proj is None else self.proj(pre)
        out = self.conv1(pre)
        out = self.conv2(self.dropout(self.act2(self.bn2(out))))
        return out + shortcut


class PreActNet(nn.Module):
    """Pre-activation trunk shared by ResNet-164 (bottleneck) and WRN (wide basic blocks)."""

    def __init__(self, stages: Sequence[Sequence[nn.Module]], width_in: int, width_out: int,
                 num_classes: int, in_channels: int, L: Layers) -> None:
        super().__init__()
        self.stem = _conv3(L, in_channels, width_in)
        self.blocks = nn.Sequential(*[b for stage in stages for b in stage])
        self.bn, self.act = L.bn(width_out), L.act(width_out)
        self.head = L.linear(width_out, num_classes)

    def forward(self, x: Tensor) -> Tensor:
        x = self.act(self.bn(self.blocks(self.stem(x))))
        return self.head(torch.flatten(F.adaptive_avg_pool2d(x, 1), 1))


def preact_resnet(depth: int, num_classes: int, in_channels: int, L: Layers) -> PreActNet:
    if (depth - 2) % 9:
        raise ValueError(f"pre-activation bottleneck ResNet depth must be 9n+2; got {depth}")
    n = (depth - 2) // 9
    stages, cin = [], 16
    for i, planes in enumerate((16, 32, 64)):
        stage = []
        for j in range(n):
            stage.append(PreActBottleneck(cin, planes, 2 if i > 0 and j == 0 else 1, L))
            cin = planes * PreActBottleneck.expansion
        stages.append(stage)
    return PreActNet(stages, 16, cin, num_classes, in_channels, L)


def wide_resnet(depth: int, widen: int, num_classes: int, in_channels: int, L: Layers,
                dropout: float = 0.0) -> PreActNet:
    if (depth - 4) % 6:
        raise ValueError(f"Wide ResNet depth must be 6n+4; got {depth}")
    n = (depth - 4) // 6
    stages, cin = [], 16
    for i, width in enumerate((16 * widen, 32 * widen, 64 * widen)):
        stage = []
        for j in range(n):
            stage.append(PreActBasic(cin, width, 2 if i > 0 and j == 0 else 1, L, dropout))
            cin = width
        stages.append(stage)
    return PreActNet(stages, 16, cin, num_classes, in_channels, L)


# ---------------------------------------------------------------------------------------------
# DenseNet-BC
# ---------------------------------------------------------------------------------------------


class DenseLayer(nn.Module):
    def __init__(self, cin: int, growth: int, L: Layers) -> None:
        super().__init__()
        self.bn1, self.act1 = L.bn(cin), L.act(cin)
        self.conv1 = L.conv(cin, 4 * growth, 1)
        self.bn2, self.act2 = L.bn(4 * growth), L.act(4 * growth)
        self.conv2 = _conv3(L, 4 * growth, growth)
        self.k = L.k

    def forward(self, x: Tensor) -> Tensor:
        out = self.conv1(self.act1(self.bn1(x)))
        return cat_channels([x, self.conv2(self.act2(self.bn2(out)))], self.k)


class Transition(nn.Module):
    def __init__(self, cin: int, cout: int, L: Layers) -> None:
        super().__init__()
        self.bn, self.act = L.bn(cin), L.act(cin)
        self.conv = L.conv(cin, cout, 1)

    def forward(self, x: Tensor) -> Tensor:
        return F.avg_pool2d(self.conv(self.act(self.bn(x))), 2)


class DenseNet(nn.Module):
    def __init__(self, depth: int, growth: int, num_classes: int, in_channels: int,
                 L: Layers, compression: float = 0.5) -> None:
        super().__init__()
        if (depth - 4) % 6:
            raise ValueError(f"DenseNet-BC depth must be 6n+4; got {depth}")
        n = (depth - 4) // 6
        c = 2 * growth
        layers: list[nn.Module] = [_conv3(L, in_channels, c)]
        for stage in range(3):
            for _ in range(n):
                layers.append(DenseLayer(c, growth, L))
                c += growth
            if stage < 2:
                cout = int(c * compression)
                layers.append(Transition(c, cout, L))
                c = cout
        self.features = nn.Sequential(*layers)
        self.bn, self.act = L.bn(c), L.act(c)
        self.head = L.linear(c, num_classes)

    def forward(self, x: Tensor) -> Tensor:
        x = self.act(self.bn(self.features(x)))
        return self.head(torch.flatten(F.adaptive_avg_pool2d(x, 1), 1))


# ---------------------------------------------------------------------------------------------
# Quickstart models
# ---------------------------------------------------------------------------------------------


class TinyCNN(nn.Module):
    """Two conv layers (32, 64 channels), BN, global pooling: trains on digits in seconds."""

    def __init__(self, num_classes: int, in_channels: int, L: Layers) -> None:
        super().__init__()
        self.body = nn.Sequential(
            _conv3(L, in_channels, 32), L.bn(32), L.act(32),
            _conv3(L, 32, 64, stride=2), L.bn(64), L.act(64),
        )
        self.head = L.linear(64, num_classes)

    def forward(self, x: Tensor) -> Tensor:
        return self.head(torch.flatten(F.adaptive_avg_pool2d(self.body(x), 1), 1))


class MLP(nn.Module):
    """Two hidden layers of 128 units with BN: the cheapest child there is."""

    def __init__(self, num_classes: int, in_features: int, L: Layers, hidden: int = 128) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Flatten(),
            L.linear(in_features, hidden, bias=False), L.bn1d(hidden), L.act(hidden),
            L.linear(hidden, hidden, bias=False), L.bn1d(hidden), L.act(hidden),
        )
        self.head = L.linear(hidden, num_classes)

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.body(x))


def _init(model: nn.Module) -> nn.Module:
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
        elif isinstance(m, (nn.BatchNorm2d, nn.BatchNorm1d)):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
    return model


def build_network(
    name: str, num_classes: int, image_shape: tuple[int, int, int], L: Layers
) -> nn.Module:
    """The named architecture built from ``L``, with PyTorch's default initialisation."""
    c, h, w = image_shape
    builders: dict[str, Callable[[], nn.Module]] = {
        "resnet20": lambda: CifarResNet(20, num_classes, c, L),
        "resnet32": lambda: CifarResNet(32, num_classes, c, L),
        "resnet56": lambda: CifarResNet(56, num_classes, c, L),
        "preact_resnet164": lambda: preact_resnet(164, num_classes, c, L),
        "wrn_28_10": lambda: wide_resnet(28, 10, num_classes, c, L),
        "densenet100_12": lambda: DenseNet(100, 12, num_classes, c, L),
        "tiny_cnn": lambda: TinyCNN(num_classes, c, L),
        "mlp": lambda: MLP(num_classes, c * h * w, L),
    }
    if name not in builders:
        raise ValueError(f"model must be one of {', '.join(builders)}; got {name!r}")
    return builders[name]()


def build_model(
    name: str, num_classes: int, image_shape: tuple[int, int, int], make_act: MakeAct
) -> nn.Module:
    """The named network for images of ``image_shape`` (C, H, W), every site from ``make_act``."""
    return _init(build_network(name, num_classes, image_shape, SoloLayers(make_act)))
