"""Telemetry archive: append-only CRC-framed segment files indexed by mission time.

One format for both writers: the ground station archives what it receives, the simulator
writes the same records for a simulated run, and the same tools (replay, export, report)
read either. It lives in ``flightsw`` so both can use it without ``flightsw`` importing
``groundstation``. See ``docs/archive.md`` for the byte layout, recovery rules and tools
built on it.
"""

from flightsw.archive.format import ArchiveCorruption
from flightsw.archive.reader import ArchiveReader
from flightsw.archive.record import Record, decode_record, node_of
from flightsw.archive.recovery import RecoveryReport
from flightsw.archive.writer import DEFAULT_SEGMENT_BYTES, ArchiveWriter
from flightsw.exceptions import ArchiveError

__all__ = [
    "DEFAULT_SEGMENT_BYTES",
    "ArchiveCorruption",
    "ArchiveError",
    "ArchiveReader",
    "ArchiveWriter",
    "Record",
    "RecoveryReport",
    "decode_record",
    "node_of",
]
