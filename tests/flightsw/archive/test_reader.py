"""ArchiveReader queries and errors; decode_record on real protocol messages."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from flightsw.archive import ArchiveReader, ArchiveWriter, Record, decode_record, node_of
from flightsw.exceptions import ArchiveError
from flightsw.protocol import JobResult, Status, Telemetry, parse
from flightsw.protocol.messages import Message


def test_topic_and_node_filters(mission: Any) -> None:
    reader = ArchiveReader(mission.path)
    assert reader.nodes() == ["sat-001", "sat-002", "sat-003"]
    tel = [r for r in mission.records if r[1].endswith("/telemetry")]
    got = [tuple(r) for r in reader.records(topics=["odc/sat/+/telemetry"])]
    assert got == tel
    one = [r for r in mission.records if r[1].startswith("odc/sat/sat-002/")]
    assert [tuple(r) for r in reader.records(nodes=["sat-002"])] == one
    both = [r for r in one if r[1].endswith("/result")]
    assert [tuple(r) for r in reader.records(topics=["odc/sat/#"], nodes=["sat-002"])
            if r.leaf == "result"] == both
    assert reader.count(topics=["odc/sat/+/result"], nodes=["sat-002"]) == len(both)
    assert reader.count(nodes=["sat-404"]) == 0
    assert list(reader.records(nodes=[])) == []
    counts = reader.topics()
    assert sum(counts.values()) == len(mission.records)
    assert counts["odc/sat/sat-001/status"] == 1


def test_decode_record_gives_the_message_back(mission: Any) -> None:
    reader = ArchiveReader(mission.path)
    kinds: dict[str, type[Message]] = {"telemetry": Telemetry, "result": JobResult,
                                       "status": Status}
    seen = set()
    for rec in reader.records(end=mission.records[0][0] + 600):
        msg = decode_record(rec)
        model = kinds[msg["kind"]]
        assert parse(model, rec.payload).model_dump() == msg
        seen.add(msg["kind"])
        if msg["kind"] == "result":
            tensor = msg["outputs"]["logits"]
            assert isinstance(tensor["data"], bytes)
            assert tensor["shape"] == [2, 10]
    assert seen == set(kinds)


def test_decode_record_errors_name_the_record() -> None:
    with pytest.raises(ArchiveError, match=r"odc/sat/x/telemetry @ t=1\.5.*undecodable"):
        decode_record(Record(1.5, "odc/sat/x/telemetry", b"\xc1"))
    with pytest.raises(ArchiveError, match="not a map"):
        decode_record(Record(1.5, "odc/sat/x/telemetry", b"\x93\x01\x02\x03"))


def test_node_of() -> None:
    assert node_of("odc/sat/sat-7/telemetry") == "sat-7"
    assert node_of("odc/sat/sat-7") is None
    assert node_of("odc/ground/x/y") is None
    assert Record(0.0, "odc/sat/a/b/c", b"").node == "a"
    assert Record(0.0, "odc/sat/a/b/c", b"").leaf == "c"


def test_bad_paths_and_ranges(tmp_path: Path) -> None:
    with pytest.raises(ArchiveError, match="no such directory"):
        ArchiveReader(tmp_path / "nope")
    (tmp_path / "f").write_bytes(b"")
    with pytest.raises(ArchiveError, match="not a directory"):
        ArchiveReader(tmp_path / "f")
    with ArchiveWriter(tmp_path / "a") as w:
        w.append(1.0, "odc/sat/a/telemetry", b"")
    reader = ArchiveReader(tmp_path / "a")
    with pytest.raises(ArchiveError, match="must be before end"):
        reader.records(5.0, 5.0)
    with pytest.raises(ArchiveError, match="NaN"):
        reader.count(float("nan"))
    with pytest.raises(ArchiveError, match="list of strings"):
        reader.records(nodes="a")


def test_stray_files_are_ignored(tmp_path: Path) -> None:
    with ArchiveWriter(tmp_path) as w:
        w.append(1.0, "odc/sat/a/telemetry", b"x")
    (tmp_path / "README").write_text("notes")
    (tmp_path / "seg-x.odca").write_bytes(b"junk")
    with ArchiveReader(tmp_path) as reader:
        assert [r.payload for r in reader.records()] == [b"x"]
        assert reader.recovery == ()
