"""The numpy MLP of training jobs: its gradient is the loss's, shards add up to the full
batch, and bad data is refused naming the field."""

from __future__ import annotations

import numpy as np
import pytest

from flightsw.exceptions import JobRejected
from flightsw.models.mlp_train import (
    accuracy,
    check_data,
    init_params,
    shard_gradient,
    step_flops_per_item,
    train_local,
)

SIZES = [6, 5, 4, 3]


def data(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, SIZES[0]))
    y = rng.integers(0, SIZES[-1], n)
    return x, y


def test_the_gradient_is_the_loss_gradient() -> None:
    x, y = data(9)
    params = init_params(SIZES, 3)
    _, grads = shard_gradient(params, x, y, len(y))
    eps = 1e-6
    for i, p in enumerate(params):
        for idx in [tuple(0 for _ in p.shape), tuple(s - 1 for s in p.shape)]:
            up = [q.copy() for q in params]
            down = [q.copy() for q in params]
            up[i][idx] += eps
            down[i][idx] -= eps
            numeric = (shard_gradient(up, x, y, len(y))[0]
                       - shard_gradient(down, x, y, len(y))[0]) / (2 * eps)
            assert grads[i][idx] == pytest.approx(numeric, abs=1e-7), (i, idx)


def test_shards_add_up_to_the_full_batch() -> None:
    x, y = data(30)
    params = init_params(SIZES, 1)
    loss, grads = shard_gradient(params, x, y, 30)
    parts = [shard_gradient(params, x[a:b], y[a:b], 30) for a, b in ((0, 7), (7, 19), (19, 30))]
    assert sum(p[0] for p in parts) == pytest.approx(loss, rel=1e-12)
    for i, g in enumerate(grads):
        np.testing.assert_allclose(sum(p[1][i] for p in parts), g, rtol=0, atol=1e-14)


def test_training_learns_a_separable_set() -> None:
    rng = np.random.default_rng(5)
    y = rng.integers(0, 3, 120)
    x = rng.standard_normal((120, 6)) * 0.3
    x[np.arange(120), y] += 2.0  # class k lights up feature k
    params = train_local(SIZES, x, y, steps=200, lr=0.02, seed=0)
    assert accuracy(params, x, y) > 0.95
    assert accuracy(init_params(SIZES, 0), x, y) < 0.8


@pytest.mark.parametrize(("x", "y", "field", "text"), [
    (np.zeros((4, 5)), np.zeros(4, np.int64), "x", r"expected \[items, 6\]"),
    (np.zeros((4, 6), np.int64), np.zeros(4, np.int64), "x", "finite floats"),
    (np.full((4, 6), np.nan), np.zeros(4, np.int64), "x", "finite floats"),
    (np.zeros((4, 6)), np.zeros(3, np.int64), "y", "4 integer labels"),
    (np.zeros((4, 6)), np.zeros(4), "y", "4 integer labels"),
    (np.zeros((4, 6)), np.array([0, 1, 2, 3]), "y", r"labels must be in \[0, 3\)"),
])
def test_bad_data_is_refused_naming_the_field(x: np.ndarray, y: np.ndarray, field: str,
                                              text: str) -> None:
    with pytest.raises(JobRejected, match=text) as err:
        check_data(SIZES, x, y)
    assert err.value.field == field


def test_a_training_step_costs_six_flops_per_weight_and_item() -> None:
    assert step_flops_per_item(SIZES) == 6.0 * (6 * 5 + 5 * 4 + 4 * 3)
