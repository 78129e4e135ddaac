"""The NumPy network: backprop against finite differences and against torch autograd, and that it learns."""
from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from visionlab.scratch.network import ScratchNetwork, gradient_check

CASES = [("sigmoid", 2), ("softmax", 2), ("softmax", 4)]


def _net_and_batch(output: str, classes: int, seed: int = 0, n: int = 16, d: int = 20, hidden=(8, 6)):
    """A small float64 network with non-zero biases (so no ReLU sits exactly at its kink) and a batch."""
    rng = np.random.default_rng(seed)
    net = ScratchNetwork(d, hidden, classes, output, seed=seed, dtype=np.float64)
    for k in net.params:
        if k.startswith("b"):
            net.params[k] += rng.normal(0, 0.1, net.params[k].shape)
    x = rng.standard_normal((n, d))
    y = rng.integers(0, classes, n)
    return net, x, y


def _kink_distance(net: ScratchNetwork, x: np.ndarray) -> float:
    a, closest = x, np.inf
    for i in range(1, net.num_layers):
        pre = a @ net.params[f"W{i}"] + net.params[f"b{i}"]
        closest = min(closest, float(np.abs(pre).min()))
        a = np.maximum(pre, 0)
    return closest


@pytest.mark.parametrize("output,classes", CASES)
def test_gradient_check_float64(output, classes):
    net, x, y = _net_and_batch(output, classes)
    assert _kink_distance(net, x) > 1e-4  # 10 x eps: finite differences never step across a ReLU kink
    assert gradient_check(net, x, y) < 1e-6


def test_gradient_check_on_the_default_3072_128_64_network():
    rng = np.random.default_rng(1)
    net = ScratchNetwork(seed=1)  # 3072-128-64-1, float32; the check itself runs in float64
    x, y = rng.random((8, 3072)), rng.integers(0, 2, 8)
    assert gradient_check(net, x, y, max_per_param=25) < 1e-6


def test_gradient_check_catches_a_wrong_backward_pass():
    class Broken(ScratchNetwork):
        def loss_and_gradients(self, x, y):
            loss, g = super().loss_and_gradients(x, y)
            g["W1"][0, 0] *= -1  # one sign error among 160 entries
            return loss, g

    net, x, y = _net_and_batch("softmax", 3)
    broken = Broken(20, (8, 6), 3, params={k: v.copy() for k, v in net.params.items()})
    assert gradient_check(broken, x, y) > 1e-3


def _torch_loss(net: ScratchNetwork, x: np.ndarray, y: np.ndarray):
    params = {k: torch.tensor(v, dtype=torch.float64, requires_grad=True) for k, v in net.params.items()}
    a = torch.tensor(x, dtype=torch.float64)
    for i in range(1, net.num_layers):
        a = torch.relu(a @ params[f"W{i}"] + params[f"b{i}"])
    z = a @ params[f"W{net.num_layers}"] + params[f"b{net.num_layers}"]
    if net.output == "sigmoid":
        loss = F.binary_cross_entropy_with_logits(z[:, 0], torch.tensor(y, dtype=torch.float64))
    else:
        loss = F.cross_entropy(z, torch.tensor(y))
    loss.backward()
    return loss.item(), {k: p.grad.numpy() for k, p in params.items()}, z.detach().numpy()


@pytest.mark.parametrize("output,classes", CASES)
def test_agrees_with_torch_autograd(output, classes):
    net, x, y = _net_and_batch(output, classes, seed=3, n=32)
    loss, grads = net.loss_and_gradients(x, y)
    t_loss, t_grads, t_logits = _torch_loss(net, x, y)
    np.testing.assert_allclose(net.logits(x), t_logits, rtol=0, atol=1e-12)
    assert abs(loss - t_loss) <= 1e-10 * max(1.0, abs(t_loss))
    assert set(grads) == set(t_grads)
    for k in grads:
        scale = max(1.0, float(np.abs(t_grads[k]).max()))
        assert np.abs(grads[k] - t_grads[k]).max() <= 1e-10 * scale, k


def test_stable_for_extreme_logits():
    for output, classes in (("sigmoid", 2), ("softmax", 3)):
        net = ScratchNetwork(4, (3,), classes, output, dtype=np.float64)
        net.params["W2"][:] = 0
        net.params["b2"][:] = 1e4  # saturated outputs: exp would overflow, log(0) would be -inf
        x, y = np.ones((2, 4)), np.array([0, 1])
        loss, grads = net.loss_and_gradients(x, y)
        assert np.isfinite(loss) and all(np.isfinite(g).all() for g in grads.values())
        assert np.isfinite(net.probabilities(x)).all()


@pytest.mark.parametrize("output,classes", [("sigmoid", 2), ("softmax", 3)])
def test_minibatch_steps_reduce_the_loss_on_separable_data(output, classes):
    rng = np.random.default_rng(0)
    centres = rng.normal(0, 3, (classes, 10))
    y = rng.integers(0, classes, 300)
    x = (centres[y] + rng.normal(0, 0.5, (300, 10))).astype(np.float32)
    net = ScratchNetwork(10, (16, 8), classes, output, seed=0)
    assert net.dtype == np.float32
    start = net.loss(x, y)
    for epoch in range(5):
        for i in range(0, 300, 32):
            net.step(x[i:i + 32], y[i:i + 32], lr=0.05)
    assert net.params["W1"].dtype == np.float32  # training stays in float32
    assert net.loss(x, y) < 0.5 * start
    assert (net.predict(x) == y).mean() > 0.95


def test_step_returns_the_loss_before_updating():
    net, x, y = _net_and_batch("softmax", 3)
    before = net.loss(x, y)
    assert net.step(x, y, lr=0.1) == pytest.approx(before)
    assert net.loss(x, y) < before


def test_he_initialisation_scale():
    net = ScratchNetwork(3072, (128, 64), 2, seed=0)
    assert net.sizes == [3072, 128, 64, 1]
    assert net.params["W1"].std() == pytest.approx(np.sqrt(2 / 3072), rel=0.02)
    assert net.params["W2"].std() == pytest.approx(np.sqrt(2 / 128), rel=0.05)
    assert not net.params["b1"].any()
    assert ScratchNetwork(3072, (128, 64), 10).sizes[-1] == 10
