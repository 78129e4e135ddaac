"""A fully connected network in NumPy alone: forward, backward and the gradient step written by hand.

This is the dissertation's from-scratch network: flattened pixels in, ReLU hidden layers (128-64 by default,
He-initialised), and either one sigmoid unit with binary cross-entropy or a softmax with categorical
cross-entropy. There is no autograd anywhere; ``gradient_check`` compares the hand-written backward pass
with central finite differences, and the tests compare it with torch autograd on the same weights.

Conventions: ``x`` is N x D (already scaled, e.g. pixels / 255), weights are ``W{i}`` of shape
fan_in x fan_out and biases ``b{i}`` of shape fan_out, so a layer is ``x @ W + b``. Binary targets are
0/1, categorical targets are class indices. Losses are means over the batch.

Numerical stability: the loss is computed from the logits, never from probabilities, as
``logsumexp(z) - z[y]`` (softmax) and ``max(z, 0) - y z + log1p(exp(-|z|))`` (sigmoid). Both are exact and
finite for any logit, so no clipping of probabilities inside ``log`` is needed; ``probabilities`` uses the
same shifted forms so ``exp`` never overflows.
"""
from __future__ import annotations

from typing import Literal, Optional, Sequence

import numpy as np

Output = Literal["sigmoid", "softmax"]
Params = dict[str, np.ndarray]


def he_init(sizes: Sequence[int], rng: np.random.Generator, dtype=np.float32) -> Params:
    """He (Kaiming) normal initialisation: W ~ N(0, 2 / fan_in), biases zero."""
    params: Params = {}
    for i, (fan_in, fan_out) in enumerate(zip(sizes[:-1], sizes[1:]), start=1):
        params[f"W{i}"] = (rng.standard_normal((fan_in, fan_out)) * np.sqrt(2.0 / fan_in)).astype(dtype)
        params[f"b{i}"] = np.zeros(fan_out, dtype=dtype)
    return params


def _log_softmax(z: np.ndarray) -> np.ndarray:
    shifted = z - z.max(axis=1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))


def _sigmoid(z: np.ndarray) -> np.ndarray:
    # exp of a non-positive number only: no overflow for large |z|
    e = np.exp(-np.abs(z))
    return np.where(z >= 0, 1.0 / (1.0 + e), e / (1.0 + e)).astype(z.dtype, copy=False)


class ScratchNetwork:
    """ReLU MLP with a sigmoid (1 unit, binary) or softmax (``num_classes`` units) output.

    ``params`` is a plain dict of NumPy arrays; it may hold views into other storage (the torch adapter
    passes views of its parameters), since ``step`` updates the arrays in place.
    """

    def __init__(self, in_features: int = 3 * 32 * 32, hidden: Sequence[int] = (128, 64), num_classes: int = 2,
                 output: Optional[Output] = None, seed: int = 0, dtype=np.float32,
                 params: Optional[Params] = None) -> None:
        if output is None:
            output = "sigmoid" if num_classes == 2 else "softmax"
        if output not in ("sigmoid", "softmax"):
            raise ValueError(f"output must be 'sigmoid' or 'softmax', not {output!r}")
        if output == "sigmoid" and num_classes != 2:
            raise ValueError(f"a sigmoid output is for 2 classes, not {num_classes}; use output='softmax'")
        self.output: Output = output
        self.num_classes = num_classes
        self.out_units = 1 if output == "sigmoid" else num_classes
        self.sizes = [int(in_features), *map(int, hidden), self.out_units]
        self.params: Params = params if params is not None else he_init(self.sizes, np.random.default_rng(seed), dtype)

    @property
    def num_layers(self) -> int:
        return len(self.sizes) - 1

    @property
    def dtype(self) -> np.dtype:
        return self.params["W1"].dtype

    def astype(self, dtype) -> "ScratchNetwork":
        """A copy of this network with parameters in ``dtype`` (float64 for checks)."""
        return type(self)(self.sizes[0], self.sizes[1:-1], self.num_classes, self.output,
                              params={k: v.astype(dtype, copy=True) for k, v in self.params.items()})

    # ---- forward --------------------------------------------------------------------------------------------
    def _forward(self, x: np.ndarray) -> tuple[np.ndarray, list[np.ndarray]]:
        """Logits and the activations each layer received (inputs of layer 1..L), kept for backward."""
        a = np.asarray(x, dtype=self.dtype).reshape(len(x), -1)
        inputs = [a]
        for i in range(1, self.num_layers):
            a = np.maximum(a @ self.params[f"W{i}"] + self.params[f"b{i}"], 0)
            inputs.append(a)
        z = a @ self.params[f"W{self.num_layers}"] + self.params[f"b{self.num_layers}"]
        return z, inputs

    def logits(self, x: np.ndarray) -> np.ndarray:
        """N x 1 (sigmoid) or N x C (softmax) pre-activation outputs."""
        return self._forward(x)[0]

    def probabilities(self, x: np.ndarray) -> np.ndarray:
        """N x C class probabilities (for a sigmoid output: [1 - p, p])."""
        z = self.logits(x)
        if self.output == "sigmoid":
            p = _sigmoid(z[:, 0])
            return np.stack([1 - p, p], axis=1)
        return np.exp(_log_softmax(z))

    def predict(self, x: np.ndarray) -> np.ndarray:
        return self.probabilities(x).argmax(axis=1)

    # ---- loss and backward ----------------------------------------------------------------------------------
    def _loss_and_dz(self, z: np.ndarray, y: np.ndarray) -> tuple[float, np.ndarray]:
        """Mean cross-entropy from logits and its gradient with respect to the logits."""
        n = len(z)
        y = np.asarray(y)
        if self.output == "sigmoid":
            t = y.astype(z.dtype).reshape(n, 1)
            losses = np.maximum(z, 0) - z * t + np.log1p(np.exp(-np.abs(z)))
            return float(losses.mean()), (_sigmoid(z) - t) / n
        logp = _log_softmax(z)
        idx = y.astype(np.int64)
        loss = -logp[np.arange(n), idx].mean()
        dz = np.exp(logp)
        dz[np.arange(n), idx] -= 1
        return float(loss), dz / n

    def loss(self, x: np.ndarray, y: np.ndarray) -> float:
        return self._loss_and_dz(self.logits(x), y)[0]

    def loss_and_gradients(self, x: np.ndarray, y: np.ndarray) -> tuple[float, Params]:
        """Mean loss and d loss / d param for every parameter, by backpropagation written out by hand."""
        z, inputs = self._forward(x)
        loss, delta = self._loss_and_dz(z, y)
        grads: Params = {}
        for i in range(self.num_layers, 0, -1):
            a_in = inputs[i - 1]
            grads[f"W{i}"] = a_in.T @ delta
            grads[f"b{i}"] = delta.sum(axis=0)
            if i > 1:
                # back through W_i, then through the ReLU that produced a_in (its derivative is 1 where a_in > 0)
                delta = (delta @ self.params[f"W{i}"].T) * (a_in > 0)
        return loss, grads

    def step(self, x: np.ndarray, y: np.ndarray, lr: float) -> float:
        """One mini-batch gradient-descent step, in place; returns the loss before the step."""
        loss, grads = self.loss_and_gradients(x, y)
        for k, g in grads.items():
            self.params[k] -= np.asarray(lr, dtype=self.dtype) * g
        return loss


def gradient_check(net: ScratchNetwork, x: np.ndarray, y: np.ndarray, eps: float = 1e-5,
                   max_per_param: Optional[int] = None, seed: int = 0) -> float:
    """Largest relative error between backprop and central finite differences, computed in float64.

    For each parameter tensor the error is ``||g - g_num|| / (||g|| + ||g_num||)`` over the checked
    entries (the usual gradient-check measure: a per-entry ratio is dominated by round-off wherever a
    true gradient is near zero). The largest over all tensors is returned; correct code gives about
    1e-9, a wrong backward pass 1e-2 or more. ``max_per_param`` checks a random sample of entries
    per tensor instead of all, for large layers. Keep ReLU pre-activations away from 0 by more than
    ``eps`` (the function is not differentiable there).
    """
    net64 = net.astype(np.float64)
    x64 = np.asarray(x, dtype=np.float64)
    _, grads = net64.loss_and_gradients(x64, y)
    rng = np.random.default_rng(seed)
    worst = 0.0
    for name, p in net64.params.items():
        flat = p.reshape(-1)  # a view: perturbing it perturbs the network
        idx = np.arange(flat.size)
        if max_per_param is not None and flat.size > max_per_param:
            idx = rng.choice(flat.size, max_per_param, replace=False)
        num = np.empty(len(idx))
        for n, j in enumerate(idx):
            old = flat[j]
            flat[j] = old + eps
            up = net64.loss(x64, y)
            flat[j] = old - eps
            down = net64.loss(x64, y)
            flat[j] = old
            num[n] = (up - down) / (2 * eps)
        g = grads[name].reshape(-1)[idx]
        denom = np.linalg.norm(g) + np.linalg.norm(num)
        if denom > 0:
            worst = max(worst, float(np.linalg.norm(g - num) / denom))
    return worst
