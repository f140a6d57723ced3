"""Crash safety: kill -9 mid-write, torn tails, corrupt records in the middle, bad headers."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import zlib
from pathlib import Path

import pytest

from flightsw.archive import ArchiveCorruption, ArchiveReader, ArchiveWriter
from flightsw.archive.format import HEADER_SIZE, encode_frame

REPO = Path(__file__).resolve().parents[3]

# A child that appends records of varying size forever, flushing after every batch and
# printing how many records it has flushed so far.
CHILD_LOOP = r"""
import sys
from flightsw.archive import ArchiveWriter

def size(i): return 100 + (i * 7919) % 65536
def payload(i): return (i.to_bytes(4, "little") * (size(i) // 4 + 1))[:size(i)]

w = ArchiveWriter(sys.argv[1], segment_bytes=2 * 1024 * 1024, buffer_bytes=256 * 1024)
print("recovered", sum(1 for r in w.recovery), flush=True)
i = 0
while True:
    for _ in range(7):
        w.append(1000.0 + i, f"odc/sat/n{i % 3}/telemetry", payload(i))
        i += 1
    w.flush()
    print(i, flush=True)
"""

# A child that flushes records, then dies in the middle of writing one.
CHILD_TORN = r"""
import os, sys, time
from flightsw.archive import ArchiveWriter
from flightsw.archive.format import encode_frame

w = ArchiveWriter(sys.argv[1])
for i in range(100):
    w.append(float(i), "odc/sat/a/telemetry", b"%d" % i)
w.flush()
frame = encode_frame(100.0, "odc/sat/a/telemetry", b"z" * 1000)
fd = os.open(w.segment, os.O_WRONLY | os.O_APPEND)
os.write(fd, frame[: int(sys.argv[2])])
print("torn", flush=True)
time.sleep(60)
"""


def _size(i: int) -> int:
    return 100 + (i * 7919) % 65536


def _payload(i: int) -> bytes:
    return (i.to_bytes(4, "little") * (_size(i) // 4 + 1))[: _size(i)]


def _spawn(script: str, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", script, *args], cwd=REPO, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True,
    )


def _kill(child: subprocess.Popen[str]) -> None:
    child.send_signal(signal.SIGKILL)
    child.wait(timeout=10)
    assert child.returncode == -signal.SIGKILL


@pytest.mark.parametrize("rounds", [2])
def test_kill_9_while_appending_keeps_every_flushed_record(
    tmp_path: Path, rounds: int
) -> None:
    archive = tmp_path / "arch"
    flushed = 0
    for _ in range(rounds):
        child = _spawn(CHILD_LOOP, str(archive))
        assert child.stdout is not None
        assert child.stdout.readline().startswith("recovered")
        target = flushed + 150
        while (line := child.stdout.readline()) and int(line) < target:
            pass
        assert line, child.stderr.read() if child.stderr else ""
        _kill(child)
        flushed = int(line)  # at least this many were handed to the OS before the kill

        reader = ArchiveReader(archive, write_index=False)
        got = list(reader.records())
        # every complete record, in order, exactly as appended (it is a prefix of the run)
        assert len(got) >= flushed
        expected: list[tuple[float, str, bytes]] = []
        i = 0
        for rec in got:  # the second run restarts numbering at 0 after the first's records
            if rec.t == 1000.0 and expected:
                i = 0
            expected.append((1000.0 + i, f"odc/sat/n{i % 3}/telemetry", _payload(i)))
            i += 1
        assert [tuple(r) for r in got] == expected
        # anything after the last complete record is reported as a torn tail, nothing else
        for report in reader.recovery:
            assert report.kind == "torn_tail"
            assert not report.repaired
            assert report.segment == reader.segments[-1]
            size = report.segment.stat().st_size
            assert report.offset + report.bytes_cut == size
        flushed = len(got)
    assert len(list(ArchiveReader(archive).records())) >= 300


@pytest.mark.parametrize("cut", [3, 8, 500])
def test_torn_record_is_reported_and_cut_by_the_next_writer(tmp_path: Path, cut: int) -> None:
    child = _spawn(CHILD_TORN, str(tmp_path), str(cut))
    assert child.stdout is not None
    assert child.stdout.readline().strip() == "torn"
    _kill(child)
    seg = tmp_path / "seg-000001.odca"
    size = seg.stat().st_size
    good_end = size - cut

    reader = ArchiveReader(tmp_path)
    assert [r.t for r in reader.records()] == [float(i) for i in range(100)]
    (report,) = reader.recovery
    assert (report.segment, report.offset, report.bytes_cut, report.kind, report.repaired) == (
        seg, good_end, cut, "torn_tail", False)
    assert "torn" in report.reason or "truncated" in report.reason
    assert seg.stat().st_size == size  # readers never modify segments

    with ArchiveWriter(tmp_path) as w:
        (fixed,) = w.recovery
        assert (fixed.offset, fixed.bytes_cut, fixed.kind, fixed.repaired) == (
            good_end, cut, "torn_tail", True)
        assert seg.stat().st_size == good_end
        w.append(100.0, "odc/sat/a/telemetry", b"after")
    reader = ArchiveReader(tmp_path)
    assert reader.recovery == ()
    assert [r.t for r in reader.records()] == [float(i) for i in range(101)]


def _archive_with_offsets(path: Path, n: int = 50) -> list[int]:
    """Write ``n`` records to one segment; return each frame's offset."""
    offsets = []
    pos = HEADER_SIZE
    with ArchiveWriter(path) as w:
        for i in range(n):
            payload = b"payload-%03d" % i
            offsets.append(pos)
            pos += len(encode_frame(float(i), "odc/sat/a/telemetry", payload))
            w.append(float(i), "odc/sat/a/telemetry", payload)
    return offsets


def _flip(path: Path, offset: int) -> None:
    data = bytearray(path.read_bytes())
    data[offset] ^= 0x55
    path.write_bytes(bytes(data))


@pytest.mark.parametrize("with_index", [True, False])
def test_corrupt_record_in_the_middle_is_reported_and_skipped(
    tmp_path: Path, with_index: bool
) -> None:
    offsets = _archive_with_offsets(tmp_path)
    seg = tmp_path / "seg-000001.odca"
    if not with_index:
        seg.with_suffix(".odci").unlink()
    _flip(seg, offsets[20] + 8 + 5)  # a byte of record 20's body: its CRC no longer matches

    reader = ArchiveReader(tmp_path)
    got = [r.t for r in reader.records()]
    assert got == [float(i) for i in range(50) if i != 20]  # resynced at record 21
    (report,) = reader.recovery
    assert report.kind == "corrupt"
    assert (report.offset, report.bytes_cut) == (offsets[20], offsets[21] - offsets[20])
    assert "CRC mismatch" in report.reason
    assert isinstance(report.as_error(), ArchiveCorruption)

    def read_strictly() -> None:  # damage found on open (no index) or while reading
        list(ArchiveReader(tmp_path, strict=True).records())

    with pytest.raises(ArchiveCorruption, match="CRC mismatch"):
        read_strictly()


def test_corrupt_length_field_resyncs_at_the_next_record(tmp_path: Path) -> None:
    offsets = _archive_with_offsets(tmp_path)
    seg = tmp_path / "seg-000001.odca"
    seg.with_suffix(".odci").unlink()
    data = bytearray(seg.read_bytes())
    data[offsets[10] + 3] = 0x7F  # length becomes ~2 GiB
    data[offsets[30]:offsets[32]] = bytes(offsets[32] - offsets[30])  # two zeroed records
    seg.write_bytes(bytes(data))

    reader = ArchiveReader(tmp_path)
    assert [r.t for r in reader.records()] == [
        float(i) for i in range(50) if i not in (10, 30, 31)]
    assert [(r.offset, r.bytes_cut, r.kind) for r in reader.recovery] == [
        (offsets[10], offsets[11] - offsets[10], "corrupt"),
        (offsets[30], offsets[32] - offsets[30], "corrupt"),
    ]
    # the damage is remembered in the saved index and reported again on every open
    again = ArchiveReader(tmp_path)
    assert [(r.offset, r.kind) for r in again.recovery] == [
        (offsets[10], "corrupt"), (offsets[30], "corrupt")]
    # a writer reports it too, leaves it in place and appends after it
    with ArchiveWriter(tmp_path) as w:
        assert [(r.offset, r.repaired) for r in w.recovery] == [
            (offsets[10], False), (offsets[30], False)]
        w.append(50.0, "odc/sat/a/telemetry", b"new")
    assert ArchiveReader(tmp_path).count() == 48


def test_garbage_at_the_end_is_a_torn_tail(tmp_path: Path) -> None:
    offsets = _archive_with_offsets(tmp_path)
    seg = tmp_path / "seg-000001.odca"
    end = seg.stat().st_size
    with seg.open("ab") as f:  # e.g. blocks allocated but never written before power loss
        f.write(bytes(4096))
    reader = ArchiveReader(tmp_path)
    assert reader.count() == 50
    (report,) = reader.recovery
    assert (report.offset, report.bytes_cut, report.kind) == (end, 4096, "torn_tail")
    assert len(offsets) == 50


def test_torn_segment_header(tmp_path: Path) -> None:
    with ArchiveWriter(tmp_path, segment_bytes=4096) as w:
        w.append_many((float(i), "t", bytes(500)) for i in range(20))
    segs = sorted(tmp_path.glob("seg-*.odca"))
    last = segs[-1]
    last.write_bytes(last.read_bytes()[:7])  # killed while writing the new header
    last.with_suffix(".odci").unlink()
    reader = ArchiveReader(tmp_path)
    (report,) = reader.recovery
    assert (report.segment, report.kind, report.bytes_cut) == (last, "torn_tail", 7)
    before = reader.count()
    with ArchiveWriter(tmp_path, segment_bytes=4096) as w:
        assert [(r.segment, r.repaired) for r in w.recovery] == [(last, True)]
        assert w.segment == last
        w.append(99.0, "t", b"x")
    reader = ArchiveReader(tmp_path)
    assert reader.recovery == ()
    assert reader.count() == before + 1


def test_foreign_segment_is_skipped_and_never_overwritten(tmp_path: Path) -> None:
    with ArchiveWriter(tmp_path) as w:
        w.append(1.0, "t", b"a")
    alien = tmp_path / "seg-000002.odca"
    alien.write_bytes(b"GIF89a" + bytes(100))
    reader = ArchiveReader(tmp_path)
    assert [r.payload for r in reader.records()] == [b"a"]
    (report,) = reader.recovery
    assert (report.segment, report.kind) == (alien, "bad_header")
    with ArchiveWriter(tmp_path) as w:
        assert w.segment.name == "seg-000003.odca"
        w.append(2.0, "t", b"b")
    assert alien.read_bytes() == b"GIF89a" + bytes(100)
    reader = ArchiveReader(tmp_path)
    assert [r.payload for r in reader.records()] == [b"a", b"b"]
    with pytest.raises(ArchiveCorruption, match="magic"):
        ArchiveReader(tmp_path, strict=True)


def test_crc_is_the_ieee_polynomial(tmp_path: Path) -> None:
    _archive_with_offsets(tmp_path, 1)
    data = (tmp_path / "seg-000001.odca").read_bytes()
    length = int.from_bytes(data[16:20], "little")
    crc = int.from_bytes(data[20:24], "little")
    assert crc == zlib.crc32(data[24:24 + length])
    assert len(data) == 24 + length
    assert os.path.getsize(tmp_path / "seg-000001.odca") == len(data)


def test_incomplete_record_of_a_live_writer_is_not_damage(tmp_path: Path) -> None:
    w = ArchiveWriter(tmp_path)
    try:
        w.append_many((float(i), "odc/sat/a/telemetry", b"x") for i in range(10))
        w.flush()
        frame = encode_frame(10.0, "odc/sat/a/telemetry", b"y" * 100)
        with w.segment.open("ab") as f:  # as seen mid-write by a concurrent reader
            f.write(frame[:40])
        reader = ArchiveReader(tmp_path, write_index=False)
        assert reader.live
        assert reader.recovery == ()
        assert reader.count() == 10
    finally:
        w.close()
    reader = ArchiveReader(tmp_path)
    assert not reader.live
    assert [(r.kind, r.bytes_cut) for r in reader.recovery] == [("torn_tail", 40)]
