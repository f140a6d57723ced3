"""The time index: correct range queries on out-of-order records, sidecar rebuild/extend."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from flightsw.archive import ArchiveReader, ArchiveWriter
from flightsw.archive.index import (
    Block,
    Gap,
    SegmentIndex,
    decode_index,
    encode_index,
    load_index,
    open_segment,
)

Rec = tuple[float, str, bytes]


def _jittered(n: int, seed: int = 3) -> list[Rec]:
    """Reception order with t nearly increasing: local shuffles and a few very late ones."""
    rng = np.random.default_rng(seed)
    t = np.arange(n, dtype=np.float64) * 0.5 + rng.uniform(-3.0, 3.0, n)
    late = rng.choice(n, size=n // 50, replace=False)
    t[late] -= rng.uniform(50.0, 400.0, late.size)  # store-and-forward arrivals
    return [(float(x), f"odc/sat/n{i % 4}/telemetry", i.to_bytes(4, "little"))
            for i, x in enumerate(t)]


@pytest.fixture(scope="module")
def jittered(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[Rec]]:
    recs = _jittered(4000)
    path = tmp_path_factory.mktemp("jit")
    with ArchiveWriter(path, segment_bytes=16_384, index_every=16) as w:
        w.append_many(recs)
    return path, recs


def test_range_queries_match_brute_force(jittered: tuple[Path, list[Rec]]) -> None:
    path, recs = jittered
    reader = ArchiveReader(path)
    assert len(reader.segments) > 3
    rng = np.random.default_rng(11)
    lo_all = min(r[0] for r in recs)
    hi_all = max(r[0] for r in recs)
    for _ in range(60):
        a, b = sorted(rng.uniform(lo_all - 10, hi_all + 10, 2))
        want = [r for r in recs if a <= r[0] < b]
        got = [tuple(r) for r in reader.records(a, b)]
        assert got == want
        assert reader.count(a, b) == len(want)
        want_n1 = [r for r in want if r[1] == "odc/sat/n1/telemetry"]
        assert [tuple(r) for r in reader.records(a, b, nodes=["n1"])] == want_n1
        assert reader.count(a, b, nodes=["n1"]) == len(want_n1)
    # open-ended ranges and exact boundaries (start inclusive, end exclusive)
    t5 = recs[5][0]
    assert [tuple(r) for r in reader.records(start=t5)] == [r for r in recs if r[0] >= t5]
    assert [tuple(r) for r in reader.records(end=t5)] == [r for r in recs if r[0] < t5]
    assert reader.time_range() == (lo_all, hi_all)


def test_blocks_bound_their_records(jittered: tuple[Path, list[Rec]]) -> None:
    path, recs = jittered
    it = iter(recs)
    for seg in sorted(path.glob("seg-*.odca")):
        index = open_segment(seg).index
        for block in index.blocks:
            ts = [next(it)[0] for _ in range(block.count)]
            assert block.t_min == min(ts)
            assert block.t_max == max(ts)
            assert block.count <= 16
    assert next(it, None) is None


def test_sidecar_round_trip() -> None:
    idx = SegmentIndex(3, 4096, [Block(16, 4080, 12, 1.5, -0.25 + 3)],
                       [Gap(100, 40, "CRC mismatch")], {"odc/sat/é/x": 12})
    assert decode_index(encode_index(idx)) == idx
    damaged = bytearray(encode_index(idx))
    damaged[40] ^= 1
    with pytest.raises(ValueError, match="CRC"):
        decode_index(bytes(damaged))


def _idx_files(path: Path) -> list[Path]:
    return sorted(path.glob("*.odci"))


def test_missing_damaged_or_stale_sidecars_are_rebuilt(tmp_path: Path) -> None:
    recs = _jittered(500)
    with ArchiveWriter(tmp_path, segment_bytes=8192, index_every=8) as w:
        w.append_many(recs)
    want = [tuple(r) for r in ArchiveReader(tmp_path).records(100.0, 200.0)]
    assert want == [r for r in recs if 100.0 <= r[0] < 200.0]
    originals = {p: p.read_bytes() for p in _idx_files(tmp_path)}
    first, second, third = list(originals)[:3]
    first.unlink()                                   # missing
    second.write_bytes(originals[second][:-1] + b"x")  # damaged
    # stale: claims to cover more than the segment holds
    idx = decode_index(originals[third])
    idx.covered += 1000
    third.write_bytes(encode_index(idx))
    seg3 = third.with_suffix(".odca")
    assert load_index(seg3, idx.number, seg3.stat().st_size) is None
    reader = ArchiveReader(tmp_path)
    assert [tuple(r) for r in reader.records(100.0, 200.0)] == want
    assert reader.recovery == ()
    # rebuilt sidecars were saved; they describe the same records as the writer's
    # (in blocks of the reader's default size: the writer's index_every is not known)
    for p, data in originals.items():
        theirs, ours = decode_index(data), decode_index(p.read_bytes())
        assert (ours.covered, ours.count, ours.topics, ours.time_range()) == (
            theirs.covered, theirs.count, theirs.topics, theirs.time_range())
        if p in (first, second, third):
            assert len(ours.blocks) == 1
        else:
            assert ours == theirs


def test_reader_does_not_write_sidecars_when_told(tmp_path: Path) -> None:
    with ArchiveWriter(tmp_path) as w:
        w.append(1.0, "a", b"")
    for p in _idx_files(tmp_path):
        p.unlink()
    assert ArchiveReader(tmp_path, write_index=False).count() == 1
    assert _idx_files(tmp_path) == []


def test_sidecar_of_a_growing_segment_is_extended(tmp_path: Path) -> None:
    w = ArchiveWriter(tmp_path, index_every=10, buffer_bytes=0)
    try:
        w.append_many((float(i), "odc/sat/a/telemetry", b"p") for i in range(35))
        w.flush()  # three complete blocks: the sidecar is written
        seg = w.segment
        covered = decode_index(seg.with_suffix(".odci").read_bytes()).covered
        w.append_many((float(i), "odc/sat/a/telemetry", b"p") for i in range(35, 38))
        w.flush()  # no new complete block: the sidecar is left as it was
        assert decode_index(seg.with_suffix(".odci").read_bytes()).covered == covered
        assert seg.stat().st_size > covered
        reader = ArchiveReader(tmp_path)
        assert [r.t for r in reader.records(30.0)] == [float(i) for i in range(30, 38)]
        extended = decode_index(seg.with_suffix(".odci").read_bytes())
        assert extended.covered == seg.stat().st_size
        assert sum(b.count for b in extended.blocks) == 38
    finally:
        w.close()


def test_empty_archive(tmp_path: Path) -> None:
    reader = ArchiveReader(tmp_path)
    assert len(reader) == 0
    assert reader.time_range() is None
    assert reader.nodes() == []
    assert list(reader.records()) == []
    with ArchiveWriter(tmp_path):
        pass
    reader = ArchiveReader(tmp_path)
    assert reader.count() == 0
    assert reader.time_range() is None
