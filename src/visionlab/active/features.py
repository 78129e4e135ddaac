"""Frozen-backbone embeddings of images, computed once per image content and cached on disk.

Active learning retrains after every few labels, so the backbone must not run again over images it has
already seen: features are keyed by the sha256 of the image file and the featurizer's id, and kept in
``<cache>/active/<id>/`` (never beside the data, which may be read-only). The cache only ever gains files
(each chunk written to a temp name and renamed), so a kill loses at most the chunk being computed.

Featurizers (a spec dict, kept in the project's state.json):
- ``{"kind": "backbone", "model": "efficientnet_lite0", "weights": "imagenet", "image_size": 224}``: any
  registered pretrained backbone (family ``backbone``): its ``forward_features``, the pooled frozen body;
- ``{"kind": "run", "path": RUN}``: the body of a trained run folder (its head can seed round 0);
- ``{"kind": "pixels", "image_size": 32}``: a cheap colour/layout descriptor, the fallback when no backbone
  weights are available (and what the tests use, for speed).
"""
from __future__ import annotations

import hashlib
import json
import uuid
from pathlib import Path
from typing import Callable, Optional, Sequence

import numpy as np
import torch

from ..errors import DataError, ModelError, VisionlabError
from ..io import atomic_write_bytes
from ..io import cache_root as io_cache_root
from .store import read_regular, sha256_bytes, sha256_file

DEFAULT_BACKBONE = "efficientnet_lite0"


def cache_root(cache_dir: Optional[str | Path] = None) -> Path:
    return io_cache_root(cache_dir) / "active"


# --- decoding -------------------------------------------------------------------------------------------
def _pil_decode(path: str | Path, size: int) -> torch.Tensor:
    from PIL import Image, ImageOps

    import io

    try:
        with Image.open(io.BytesIO(path) if isinstance(path, (bytes, bytearray)) else path) as im:
            im = ImageOps.exif_transpose(im)
            if im.mode in ("RGBA", "LA", "P"):
                im = im.convert("RGBA")
                bg = Image.new("RGBA", im.size, (255, 255, 255, 255))
                im = Image.alpha_composite(bg, im)
            im = im.convert("RGB").resize((size, size), Image.BILINEAR)
            arr = np.asarray(im, dtype=np.uint8)
    except Exception as e:  # PIL raises many types for a bad file
        raise DataError(f"cannot read image {path}: {e}") from None
    return torch.from_numpy(arr.copy()).permute(2, 0, 1).contiguous()


def decoder() -> tuple[str, Callable[[str | Path, int], torch.Tensor]]:
    """visionlab.data's decoder (the one training uses) when the data layer provides it, else PIL's."""
    try:
        from ..data import decode_image
        return "data", decode_image
    except Exception:  # the data layer is optional here; a PIL decode gives the same kind of tensor
        return "pil", _pil_decode


# --- featurizers ----------------------------------------------------------------------------------------
class Featurizer:
    """Turns uint8 images (N x 3 x S x S) into N x D float32 embeddings."""

    def __init__(self, spec: dict, image_size: int, embed: Callable[[torch.Tensor], torch.Tensor],
                 feature_dim: int, ident: str, head_state: Optional[dict] = None,
                 classes: Optional[list[str]] = None) -> None:
        self.spec, self.image_size, self._embed, self.feature_dim = spec, image_size, embed, feature_dim
        self.id = ident
        self.head_state = head_state  # a trained head (run featurizers), to warm-start round 0
        self.classes = classes

    @torch.no_grad()
    def __call__(self, x: torch.Tensor, batch_size: int = 32) -> np.ndarray:
        out = [self._embed(x[i:i + batch_size]).float().cpu() for i in range(0, len(x), batch_size)]
        return torch.cat(out).numpy() if out else np.zeros((0, self.feature_dim), np.float32)


def _spec_id(spec: dict, extra: str = "") -> str:
    dec, _ = decoder()
    blob = json.dumps(spec, sort_keys=True) + "|" + extra + "|" + dec + "|v1"
    name = spec.get("model") or spec["kind"]
    return f"{name}-{hashlib.sha256(blob.encode()).hexdigest()[:12]}"


def _pixels(spec: dict) -> Featurizer:
    s = int(spec.get("image_size", 32))

    def embed(x: torch.Tensor) -> torch.Tensor:
        xf = x.float() / 255.0
        grid = torch.nn.functional.adaptive_avg_pool2d(xf, 4).flatten(1)  # coarse layout, 48
        mean, std = xf.mean((2, 3)), xf.std((2, 3))  # colour statistics, 6
        hist = torch.stack([torch.histc(c, 8, 0, 1) for c in xf.flatten(2).reshape(-1, xf.shape[2] * xf.shape[3])])
        hist = hist.reshape(len(x), -1) / (xf.shape[2] * xf.shape[3])  # 3 x 8 colour histogram, 24
        return torch.cat([grid, mean, std, hist], 1)

    return Featurizer(spec, s, embed, 78, _spec_id(spec))


def _backbone(spec: dict) -> Featurizer:
    from ..config import RunConfig
    from ..models import build, default_image_size

    size = int(spec.get("image_size") or default_image_size(spec["model"]) or 224)
    cfg = RunConfig.build(model=spec["model"], weights=spec.get("weights", "imagenet"), mode="frozen")
    if not _is_backbone(spec["model"]):
        raise ModelError(f"model {spec['model']!r} has no frozen-backbone features; active learning needs a "
                         f"backbone such as {DEFAULT_BACKBONE} (see `visionlab models`)")
    model = build(cfg, 2, size).eval()
    extra = spec.get("weights", "imagenet")
    if extra not in ("imagenet", "none"):
        extra = sha256_file(extra)
    return Featurizer(dict(spec, image_size=size), size, lambda x: model.net.forward_features(model.normalize(x)),
                      model.net.feature_dim, _spec_id(dict(spec, image_size=size), extra))


def _is_backbone(name: str) -> bool:
    """A registered pretrained backbone (models.backbones.Backbone: pooled features of ``feature_dim``)."""
    from ..models import MODELS, model_names

    return name in model_names() and MODELS.meta(name).get("family") == "backbone"


def _run(spec: dict) -> Featurizer:
    from ..runs import RunFolder, load_run

    run = load_run(spec["path"])
    from ..models import Classifier as TorchModel

    model = run.model.eval()
    # a Keras run has no torch network at all; a torch run is Normalize + net (models.Classifier)
    if not isinstance(model, TorchModel) or not _is_backbone(run.config.model):
        raise ModelError(f"run {spec['path']} is a {run.config.model!r} model without a frozen backbone "
                         f"(features/head); active learning needs a backbone run, e.g. `visionlab train "
                         f"--model {DEFAULT_BACKBONE} --mode frozen`, or omit --model")
    net = model.net
    weights = sha256_file(RunFolder(spec["path"]).weights)
    head = {k: v.detach().clone() for k, v in net.head.state_dict().items()}
    return Featurizer(dict(spec, image_size=run.image_size), run.image_size,
                      lambda x: net.forward_features(model.normalize(x)), net.feature_dim, _spec_id(spec, weights),
                      head, run.classes)


def load_featurizer(spec: dict) -> Featurizer:
    kind = spec.get("kind")
    if kind == "pixels":
        return _pixels(spec)
    if kind == "backbone":
        return _backbone(spec)
    if kind == "run":
        return _run(spec)
    raise ModelError(f"unknown featurizer kind {kind!r} in the project state (backbone, run or pixels)")


def default_spec() -> tuple[dict, Optional[str]]:
    """The ImageNet EfficientNet-Lite0 body when its weights are available offline, else the pixel fallback
    (with the reason, to tell the user)."""
    spec = {"kind": "backbone", "model": DEFAULT_BACKBONE, "weights": "imagenet"}
    try:
        load_featurizer(spec)
        return spec, None
    except (VisionlabError, ImportError, KeyError) as e:
        return {"kind": "pixels", "image_size": 32}, f"{DEFAULT_BACKBONE} unavailable ({e}); using pixel features"


# --- the cache ------------------------------------------------------------------------------------------
class FeatureCache:
    """sha256 -> embedding for one featurizer, as append-only chunk files under the cache dir."""

    def __init__(self, featurizer: Featurizer, cache_dir: Optional[str | Path] = None) -> None:
        self.f = featurizer
        self.dir = cache_root(cache_dir) / featurizer.id
        self._mem: dict[str, np.ndarray] = {}
        self._loaded: set[str] = set()
        self._warned = False  # one warning per cache when it cannot be written

    def _load(self) -> None:
        if not self.dir.is_dir():
            return
        for p in sorted(self.dir.glob("chunk-*.npz")):
            if p.name in self._loaded:
                continue
            try:
                with np.load(p) as z:
                    for h, v in zip(z["hashes"], z["feats"]):
                        self._mem[str(h)] = v
            except Exception:  # a foreign or damaged chunk: recompute its images instead
                continue
            self._loaded.add(p.name)

    def _save(self, hashes: list[str], feats: np.ndarray) -> None:
        """Append a chunk; a full or read-only cache folder costs the speed-up next time, not this command."""
        import io

        name = f"chunk-{uuid.uuid4().hex}.npz"
        buf = io.BytesIO()
        np.savez(buf, hashes=np.asarray(hashes), feats=feats.astype(np.float32))
        try:
            atomic_write_bytes(self.dir / name, buf.getvalue())
        except OSError as e:  # WriteError: a full disk or a read-only folder, one line
            if not self._warned:
                self._warned = True
                import sys
                print(f"warning: the feature cache {self.dir} cannot be written ({e.strerror or e}); features "
                      f"will be computed again next time", file=sys.stderr)
            return
        self._loaded.add(name)

    def get(self, paths: Sequence[str | Path], hashes: Optional[Sequence[str]] = None, chunk: int = 256,
            progress: Optional[Callable[[int, int], None]] = None) -> tuple[np.ndarray, list[tuple[str, str]]]:
        """Embeddings of ``paths`` (rows in the same order) and the unreadable ones as (path, reason).
        Unreadable images get a row of NaN, so callers can drop them with ``~np.isnan(x).any(1)``."""
        self._load()
        hashes = list(hashes) if hashes is not None else [sha256_file(p) for p in paths]
        _, decode = decoder()
        first: dict[str, int] = {}  # one decode per distinct content
        for i, h in enumerate(hashes):
            if h not in self._mem:
                first.setdefault(h, i)
        todo = sorted(first.values())
        bad: list[tuple[str, str]] = []
        for start in range(0, len(todo), chunk):
            part = todo[start:start + chunk]
            imgs, ok = [], []
            for i in part:
                try:  # the bytes decoded are the bytes hashed: a file changed since it was hashed is refused
                    data = read_regular(paths[i])
                    if sha256_bytes(data) != hashes[i]:
                        raise DataError(f"{paths[i]}: changed since it was hashed; run the command again")
                    imgs.append(decode(data, self.f.image_size))
                    ok.append(i)
                except DataError as e:
                    bad.append((str(paths[i]), str(e)))
            if ok:
                feats = self.f(torch.stack(imgs))
                self._save([hashes[i] for i in ok], feats)
                for i, v in zip(ok, feats):
                    self._mem[hashes[i]] = v
            if progress:
                progress(min(start + chunk, len(todo)), len(todo))
        out = np.full((len(paths), self.f.feature_dim), np.nan, np.float32)
        for i, h in enumerate(hashes):
            if h in self._mem:
                out[i] = self._mem[h]
        return out, bad
