"""Telemetry archive: append-only CRC-framed segment files indexed by mission time.

See ``docs/archive.md`` for the byte layout, recovery rules and tools built on it.
"""

from groundstation.archive.reader import ArchiveReader
from groundstation.archive.record import Record, decode_record, node_of
from groundstation.archive.recovery import RecoveryReport
from groundstation.archive.writer import DEFAULT_SEGMENT_BYTES, ArchiveWriter

__all__ = [
    "DEFAULT_SEGMENT_BYTES",
    "ArchiveReader",
    "ArchiveWriter",
    "Record",
    "RecoveryReport",
    "decode_record",
    "node_of",
]
