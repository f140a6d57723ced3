"""The node's identity on the wire: the key that seals what it publishes.

With a key file (``--node-key-file``), every message the node publishes except telemetry
carries a seal (:mod:`flightsw.protocol.sign`) whose sequence numbers continue across
restarts from ``<data dir>/auth.seq``. Without one, messages go out unsealed, which a
ground station holding node keys refuses.
"""

from __future__ import annotations

from flightsw.node.config import NodeConfig
from flightsw.protocol.sign import Sealer, SequenceFile, load_key

__all__ = ["SEQUENCE_FILE", "node_sealer"]

SEQUENCE_FILE = "auth.seq"


def node_sealer(config: NodeConfig) -> Sealer:
    """The sealer of a node of ``config`` (:class:`~flightsw.exceptions.AuthError` for an
    unreadable key file)."""
    if config.node_key_file is None:
        return Sealer(None, None)
    key = load_key(config.node_key_file)
    return Sealer(key, SequenceFile(config.data_dir / SEQUENCE_FILE))
