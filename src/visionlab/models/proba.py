"""Softmax probabilities of a visionlab torch model on uint8 images, in batches: what a loaded run, evaluation and
the reports all ask of a model (here, at the models layer, so run folders need not import evaluation)."""
from __future__ import annotations

import numpy as np
import torch


@torch.no_grad()
def predict_proba(model: torch.nn.Module, x: torch.Tensor, batch_size: int = 256,
                  device: torch.device | str = "cpu", tta: bool = False) -> np.ndarray:
    """Softmax probabilities of ``model`` for uint8 images ``x`` (N x 3 x S x S); ``tta``: the mean of each
    image's and its mirror image's (flip test-time augmentation, the flip training's --augment uses)."""
    model.eval()
    model.to(device)

    def proba(xb: torch.Tensor) -> torch.Tensor:
        p = torch.softmax(model(xb).float(), 1)
        return (p + torch.softmax(model(xb.flip(-1)).float(), 1)) / 2 if tta else p

    out = [proba(x[i:i + batch_size].to(device)).cpu() for i in range(0, len(x), batch_size)]
    return torch.cat(out).numpy() if out else np.zeros((0, 0), np.float32)
