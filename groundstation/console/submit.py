"""Jobs submitted from the page or an HTTP script: JSON inputs turned into the model's
tensors, checked against the model's declared inputs before anything is sent."""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

from flightsw.exceptions import FlightSwError
from flightsw.models.spec import TensorSpec, read_graph_inputs
from flightsw.models.store import ModelStore
from groundstation.console.exceptions import ConsoleError, NotFound

__all__ = ["ModelCatalog", "arrays_from_json"]


class ModelCatalog:
    """The models the ground station holds (its store on disk) and their inputs."""

    def __init__(self, store_dir: Any) -> None:
        self.dir = store_dir
        self._specs: dict[str, tuple[TensorSpec, ...]] = {}

    def _store(self) -> ModelStore:
        return ModelStore(self.dir, validate=False)

    def specs(self, model: str) -> tuple[TensorSpec, ...]:
        if model not in self._specs:
            store = self._store()
            if not store.has(model):
                raise NotFound(f"model {model[:12]}: not uploaded to the ground station")
            try:
                self._specs[model] = read_graph_inputs(store.path(model), model[:12])
            except FlightSwError as exc:
                raise ConsoleError(str(exc)) from exc
        return self._specs[model]

    def listing(self) -> list[dict[str, Any]]:
        out = []
        for model in self._store().list():
            try:
                specs = self.specs(model)
            except ConsoleError:
                continue
            out.append({
                "model": model,
                "inputs": [
                    {"name": s.name, "dtype": s.dtype,
                     "shape": None if s.shape is None else list(s.shape)}
                    for s in specs
                ],
            })
        return out


def arrays_from_json(
    inputs: dict[str, Any], specs: tuple[TensorSpec, ...]
) -> dict[str, npt.NDArray[Any]]:
    """``{"name": nested list}`` -> arrays of each input's declared dtype; an unknown or
    missing input, or a value that is not numeric, is named in the error."""
    want = {s.name: s for s in specs}
    unknown = sorted(set(inputs) - set(want))
    if unknown:
        raise ConsoleError(f"inputs: {', '.join(unknown)} not inputs of the model "
                           f"(it takes {', '.join(want)})")
    missing = sorted(set(want) - set(inputs))
    if missing:
        raise ConsoleError(f"inputs: missing {', '.join(missing)}")
    out = {}
    for name, value in inputs.items():
        try:
            out[name] = np.asarray(value, dtype=np.dtype(want[name].dtype))
        except (TypeError, ValueError) as exc:
            raise ConsoleError(f"inputs.{name}: not a numeric array of "
                               f"{want[name].dtype}: {exc}") from exc
    return out
