"""Flight software of one orbital AI data-centre node (see README.md)."""

import os

# onnxruntime >= 1.29 ships Microsoft's 1DS telemetry on Linux: unless opted out before it
# initialises, it writes a persistent ``.ses`` file to $TMPDIR and tries to reach the network.
# A flight computer phones nobody home; ``ORT_DISABLE_TELEMETRY=0`` in the environment opts in.
os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")

__version__ = "0.1.0"
