"""ArchiveWriter: round trip, rotation, reopening, validation, single-writer lock."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from flightsw.archive import ArchiveReader, ArchiveWriter
from flightsw.archive.format import HEADER_SIZE, parse_header
from flightsw.exceptions import ArchiveError


def test_round_trip_of_real_protocol_messages(mission: Any) -> None:
    reader = ArchiveReader(mission.path)
    got = [tuple(r) for r in reader.records()]
    assert got == mission.records
    assert reader.recovery == ()
    assert len(reader) == len(mission.records)
    assert all(isinstance(r.t, float) for r in reader.records())


def test_rotation_by_size_never_splits_a_record(tmp_path: Path, mission_writer: Any) -> None:
    log = mission_writer.write(tmp_path / "a", nodes={"sat-001": "h100-sxm"}, hours=1.0,
                               segment_bytes=8192)
    segments = sorted((tmp_path / "a").glob("seg-*.odca"))
    assert len(segments) > 5
    biggest = max(len(p) for _, _, p in log.records) + 200
    for number, seg in enumerate(segments, start=1):
        data = seg.read_bytes()
        assert parse_header(data[:HEADER_SIZE], where=seg.name) == number
        # a segment is closed once it reaches segment_bytes: at most one record over
        assert len(data) < 8192 + biggest
        assert seg.with_suffix(".odci").exists()
    reader = ArchiveReader(tmp_path / "a")
    assert [tuple(r) for r in reader.records()] == log.records
    assert reader.segments == segments


def test_a_record_bigger_than_a_segment_gets_its_own(tmp_path: Path) -> None:
    big = np.random.default_rng(1).bytes(20_000)
    with ArchiveWriter(tmp_path, segment_bytes=4096) as w:
        w.append(1.0, "odc/sat/a/model", b"small")
        w.append(2.0, "odc/sat/a/model", big)
        w.append(3.0, "odc/sat/a/model", b"after")
    reader = ArchiveReader(tmp_path)
    assert [r.payload for r in reader.records()] == [b"small", big, b"after"]
    assert len(reader.segments) == 2


def test_reopen_recovers_nothing_and_appends_after(tmp_path: Path) -> None:
    with ArchiveWriter(tmp_path, segment_bytes=1 << 20) as w:
        w.append_many((float(i), "odc/sat/a/telemetry", b"x%d" % i) for i in range(100))
    with ArchiveWriter(tmp_path, segment_bytes=1 << 20) as w:
        assert w.recovery == ()
        assert w.segment.name == "seg-000001.odca"
        assert w.append_many((float(i), "odc/sat/b/telemetry", b"y%d" % i)
                             for i in range(100, 150)) == 50
    reader = ArchiveReader(tmp_path)
    assert [r.t for r in reader.records()] == [float(i) for i in range(150)]
    assert reader.topics() == {"odc/sat/a/telemetry": 100, "odc/sat/b/telemetry": 50}
    assert len(reader.segments) == 1


def test_reopening_a_full_segment_starts_the_next(tmp_path: Path) -> None:
    with ArchiveWriter(tmp_path, segment_bytes=1 << 20) as w:
        w.append_many((float(i), "t", bytes(100)) for i in range(100))
    with ArchiveWriter(tmp_path, segment_bytes=4096) as w:
        assert w.segment.name == "seg-000002.odca"
        w.append(100.0, "t", b"z")
    assert ArchiveReader(tmp_path).count() == 101


def test_flush_makes_records_visible_before_close(tmp_path: Path) -> None:
    w = ArchiveWriter(tmp_path, buffer_bytes=1 << 20)
    try:
        w.append_many((float(i), "odc/sat/a/telemetry", b"p") for i in range(10))
        assert ArchiveReader(tmp_path, write_index=False).count() == 0
        w.flush()
        assert ArchiveReader(tmp_path, write_index=False).count() == 10
        w.append(10.0, "odc/sat/a/telemetry", b"p")
        w.sync()
        assert ArchiveReader(tmp_path, write_index=False).count() == 11
    finally:
        w.close()
    assert w.closed
    w.close()  # idempotent


def test_bytes_like_payloads_and_numpy_times(tmp_path: Path) -> None:
    with ArchiveWriter(tmp_path) as w:
        w.append(np.float64(1.5), "a", bytearray(b"ab"))
        w.append(np.float32(2.5), "a", memoryview(b"cd"))  # type: ignore[arg-type]
        w.append(3, "a", b"ef")
    got = list(ArchiveReader(tmp_path).records())
    assert [(r.t, r.payload) for r in got] == [(1.5, b"ab"), (2.5, b"cd"), (3.0, b"ef")]
    assert all(type(r.t) is float for r in got)


@pytest.mark.parametrize(
    ("args", "field"),
    [
        ((float("nan"), "a", b""), "t: must be finite"),
        ((float("inf"), "a", b""), "t: must be finite"),
        (("12", "a", b""), "t: expected a number"),
        ((True, "a", b""), "t: expected a number"),
        ((1.0, b"a", b""), "topic: expected str"),
        ((1.0, "a", "text"), "payload: expected bytes"),
    ],
)
def test_bad_records_are_refused_naming_the_field(
    tmp_path: Path, args: tuple[Any, Any, Any], field: str
) -> None:
    with ArchiveWriter(tmp_path) as w:
        with pytest.raises(ArchiveError, match=field):
            w.append(*args)
        w.append(1.0, "a", b"ok")
    assert ArchiveReader(tmp_path).count() == 1


@pytest.mark.parametrize(
    ("kw", "field"),
    [({"segment_bytes": 100}, "segment_bytes"), ({"index_every": 0}, "index_every"),
     ({"buffer_bytes": -1}, "buffer_bytes")],
)
def test_bad_settings_are_refused(tmp_path: Path, kw: dict[str, Any], field: str) -> None:
    with pytest.raises(ArchiveError, match=field):
        ArchiveWriter(tmp_path, **kw)


def test_only_one_writer_per_directory(tmp_path: Path) -> None:
    with ArchiveWriter(tmp_path) as w:
        with pytest.raises(ArchiveError, match="already open by another writer"):
            ArchiveWriter(tmp_path)
        w.append(1.0, "a", b"")
    with ArchiveWriter(tmp_path) as again:  # released on close
        again.append(2.0, "a", b"")


def test_closed_writer_refuses_appends(tmp_path: Path) -> None:
    w = ArchiveWriter(tmp_path)
    w.close()
    with pytest.raises(ArchiveError, match="closed"):
        w.append(1.0, "a", b"")


def test_archive_path_that_is_a_file(tmp_path: Path) -> None:
    f = tmp_path / "file"
    f.write_text("x")
    with pytest.raises(ArchiveError, match="not a directory"):
        ArchiveWriter(f)
