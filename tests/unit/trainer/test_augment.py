"""Device-side augmentation: the batched crop equals a per-image crop; batches depend on (seed, step)."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from orchestrator.trainer.augment import Batches, random_crop, random_flip
from orchestrator.trainer.data import ImageSet


def test_the_batched_crop_equals_cropping_each_padded_image_at_its_offset() -> None:
    x = torch.arange(5 * 2 * 6 * 6, dtype=torch.float32).view(5, 2, 6, 6)
    out = random_crop(x, 2, torch.Generator().manual_seed(3))
    g = torch.Generator().manual_seed(3)
    dy = torch.randint(0, 5, (5, 1), generator=g)
    dx = torch.randint(0, 5, (5, 1), generator=g)
    padded = F.pad(x, (2, 2, 2, 2))
    for i in range(5):
        y0, x0 = int(dy[i]), int(dx[i])
        assert torch.equal(out[i], padded[i, :, y0 : y0 + 6, x0 : x0 + 6])
    assert not torch.equal(out, x)  # some offset differed from the centre


def test_flip_mirrors_some_images_and_keeps_the_rest() -> None:
    x = torch.randn(64, 1, 4, 4)
    out = random_flip(x, torch.Generator().manual_seed(0))
    flipped = [torch.equal(o, xi.flip(2)) for o, xi in zip(out, x, strict=True)]
    kept = [torch.equal(o, xi) for o, xi in zip(out, x, strict=True)]
    assert all(f or k for f, k in zip(flipped, kept, strict=True))
    assert 10 < sum(flipped) < 54


def _data(n: int = 50) -> ImageSet:
    return ImageSet(torch.randint(0, 256, (n, 3, 8, 8), dtype=torch.uint8), torch.arange(n) % 10)


def test_a_batch_is_a_function_of_seed_and_step() -> None:
    data = _data()
    a, b = Batches(data, 16, 7, 2, True), Batches(data, 16, 7, 2, True)
    for step in (0, 1, 5, 2):  # out of order, across epochs (3 batches per epoch)
        xa, ya = a(step)
        xb, yb = b(step)
        assert torch.equal(xa, xb) and torch.equal(ya, yb)
    assert not torch.equal(a(0)[0], Batches(data, 16, 8, 2, True)(0)[0])


def test_an_epoch_visits_distinct_images() -> None:
    data = ImageSet(torch.zeros(48, 1, 2, 2, dtype=torch.uint8), torch.arange(48))
    batches = Batches(data, 16, 0, 0, False)
    labels = torch.cat([batches(s)[1] for s in range(3)])
    assert sorted(labels.tolist()) == list(range(48))
