"""Models onboard: content-addressed store, ONNX cost model (FLOPs, bytes, roofline), executor.

See ``docs/models.md``.
"""

from flightsw.models.cost import (
    ModelCost,
    ModelledRun,
    ProfileLike,
    analyse,
    clear_cache,
    modelled_energy_j,
    modelled_run,
    roofline,
)
from flightsw.models.executor import ExecResult, Executor, check_inputs, session_options
from flightsw.models.spec import TensorSpec, graph_inputs, graph_outputs
from flightsw.models.store import (
    ModelStore,
    ModelUpload,
    check_model_hash,
    chunk_model,
    sha256_bytes,
    sha256_file,
)

__all__ = [
    "ExecResult",
    "Executor",
    "ModelCost",
    "ModelStore",
    "ModelUpload",
    "ModelledRun",
    "ProfileLike",
    "TensorSpec",
    "analyse",
    "check_inputs",
    "check_model_hash",
    "chunk_model",
    "clear_cache",
    "graph_inputs",
    "graph_outputs",
    "modelled_energy_j",
    "modelled_run",
    "roofline",
    "session_options",
    "sha256_bytes",
    "sha256_file",
]
