"""The node's identity on the wire: the key that seals what it publishes.

With a key file (``--node-key-file``), every message the node publishes except telemetry
carries a seal (:mod:`flightsw.protocol.sign`) whose sequence numbers continue across
restarts from ``<data dir>/auth.seq``. Without one, messages go out unsealed, which a
ground station holding node keys refuses.

With the ground's public warrant key (``--ground-public-key``), the node runs only jobs
the ground signed (:mod:`flightsw.protocol.warrant`), whether uplinked or handed over.
"""

from __future__ import annotations

from flightsw.node.config import NodeConfig
from flightsw.protocol.sign import Sealer, SequenceFile, load_key
from flightsw.protocol.warrant import WarrantVerifier

__all__ = ["SEQUENCE_FILE", "job_warrants", "node_sealer"]

SEQUENCE_FILE = "auth.seq"


def node_sealer(config: NodeConfig) -> Sealer:
    """The sealer of a node of ``config`` (:class:`~flightsw.exceptions.AuthError` for an
    unreadable key file)."""
    if config.node_key_file is None:
        return Sealer(None, None)
    key = load_key(config.node_key_file)
    return Sealer(key, SequenceFile(config.data_dir / SEQUENCE_FILE))


def job_warrants(config: NodeConfig) -> WarrantVerifier | None:
    """The check of job warrants for a node of ``config`` (None: jobs are not checked)."""
    if config.ground_public_key_file is None:
        return None
    return WarrantVerifier.from_file(config.ground_public_key_file)
