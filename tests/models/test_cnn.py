"""The layer-string CNN pools before a monotonic activation: same numbers as conv-act-pool, fewer values touched."""
from __future__ import annotations

import copy

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from visionlab.models.cnn import CNN


def _reference(net: CNN) -> nn.Sequential:
    """The same modules in the written order: conv, [bn,] activation, pool."""
    mods, out = list(net.features), []
    i = 0
    while i < len(mods):
        if isinstance(mods[i], nn.MaxPool2d) and i + 1 < len(mods) and not isinstance(mods[i + 1], nn.Conv2d):
            out += [mods[i + 1], mods[i]]
            i += 2
        else:
            out.append(mods[i])
            i += 1
    return nn.Sequential(*out)


@pytest.mark.parametrize("act,batchnorm", [("relu", False), ("elu", True), ("tanh", False), ("leaky_relu", False)])
def test_pool_first_is_bit_identical_to_conv_act_pool(act, batchnorm):
    torch.manual_seed(0)
    net = CNN("conv32-pool-conv64-pool-fc128-fc64", 10, 32, act=act, batchnorm=batchnorm)
    act_name = type(net.features[-1]).__name__
    unit = ["Conv2d"] + (["BatchNorm2d"] if batchnorm else [])
    assert [type(m).__name__ for m in net.features] == (unit + ["MaxPool2d", act_name]) * 2  # pooled first
    ref = copy.deepcopy(net)
    ref.features = _reference(ref)
    assert [type(m).__name__ for m in ref.features] == (unit + [act_name, "MaxPool2d"]) * 2
    assert list(net.state_dict()) == list(ref.state_dict())  # checkpoints load either way
    opt_a, opt_b = torch.optim.SGD(net.parameters(), lr=0.05), torch.optim.SGD(ref.parameters(), lr=0.05)
    g = torch.Generator().manual_seed(1)
    for _ in range(5):
        x, y = torch.randn(16, 3, 32, 32, generator=g), torch.randint(0, 10, (16,), generator=g)
        for m, opt in ((net, opt_a), (ref, opt_b)):
            opt.zero_grad()
            F.cross_entropy(m(x), y).backward()
            opt.step()
    for (k, a), b in zip(net.state_dict().items(), ref.state_dict().values()):
        assert torch.equal(a, b), k


def test_gelu_is_not_reordered():
    """GELU is not monotonic (it dips below zero near -0.75): pooling first would change the outputs."""
    net = CNN("conv8-pool-fc16", 3, 16, act="gelu")
    assert [type(m).__name__ for m in net.features] == ["Conv2d", "GELU", "MaxPool2d"]
    x = torch.full((1, 1, 2, 2), -0.75)
    x[0, 0, 0, 0] = -3.0
    assert not torch.equal(F.max_pool2d(F.gelu(x), 2), F.gelu(F.max_pool2d(x, 2)))
