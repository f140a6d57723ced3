"""The telemetry archive, re-exported from :mod:`flightsw.archive` where it lives.

The simulator writes the same archive the ground station writes, so the format sits below
both packages. This module keeps ``from groundstation.archive import ArchiveReader`` working
for users; code in this repository imports :mod:`flightsw.archive`.
"""

from flightsw.archive import (
    DEFAULT_SEGMENT_BYTES,
    ArchiveCorruption,
    ArchiveError,
    ArchiveReader,
    ArchiveWriter,
    Record,
    RecoveryReport,
    decode_record,
    node_of,
)

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
