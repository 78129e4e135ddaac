"""Softmax probabilities of a visionlab torch model on uint8 images, in batches: what a loaded run, evaluation and
the reports all ask of a model (here, at the models layer, so run folders need not import evaluation)."""
from __future__ import annotations

import numpy as np
import torch


@torch.no_grad()
def predict_proba(model: torch.nn.Module, x: torch.Tensor, batch_size: int = 256,
                  device: torch.device | str = "cpu") -> np.ndarray:
    """Softmax probabilities of ``model`` for uint8 images ``x`` (N x 3 x S x S)."""
    model.eval()
    model.to(device)
    out = [torch.softmax(model(x[i:i + batch_size].to(device)).float(), 1).cpu()
           for i in range(0, len(x), batch_size)]
    return torch.cat(out).numpy() if out else np.zeros((0, 0), np.float32)
