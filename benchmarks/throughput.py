"""Training throughput of cnn_baseline on the CIFAR-10 JPEG copy: visionlab's path against the idiomatic one.

Both measured in this one run, same model, batch size, optimizer and number of images:
  idiomatic: torchvision ImageFolder + ToTensor + DataLoader(num_workers=2, shuffle) + fp32 NCHW model
  visionlab: decoded uint8 cache in memory, index-permutation batches, channels_last, bf16 autocast where
             the CPU runs bf16 natively (AMX or AVX512_BF16: `--precision auto`), i.e. exactly what
             `visionlab train` runs; the precision and memory format it used are read from its metrics.json
Also: start-up time of the data layer with a cold and a warm cache.

    python benchmarks/throughput.py [--data ../shared/data/cifar10] [--images 12800] [--batch-size 64]
"""
from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time
from pathlib import Path

import torch
import torch.nn.functional as F


def idiomatic(root: Path, n_images: int, bs: int) -> float:
    from torch.utils.data import DataLoader
    from torchvision import datasets, transforms

    from visionlab.config import RunConfig
    from visionlab.models import build

    torch.manual_seed(0)
    ds = datasets.ImageFolder(str(root / "train"), transform=transforms.ToTensor())
    dl = DataLoader(ds, batch_size=bs, shuffle=True, num_workers=2, persistent_workers=True)
    model = build(RunConfig.build(model="cnn_baseline"), 10, 32)
    model.normalize.scale.fill_(1.0)  # ToTensor already scaled to 0..1
    opt = torch.optim.SGD(model.parameters(), lr=0.01)
    seen, t0 = 0, None
    for i, (x, y) in enumerate(dl):
        if i == 5:  # warm-up: worker start and first allocations stay out of the figure
            t0, seen = time.perf_counter(), 0
        loss = F.cross_entropy(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        seen += len(y)
        if t0 is not None and seen >= n_images:
            break
    return seen / (time.perf_counter() - t0)


def model_step_only(n_images: int, bs: int, channels_last: bool) -> float:
    """The bound for any data path: the same model and optimizer on batches already in memory, no loader at all."""
    from visionlab.config import RunConfig
    from visionlab.models import build

    torch.manual_seed(0)
    model = build(RunConfig.build(model="cnn_baseline"), 10, 32)
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    opt = torch.optim.SGD(model.parameters(), lr=0.01)
    x = torch.randint(0, 256, (bs, 3, 32, 32), dtype=torch.uint8)
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    y = torch.randint(0, 10, (bs,))
    steps, t0 = max(1, n_images // bs), None
    for i in range(steps + 5):
        if i == 5:
            t0 = time.perf_counter()
        loss = F.cross_entropy(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    return steps * bs / (time.perf_counter() - t0)


def through_visionlab(root: Path, n_images: int, bs: int, cache: Path) -> tuple[float, float, float, dict]:
    import visionlab
    from visionlab.config import RunConfig
    from visionlab.data import build as build_data

    cfg = RunConfig.build(data=str(root), model="cnn_baseline", cache_dir=str(cache), quiet=True)
    t = time.perf_counter()
    build_data(cfg, image_size=32)
    cold = time.perf_counter() - t
    t = time.perf_counter()
    build_data(cfg, image_size=32)
    warm = time.perf_counter() - t
    per_class = max(1, n_images // 9)  # 10 classes, 10% go to validation
    res = visionlab.train(data=str(root), model="cnn_baseline", optimizer="minibatch_sgd", lr=0.01, batch_size=bs,
                          epochs=2, limit_per_class=per_class, cache_dir=str(cache), quiet=True,
                          out=tempfile.mkdtemp(prefix="vl-bench-"))
    return res.history[-1]["train_img_per_s"], cold, warm, res.metrics["compute"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default=str(Path(__file__).resolve().parents[1].parent / "shared/data/cifar10"))
    ap.add_argument("--images", type=int, default=12800)
    ap.add_argument("--batch-size", type=int, default=64)
    a = ap.parse_args()
    root = Path(a.data)
    cache = Path(tempfile.mkdtemp(prefix="vl-cache-"))
    from visionlab.training.precision import cpu_summary

    print(f"CPU: {cpu_summary()}")
    try:
        print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, {os.cpu_count()} cores")
        ips_vl, cold, warm, used = through_visionlab(root, a.images, a.batch_size, cache)
        ips_id = idiomatic(root, a.images, a.batch_size)
        ips_bound = model_step_only(a.images, a.batch_size, used["memory_format"] == "channels_last")
    finally:
        shutil.rmtree(cache, ignore_errors=True)
    print(f"{'route':<48}{'precision':>10}{'memory format':>15}{'img/s':>10}")
    print(f"{'idiomatic (ImageFolder+ToTensor+DataLoader x2)':<48}{'fp32':>10}{'contiguous':>15}{ips_id:>10.0f}")
    print(f"{'visionlab':<48}{used['precision']:>10}{used['memory_format']:>15}{ips_vl:>10.0f}")
    print(f"{'model step only (batches in memory, no loader)':<48}{'fp32':>10}{used['memory_format']:>15}"
          f"{ips_bound:>10.0f}")
    print(f"visionlab's precision: {used['reason']}; visionlab reaches {ips_vl / ips_bound:.0%} of the model-only step")
    print(f"ratio visionlab / idiomatic: {ips_vl / ips_id:.2f}x  (target >= 3x)")
    print(f"data start-up, 60,000 images: cold cache {cold:.1f} s, warm cache {warm:.2f} s "
          f"({cold / max(warm, 1e-9):.0f}x)")


if __name__ == "__main__":
    main()
