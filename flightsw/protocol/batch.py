"""The batch size (item count) of a job's inputs: one rule for the ground, node and executor.

The first axis of every input is the batch. All inputs with at least one axis must agree on
it; a 0-d input (a scalar given to every item) does not count, so a job whose inputs are
all 0-d is one item. A batch of zero items is refused. Whether an input's shape suits the
model is the executor's check (``flightsw.models.executor.check_inputs``), which counts
items with this function too.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy.typing as npt

from flightsw.exceptions import JobRejected

__all__ = ["batch_items"]


def batch_items(arrays: Mapping[str, npt.NDArray[Any]]) -> int:
    """Items in a job's ``arrays`` (decoded inputs, by name); :class:`JobRejected` with
    ``code="invalid_job"``, ``field="inputs"`` if the batch sizes differ or are zero."""
    first: tuple[str, int] | None = None
    for name, array in arrays.items():
        if array.ndim == 0:
            continue
        n = int(array.shape[0])
        if first is None:
            first = (name, n)
        elif n != first[1]:
            raise JobRejected(
                f"inputs: batch sizes differ: input {first[0]!r} has {first[1]} items, "
                f"input {name!r} has {n}",
                field="inputs",
            )
    if first is None:
        return 1
    if first[1] == 0:
        raise JobRejected(
            f"inputs: input {first[0]!r} has a batch of zero items; a job needs at least one",
            field="inputs",
        )
    return first[1]
