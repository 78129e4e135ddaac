"""Grad-CAM (Selvaraju et al. 2017) on the last convolution: where the model looks for its decision."""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn


def last_conv(model: nn.Module) -> nn.Conv2d | None:
    convs = [m for m in model.modules() if isinstance(m, nn.Conv2d)]
    return convs[-1] if convs else None


def gradcam(model: nn.Module, x: torch.Tensor, target: torch.Tensor | None = None) -> np.ndarray | None:
    """Heat maps N x H x W in 0..1 for uint8 images ``x``; None for models without convolutions."""
    layer = last_conv(model)
    if layer is None:
        return None
    acts: list[torch.Tensor] = []
    h = layer.register_forward_hook(lambda m, i, o: acts.append(o))
    model.eval()
    try:
        with torch.enable_grad():
            xf = x.float().requires_grad_(True)  # makes the graph reach frozen layers too
            logits = model(xf)
            tgt = logits.argmax(1) if target is None else target
            a = acts[-1]
            grads = torch.autograd.grad(logits.gather(1, tgt.view(-1, 1)).sum(), a)[0]
    finally:
        h.remove()
    cam = F.relu((grads.mean((2, 3), keepdim=True) * a).sum(1, keepdim=True))
    cam = F.interpolate(cam, size=x.shape[-2:], mode="bilinear", align_corners=False)[:, 0]
    cam = cam / cam.flatten(1).amax(1).clamp_min(1e-8).view(-1, 1, 1)
    return cam.detach().numpy()
