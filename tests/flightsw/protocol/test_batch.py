"""The one rule for the item count of a job's inputs."""

from __future__ import annotations

import numpy as np
import pytest

from flightsw.exceptions import JobRejected
from flightsw.protocol import batch_items


def test_first_axis_counts_and_scalars_do_not() -> None:
    assert batch_items({"x": np.zeros((4, 3)), "ids": np.arange(4)}) == 4
    assert batch_items({"x": np.zeros((3, 2)), "scale": np.array(0.5)}) == 3
    assert batch_items({"scale": np.array(0.5)}) == 1  # all 0-d: one item
    assert batch_items({}) == 1


def test_differing_and_empty_batches_are_refused() -> None:
    with pytest.raises(JobRejected, match=r"^inputs: batch sizes differ: input 'a' has 2 items, "
                                          r"input 'b' has 5$") as err:
        batch_items({"a": np.zeros((2, 3)), "s": np.array(1.0), "b": np.zeros(5)})
    assert (err.value.code, err.value.field) == ("invalid_job", "inputs")
    with pytest.raises(JobRejected, match=r"^inputs: input 'a' has a batch of zero items") as err:
        batch_items({"a": np.zeros((0, 3))})
    assert (err.value.code, err.value.field) == ("invalid_job", "inputs")
