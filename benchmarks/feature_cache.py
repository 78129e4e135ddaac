"""Frozen-backbone epoch time with and without the feature cache, measured side by side in one run.

With the cache (default), the backbone runs once over the data before the first epoch and every epoch trains
only the head on stored features; without it (`--no-feature-cache`), every epoch runs the frozen backbone.

    python benchmarks/feature_cache.py [--data ../shared/data/facemask] [--per-class 300] [--epochs 3]
"""
from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import visionlab


def run(data: str, per_class: int, epochs: int, cache: bool, cache_dir: str) -> tuple[float, float]:
    r = visionlab.train(data=data, model="efficientnet_lite0", mode="frozen", optimizer="adam", lr=1e-3,
                        batch_size=32, epochs=epochs, limit_per_class=per_class, feature_cache=cache,
                        cache_dir=cache_dir, quiet=True, out=tempfile.mkdtemp(prefix="vl-fc-"))
    epoch = sorted(h["seconds"] for h in r.history)[len(r.history) // 2]  # median epoch
    return epoch, r.metrics["setup_seconds"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default=str(Path(__file__).resolve().parents[1].parent / "shared/data/facemask"))
    ap.add_argument("--per-class", type=int, default=300)
    ap.add_argument("--epochs", type=int, default=3)
    a = ap.parse_args()
    cache_dir = tempfile.mkdtemp(prefix="vl-cache-")
    with_epoch, with_setup = run(a.data, a.per_class, a.epochs, True, cache_dir)
    without_epoch, _ = run(a.data, a.per_class, a.epochs, False, cache_dir)
    print(f"efficientnet_lite0 frozen, {2 * a.per_class} training images, median of {a.epochs} epochs")
    print(f"{'':<28}{'epoch s':>10}")
    print(f"{'without feature cache':<28}{without_epoch:>10.2f}")
    print(f"{'with feature cache':<28}{with_epoch:>10.2f}   (+ {with_setup:.1f} s once, computing the features)")
    print(f"ratio: {without_epoch / with_epoch:.1f}x faster per epoch with the cache (target >= 5x)")


if __name__ == "__main__":
    main()
