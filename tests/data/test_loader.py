"""batches(): order and augmentation fixed by (seed, epoch), global RNG untouched, crops equal pad-and-crop."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from visionlab.data.loader import augment_batch, batches
from visionlab.data.types import Split


def _split(n: int = 50, size: int = 8) -> Split:
    x = torch.arange(n * 3 * size * size, dtype=torch.int64).reshape(n, 3, size, size).remainder(256).to(torch.uint8)
    x[:, 0, 0, 0] = torch.arange(n, dtype=torch.uint8)  # image id in a pixel, to follow images through batches
    return Split(x, torch.arange(n) % 3)


def _order(split: Split, **kw) -> list[int]:
    return [i for _, yb in batches(split, 7, **kw) for i in yb.tolist()]


def test_every_image_once_and_labels_follow_images():
    s = _split()
    seen = []
    for xb, yb in batches(s, 7, shuffle=True, seed=0, epoch=0):
        assert xb.dtype == torch.uint8 and yb.dtype == torch.int64 and len(xb) == len(yb) <= 7
        ids = xb[:, 0, 0, 0].long()
        assert torch.equal(yb, ids % 3)
        seen += ids.tolist()
    assert sorted(seen) == list(range(50)) and seen != list(range(50))


def test_order_depends_only_on_seed_and_epoch():
    s = _split()
    a = _order(s, shuffle=True, seed=1, epoch=3)
    torch.manual_seed(123)  # the global RNG has no say
    assert _order(s, shuffle=True, seed=1, epoch=3) == a
    assert _order(s, shuffle=True, seed=1, epoch=4) != a
    assert _order(s, shuffle=True, seed=2, epoch=3) != a
    assert _order(s, shuffle=False) == [i % 3 for i in range(50)]


def test_global_rng_is_not_consumed():
    torch.manual_seed(0)
    expected = torch.rand(3)
    torch.manual_seed(0)
    for _ in batches(_split(), 8, shuffle=True, seed=0, epoch=0, augment=True):
        pass
    assert torch.equal(torch.rand(3), expected)


def test_drop_last_and_sizes():
    s = _split(50)
    assert [len(y) for _, y in batches(s, 16, shuffle=False)] == [16, 16, 16, 2]
    assert [len(y) for _, y in batches(s, 16, shuffle=True, drop_last=True)] == [16, 16, 16]
    with pytest.raises(ValueError):
        next(batches(s, 0))


def test_augment_equals_reflect_pad_then_crop_and_flip():
    x = torch.randint(0, 256, (16, 3, 32, 32), dtype=torch.uint8)
    out = augment_batch(x, torch.Generator().manual_seed(5))
    assert out.dtype == torch.uint8 and out.shape == x.shape
    g = torch.Generator().manual_seed(5)  # the same draws, replayed
    dy = torch.randint(0, 9, (16,), generator=g)  # crop offsets into the padded image
    dx = torch.randint(0, 9, (16,), generator=g)
    flip = torch.rand(16, generator=g) < 0.5
    padded = F.pad(x.float(), (4, 4, 4, 4), mode="reflect")
    for i in range(16):
        ref = padded[i, :, dy[i]:dy[i] + 32, dx[i]:dx[i] + 32]
        if flip[i]:
            ref = ref.flip(-1)
        assert torch.equal(out[i].float(), ref), i
    assert 0 < int(flip.sum()) < 16 and not torch.equal(out, x)
    odd = torch.randint(0, 256, (4, 3, 24, 20), dtype=torch.uint8)  # non-square, padding 24 // 8 = 3
    assert augment_batch(odd, torch.Generator().manual_seed(0)).shape == odd.shape
    with pytest.raises(ValueError, match="padding"):
        augment_batch(odd, torch.Generator(), pad=20)


def test_augment_in_batches_is_seeded_and_keeps_labels():
    s = _split(40, 16)
    a = [xb for xb, _ in batches(s, 10, shuffle=True, seed=0, epoch=1, augment=True)]
    b = [xb for xb, _ in batches(s, 10, shuffle=True, seed=0, epoch=1, augment=True)]
    c = [xb for xb, _ in batches(s, 10, shuffle=True, seed=0, epoch=2, augment=True)]
    assert all(torch.equal(p, q) for p, q in zip(a, b))
    assert not all(torch.equal(p, q) for p, q in zip(a, c))
    plain = [xb for xb, _ in batches(s, 10, shuffle=True, seed=0, epoch=1)]
    assert not all(torch.equal(p, q) for p, q in zip(a, plain))


def test_device_argument_moves_batches():
    dev = "cuda" if torch.cuda.is_available() else "cpu"
    xb, yb = next(batches(_split(), 8, seed=0, device=dev, augment=True))
    assert xb.device.type == dev and yb.device.type == dev


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_gpu_resident_split_gives_the_cpu_batches():
    s = _split(64, 32)
    on_gpu = Split(s.x.cuda(), s.y.cuda())
    for (xc, yc), (xg, yg) in zip(batches(s, 16, seed=3, epoch=2, augment=True),
                                  batches(on_gpu, 16, seed=3, epoch=2, augment=True)):
        assert xg.is_cuda and torch.equal(xc, xg.cpu()) and torch.equal(yc, yg.cpu())
