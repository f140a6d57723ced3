"""Export round trips: every field of every exported message reads back identical."""

from __future__ import annotations

import csv
import io
import math
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow.parquet as pq
import pytest

from flightsw.archive import ArchiveReader, ArchiveWriter, decode_record
from flightsw.protocol import JobResult, encode, parse
from flightsw.timeutil import format_iso, parse_iso
from groundstation.exceptions import ReplayError
from groundstation.export import export, load


def _typed(x: Any) -> Any:
    """A structure that compares types too (True != 1, 1 != 1.0) and NaN equal to NaN."""
    if isinstance(x, dict):
        return ("dict", sorted((k, _typed(v)) for k, v in x.items()))
    if isinstance(x, list):
        return ("list", [_typed(v) for v in x])
    if isinstance(x, float) and math.isnan(x):
        return ("float", "nan")
    return (type(x).__name__, x)


def _expected(path: Path, kind: str | None, **sel: Any) -> list[dict[str, Any]]:
    out = []
    for rec in ArchiveReader(path).records(**sel):
        msg = decode_record(rec)
        if kind is None or msg.get("kind") == kind:
            out.append({"rx_t": rec.t, "rx_topic": rec.topic, **msg})
    return out


@pytest.mark.parametrize(
    ("fmt", "kind"),
    [("jsonl", None), ("csv", "telemetry"), ("csv", "result"), ("csv", "status"),
     ("parquet", "telemetry"), ("parquet", "result"), ("parquet", "status")],
)
def test_round_trip(mission: Any, tmp_path: Path, fmt: str, kind: str | None) -> None:
    out = tmp_path / f"export.{fmt}"
    ticks: list[int] = []
    stats = export(ArchiveReader(mission.path), fmt, out, kind=kind, progress=ticks.append)
    want = _expected(mission.path, kind)
    got = list(load(out, fmt))
    assert stats.rows == len(want) == len(got) > 0
    assert stats.rows + stats.skipped == len(mission.records)
    assert ticks[-1] == len(mission.records)
    assert _typed(got) == _typed(want)


def test_tensors_survive_csv(mission: Any, tmp_path: Path) -> None:
    out = tmp_path / "results.csv"
    export(ArchiveReader(mission.path), "csv", out, kind="result")
    with out.open() as f:
        header = next(csv.reader(f))
    assert header[:3] == ["rx_t", "rx_topic", "kind"] and "job_id" in header
    assert "outputs" in header
    archived = [r for r in ArchiveReader(mission.path).records() if r.leaf == "result"]
    for rec, row in zip(archived, load(out, "csv"), strict=True):
        original = parse(JobResult, rec.payload).arrays()
        reread = JobResult.model_validate({k: v for k, v in row.items()
                                           if not k.startswith("rx_")}).arrays()
        np.testing.assert_array_equal(reread["logits"], original["logits"])
        assert reread["logits"].dtype == np.float32


def test_csv_columns_are_telemetry_fields(mission: Any, tmp_path: Path) -> None:
    buf = io.StringIO()
    export(ArchiveReader(mission.path), "csv", buf, nodes=["sat-002"])
    rows = list(csv.DictReader(io.StringIO(buf.getvalue())))
    assert {r["node"] for r in rows} == {"sat-002"}
    assert 0.0 < float(rows[0]["soc"]) < 1.0
    assert rows[0]["safe_mode"] == "false"
    assert rows[0]["_extra"] == ""


def test_parquet_has_typed_columns(mission: Any, tmp_path: Path) -> None:
    out = tmp_path / "t.parquet"
    export(ArchiveReader(mission.path), "parquet", out)
    table = pq.read_table(out)
    assert str(table.schema.field("soc").type) == "double"
    assert str(table.schema.field("seq").type) == "int64"
    assert str(table.schema.field("safe_mode").type) == "bool"
    assert table.schema.metadata[b"odc.kind"] == b"telemetry"
    assert table.num_rows == sum(1 for r in mission.records if r[1].endswith("/telemetry"))


def test_odd_values_round_trip_through_every_format(tmp_path: Path, mission_writer: Any) -> None:
    base = mission_writer.telemetry("sat-9", "h100-sxm", 1, mission_writer.EPOCH)
    plain = base.model_dump()
    odd = [
        plain,
        {**plain, "soc": math.nan, "temperature_c": -math.inf, "alt_km": 5},  # int in float
        {**plain, "power_mode": "", "profile": "ünïcødé, \"quoted\"\nnewline"},
        {**plain, "future_field": {"blob": b"\x00\xff", "n": [1, 2.5, None]}},
        {k: v for k, v in plain.items() if k not in ("migrations_in", "in_contact")},
        {**plain, "queue_depth": True, "seq": 2**63 + 5},  # bool in int, uint64
    ]
    archive = tmp_path / "a"
    with ArchiveWriter(archive) as w:
        for i, msg in enumerate(odd):
            w.append(mission_writer.EPOCH + i, "odc/sat/sat-9/telemetry", encode(msg))
        w.append(mission_writer.EPOCH + 9, "odc/sat/sat-9/telemetry", b"\xc1 not msgpack")
    want = _expected_decodable(archive)
    for fmt in ("jsonl", "csv", "parquet"):
        out = tmp_path / f"odd.{fmt}"
        stats = export(ArchiveReader(archive), fmt, out, kind="telemetry")
        assert (stats.rows, stats.undecodable) == (len(odd), 1)
        got = list(load(out, fmt))
        assert len(got) == len(want)
        for g, x in zip(got, want, strict=True):
            diff = {k: (g.get(k), x.get(k)) for k in g.keys() | x.keys()
                    if _typed(g.get(k)) != _typed(x.get(k)) or (k in g) != (k in x)}
            assert not diff, (fmt, diff)


def _expected_decodable(path: Path) -> list[dict[str, Any]]:
    out = []
    for rec in ArchiveReader(path).records():
        if rec.payload.startswith(b"\xc1"):
            continue
        out.append({"rx_t": rec.t, "rx_topic": rec.topic, **decode_record(rec)})
    return out


def test_jsonl_keeps_undecodable_payloads(tmp_path: Path) -> None:
    with ArchiveWriter(tmp_path / "a") as w:
        w.append(1.0, "odc/sat/x/telemetry", b"\xc1\x00")
    out = tmp_path / "x.jsonl"
    stats = export(ArchiveReader(tmp_path / "a"), "jsonl", out)
    assert stats.undecodable == 1
    (row,) = load(out, "jsonl")
    assert row["rx_raw"] == b"\xc1\x00"
    assert "undecodable" in row["rx_error"]


def test_time_selection(mission: Any, tmp_path: Path) -> None:
    start = mission.records[0][0] + 1000.0
    end = start + 600.0
    out = tmp_path / "w.jsonl"
    export(ArchiveReader(mission.path), "jsonl", out, start=start, end=end)
    assert _typed(list(load(out, "jsonl"))) == _typed(
        _expected(mission.path, None, start=start, end=end))


@pytest.mark.parametrize(
    ("fmt", "kw", "message"),
    [
        ("xml", {}, "format: 'xml' is not one of jsonl, csv, parquet"),
        ("csv", {"kind": "gossip"}, "kind: 'gossip' has no protocol schema"),
        ("parquet", {"out": "-"}, "parquet cannot go to stdout"),
        ("jsonl", {"start": 5.0, "end": 1.0}, "must be before end"),
    ],
)
def test_bad_requests(mission: Any, tmp_path: Path, fmt: str, kw: dict[str, Any],
                      message: str) -> None:
    out = kw.pop("out", tmp_path / "x")
    with pytest.raises(ReplayError, match=message):
        export(ArchiveReader(mission.path), fmt, out, **kw)


def test_times_as_timestamps_beside_the_seconds(mission: Any, tmp_path: Path) -> None:
    """CSV: ISO 8601 UTC text; Parquet: timestamp[us, UTC]; the float seconds stay; the
    loader returns the messages without the derived columns."""
    reader = ArchiveReader(mission.path)
    archived = [r for r in reader.records() if r.leaf == "telemetry"]
    buf = io.StringIO()
    export(reader, "csv", buf)
    rows = list(csv.DictReader(io.StringIO(buf.getvalue())))
    for rec, row in zip(archived, rows, strict=True):
        assert float(row["rx_t"]) == rec.t
        assert row["rx_utc"] == format_iso(rec.t, timespec="microseconds")
        assert row["rx_utc"].endswith("Z") and "T" in row["rx_utc"]
        assert parse_iso(row["t_utc"]) == pytest.approx(float(row["t"]), abs=1e-6)
    out = tmp_path / "t.parquet"
    export(reader, "parquet", out)
    table = pq.read_table(out)
    for name in ("rx_utc", "t_utc"):
        assert str(table.schema.field(name).type) == "timestamp[us, tz=UTC]"
    assert str(table.schema.field("rx_t").type) == "double"
    first = table.slice(0, 1).to_pylist()[0]
    assert first["rx_utc"].timestamp() == pytest.approx(first["rx_t"], abs=1e-6)
    assert first["t_utc"].timestamp() == pytest.approx(first["t"], abs=1e-6)
    for fmt, path in (("parquet", out),):
        assert all("rx_utc" not in r and "t_utc" not in r for r in load(path, fmt))
