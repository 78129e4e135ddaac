"""``scratch_mlp``: the NumPy network (visionlab.scratch.network) as a visionlab model.

Training runs the hand-written NumPy step (``manual_step``, which the trainer calls instead of autograd);
the weights live in the module's torch parameters, so saving (``state_dict`` -> safetensors), loading,
evaluation, prediction and export go through the same paths as every other model. ``forward`` is the
network's forward pass re-expressed with torch operations (identical maths, checked in the tests) so it
runs on any device and exports to ONNX.
"""
from __future__ import annotations

import numpy as np
import torch
from torch import nn

from ..config import RunConfig
from ..errors import ConfigError
from ..scratch.network import ScratchNetwork
from .catalog import MODELS
from .contract import Network


class ScratchMLP(Network, nn.Module):
    """ReLU MLP trained by NumPy backprop; sigmoid + binary cross-entropy for 2 classes, else softmax.

    ``forward`` takes *normalised* pixels (it sits after visionlab's ``Normalize`` layer, which divides by
    255) and returns N x C logits. A sigmoid network has one output unit z; it returns [0, z], whose
    softmax is [1 - sigmoid(z), sigmoid(z)], so evaluation code can treat every model as N-class.
    """

    def __init__(self, in_features: int, hidden: list[int], num_classes: int, seed: int = 0) -> None:
        super().__init__()
        init = ScratchNetwork(in_features, hidden, num_classes, seed=seed)
        self.output = init.output
        self.num_classes = num_classes
        self.sizes = init.sizes
        # parameters (not buffers) so parameter counts and reports see them; autograd never touches them
        for k, v in init.params.items():
            self.register_parameter(k, nn.Parameter(torch.from_numpy(v.copy()), requires_grad=False))

    def _numpy_net(self) -> tuple[ScratchNetwork, dict[str, np.ndarray]]:
        """The NumPy network over this module's parameters (views of them when they live on the CPU)."""
        arrays = {k: p.detach().cpu().numpy() for k, p in self.named_parameters()}
        net = ScratchNetwork(self.sizes[0], self.sizes[1:-1], self.num_classes, self.output, params=arrays)
        return net, arrays

    def numpy_network(self) -> ScratchNetwork:
        return self._numpy_net()[0]

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        a = x.reshape(len(x), -1).to(self.W1.dtype)
        for i in range(1, len(self.sizes) - 1):
            a = torch.relu(a @ getattr(self, f"W{i}") + getattr(self, f"b{i}"))
        return a

    def forward_head(self, features: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        if pre_logits:
            return features
        n = len(self.sizes) - 1
        z = features @ getattr(self, f"W{n}") + getattr(self, f"b{n}")
        if self.output == "sigmoid":
            return torch.cat([torch.zeros_like(z), z], dim=1)
        return z

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))

    @torch.no_grad()
    def manual_step(self, x: torch.Tensor, y: torch.Tensor, lr: float) -> float:
        """One NumPy mini-batch gradient-descent step; returns the batch loss before the step.

        ``x`` is the *model's* input: raw 0..255 pixels (uint8 or float), N x 3 x S x S, as the trainer
        passes it. This method divides by 255 itself (the same scaling as the ``Normalize`` layer
        visionlab puts in front of this module), so the trainer needs no knowledge of the wrapper.
        """
        net, arrays = self._numpy_net()
        xb = x.detach().to("cpu", torch.float32).reshape(len(x), -1).numpy() / np.float32(255.0)
        yb = y.detach().cpu().numpy()
        loss = net.step(xb, yb, lr)
        for k, p in self.named_parameters():
            if p.device.type != "cpu":  # CPU parameters were updated in place through the NumPy views
                p.copy_(torch.from_numpy(arrays[k]))
        return loss


@MODELS.register("scratch_mlp", family="scratch", image_size=32, widths=[128, 64], input="scale", training="numpy")
def _scratch_mlp(cfg: RunConfig, num_classes: int, image_size: int) -> nn.Module:
    """The dissertation's network: He initialisation and ReLU always (``--init`` does not apply); options it
    does not implement are refused rather than silently ignored."""
    checks = ((f"--activation {cfg.activation}", cfg.activation != "relu"), ("--batchnorm", cfg.batchnorm),
              (f"--dropout {cfg.dropout}", cfg.dropout > 0))
    unsupported = [flag for flag, bad in checks if bad]
    if unsupported:
        raise ConfigError(f"scratch_mlp is the hand-written ReLU network without batch norm or dropout; "
                          f"drop {', '.join(unsupported)} (or use --model mlp)")
    return ScratchMLP(3 * image_size * image_size, list(cfg.widths or [128, 64]), num_classes, seed=cfg.seed)
