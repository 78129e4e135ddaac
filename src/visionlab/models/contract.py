"""The contract between a network and the code that trains, caches and explains it (timm's method names).

Every network a registered builder returns (the module after ``Normalize``) is a ``Network``:

* ``forward_features(x)``: normalised pixels in, what the head consumes out (the conv map of a CNN, the
  hidden activations of an MLP, the pooled vector of a pretrained backbone);
* ``forward_head(f, pre_logits=False)``: logits from ``forward_features``' output; with ``pre_logits=True``
  the vector just before the last linear layer;
* ``forward(x) == forward_head(forward_features(x))`` (except test-time augmentation, see fast.py);
* ``param_groups(lr)``: optimizer groups of the parameters that train (one group at ``lr`` by default;
  backbones give their body a smaller rate when fine-tuning);
* ``frozen``: True when nothing before the head trains, so the trainer may compute ``forward_features`` once
  over the data and train ``head`` alone on the cached vectors (then ``head`` must be the module that
  ``forward_head`` applies).

How a model trains (autograd, hand-written NumPy steps, Keras' ``fit``) is the registry's ``training`` field,
read once by the API (``models.training_kind``), never probed on the module.
"""
from __future__ import annotations

import torch
from torch import nn


class Network:
    """Mixin with the defaults of the contract; a network defines ``forward_features`` and ``forward_head``."""

    frozen: bool = False

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:  # pragma: no cover - every network overrides
        raise NotImplementedError

    def forward_head(self, features: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:  # pragma: no cover
        raise NotImplementedError

    def param_groups(self, lr: float) -> list[dict]:
        assert isinstance(self, nn.Module)
        return [{"params": [p for p in self.parameters() if p.requires_grad], "lr": lr}]
