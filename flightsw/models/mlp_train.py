"""A multi-layer perceptron trained with numpy: what a data-parallel training job runs.

Parameters are a list ``[W0, b0, W1, b1, ...]`` of float64 arrays (``W`` of shape
``[fan_in, fan_out]``), ReLU between layers, softmax cross-entropy on integer labels.
:func:`shard_gradient` returns the gradient of the *sum* of the shard's losses divided by
the items of the whole training set, so the members' gradients of a data-parallel step add
up to the full batch's mean gradient; every member applies that sum with the same
:class:`Adam` state and so holds the same parameters after every step.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from flightsw.exceptions import JobRejected

__all__ = ["Adam", "accuracy", "check_data", "init_params", "predict", "shard_gradient",
           "step_flops_per_item", "train_local"]

Array = npt.NDArray[np.float64]


def init_params(sizes: Sequence[int], seed: int) -> list[Array]:
    """He-initialised weights and zero biases for layers of ``sizes`` (input first)."""
    rng = np.random.default_rng(seed)
    params: list[Array] = []
    for fan_in, fan_out in itertools.pairwise(sizes):
        params.append(rng.standard_normal((fan_in, fan_out)) * np.sqrt(2.0 / fan_in))
        params.append(np.zeros(fan_out))
    return params


def _forward(params: Sequence[Array], x: Array) -> list[Array]:
    """The activations of every layer, the input first and the logits last."""
    acts = [x]
    n = len(params) // 2
    for k in range(n):
        z = acts[-1] @ params[2 * k] + params[2 * k + 1]
        acts.append(np.maximum(z, 0.0) if k < n - 1 else z)
    return acts


def predict(params: Sequence[Array], x: npt.NDArray[Any]) -> npt.NDArray[np.int64]:
    return np.asarray(np.argmax(_forward(params, np.asarray(x, np.float64))[-1], axis=1),
                      dtype=np.int64)


def accuracy(params: Sequence[Array], x: npt.NDArray[Any], y: npt.NDArray[Any]) -> float:
    return float(np.mean(predict(params, x) == np.asarray(y)))


def shard_gradient(params: Sequence[Array], x: npt.NDArray[Any], y: npt.NDArray[Any],
                   total: int) -> tuple[float, list[Array]]:
    """The shard's summed cross-entropy over ``total`` items, and its gradient."""
    acts = _forward(params, np.asarray(x, np.float64))
    logits = acts[-1]
    shifted = logits - logits.max(axis=1, keepdims=True)
    p = np.exp(shifted)
    p /= p.sum(axis=1, keepdims=True)
    labels = np.asarray(y, np.int64)
    rows = np.arange(len(labels))
    loss = float(-np.log(np.maximum(p[rows, labels], 1e-300)).sum() / total)
    delta = p
    delta[rows, labels] -= 1.0
    delta /= total
    grads: list[Array] = [np.zeros(0)] * len(params)
    for k in range(len(params) // 2 - 1, -1, -1):
        grads[2 * k] = acts[k].T @ delta
        grads[2 * k + 1] = delta.sum(axis=0)
        if k > 0:
            delta = (delta @ params[2 * k].T) * (acts[k] > 0)
    return loss, grads


@dataclass
class Adam:
    """Adam with the usual defaults; :meth:`step` returns the updated parameters."""

    lr: float
    beta1: float = 0.9
    beta2: float = 0.999
    eps: float = 1e-8
    t: int = 0
    m: list[Array] = field(default_factory=list)
    v: list[Array] = field(default_factory=list)

    def step(self, params: Sequence[Array], grads: Sequence[Array]) -> list[Array]:
        if not self.m:
            self.m = [np.zeros_like(p) for p in params]
            self.v = [np.zeros_like(p) for p in params]
        self.t += 1
        out = []
        for i, (p, g) in enumerate(zip(params, grads, strict=True)):
            self.m[i] = self.beta1 * self.m[i] + (1 - self.beta1) * g
            self.v[i] = self.beta2 * self.v[i] + (1 - self.beta2) * g * g
            m_hat = self.m[i] / (1 - self.beta1 ** self.t)
            v_hat = self.v[i] / (1 - self.beta2 ** self.t)
            out.append(p - self.lr * m_hat / (np.sqrt(v_hat) + self.eps))
        return out


def step_flops_per_item(sizes: Sequence[int]) -> float:
    """FLOPs of one item in one training step: 6 per weight (2 forward, 4 backward)."""
    return 6.0 * sum(a * b for a, b in itertools.pairwise(sizes))


def check_data(sizes: Sequence[int], x: npt.NDArray[Any], y: npt.NDArray[Any]) -> None:
    """Features and labels an MLP of ``sizes`` can train on; :class:`JobRejected` naming
    the field otherwise."""
    if x.ndim != 2 or x.shape[1] != sizes[0]:
        raise JobRejected(f"x: expected [items, {sizes[0]}], got {list(x.shape)}", field="x")
    if not np.issubdtype(x.dtype, np.floating) or not np.isfinite(x).all():
        raise JobRejected(f"x: expected finite floats, got {x.dtype}", field="x")
    if y.shape != (x.shape[0],) or not np.issubdtype(y.dtype, np.integer):
        raise JobRejected(f"y: expected {x.shape[0]} integer labels, got {y.dtype} "
                          f"{list(y.shape)}", field="y")
    if y.size and (int(y.min()) < 0 or int(y.max()) >= sizes[-1]):
        raise JobRejected(f"y: labels must be in [0, {sizes[-1]})", field="y")


def train_local(sizes: Sequence[int], x: npt.NDArray[Any], y: npt.NDArray[Any], *,
                steps: int, lr: float, seed: int) -> list[Array]:
    """Full-batch training on one node: the reference a data-parallel run must match."""
    params = init_params(sizes, seed)
    opt = Adam(lr)
    for _ in range(steps):
        _, grads = shard_gradient(params, x, y, len(y))
        params = opt.step(params, grads)
    return params
