"""Batches drawn and augmented on the device holding the data: batched tensor ops, no PIL.

A batch is a pure function of (seed, step): the epoch's permutation comes from a generator seeded
with (seed, epoch), and the crop offsets and flips from one seeded with (seed, step). A run
resumed from a checkpoint at step k therefore sees exactly the batches an unbroken run would.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from orchestrator.trainer.data import ImageSet

_MIX = 1_000_003  # spreads (seed, counter) pairs over distinct generator seeds


def normalize(images: Tensor, mean: Tensor, std: Tensor, channels_last: bool) -> Tensor:
    """uint8 (N, C, H, W) -> float32 standardised per channel."""
    x = images.float().div_(255).sub_(mean.view(1, -1, 1, 1)).div_(std.view(1, -1, 1, 1))
    return x.contiguous(memory_format=torch.channels_last) if channels_last else x


def random_crop(x: Tensor, padding: int, g: torch.Generator) -> Tensor:
    """Zero-pad by ``padding`` and crop back to size at a random offset per image (one gather)."""
    if padding == 0:
        return x
    n, c, h, w = x.shape
    padded = F.pad(x, (padding,) * 4)
    dy = torch.randint(0, 2 * padding + 1, (n, 1), device=x.device, generator=g)
    dx = torch.randint(0, 2 * padding + 1, (n, 1), device=x.device, generator=g)
    rows = (dy + torch.arange(h, device=x.device)).view(n, 1, h, 1)
    cols = (dx + torch.arange(w, device=x.device)).view(n, 1, 1, w)
    batch = torch.arange(n, device=x.device).view(n, 1, 1, 1)
    chans = torch.arange(c, device=x.device).view(1, c, 1, 1)
    return padded[batch, chans, rows, cols]


def random_flip(x: Tensor, g: torch.Generator) -> Tensor:
    flip = torch.rand(x.shape[0], device=x.device, generator=g) < 0.5
    return torch.where(flip.view(-1, 1, 1, 1), x.flip(3), x)


class Batches:
    """Training batches of ``size`` from ``data`` (already on its device), augmented."""

    def __init__(self, data: ImageSet, size: int, seed: int, crop_padding: int, flip: bool) -> None:
        if size > len(data):
            raise ValueError(f"batch_size {size} exceeds the {len(data)} training images")
        self.data, self.size, self.seed = data, size, seed
        self.crop_padding, self.flip = crop_padding, flip
        self.per_epoch = len(data) // size  # the last partial batch of an epoch is dropped
        self.device = data.images.device
        self._epoch, self._order = -1, torch.empty(0)

    def _generator(self, counter: int) -> torch.Generator:
        return torch.Generator(device=self.device).manual_seed(self.seed * _MIX + counter)

    def __call__(self, step: int) -> tuple[Tensor, Tensor]:
        """(uint8 images, labels) of the 0-based ``step``."""
        epoch, i = divmod(step, self.per_epoch)
        if epoch != self._epoch:
            g = self._generator(-1 - epoch)
            self._order = torch.randperm(len(self.data), device=self.device, generator=g)
            self._epoch = epoch
        idx = self._order[i * self.size : (i + 1) * self.size]
        images, labels = self.data.images[idx], self.data.labels[idx]
        g = self._generator(step)
        images = random_crop(images, self.crop_padding, g)
        if self.flip:
            images = random_flip(images, g)
        return images, labels
