"""Export archived messages to JSON Lines, CSV or Parquet, and load such exports back.

Every format holds *rows*: ``rx_t`` (mission time at reception) and ``rx_topic`` followed
by the fields of the decoded message. The rules that make every field round-trip (see
``docs/archive.md``):

* floats are written with ``repr`` (shortest text that reads back to the same double);
* ``bytes`` (tensor data, model chunks) become ``{"$base64": "..."}`` inside JSON and
  base64 text in a CSV ``bytes`` column; nested maps and lists are JSON text in CSV and
  Parquet cells;
* CSV and Parquet hold one message kind per file (``telemetry`` by default) with the
  columns of its protocol model. A value that does not fit its column's type (an integer
  where the model says float, an empty string in a nullable text column, a field the
  model does not know) goes to the ``_extra`` JSON column instead, and fields absent
  from a message are listed there under ``$missing``, so the loader rebuilds the message
  exactly. An empty CSV cell is ``null``.
* a payload that is not a msgpack map is kept in JSON Lines as ``rx_raw`` (base64) with
  ``rx_error``; CSV and Parquet skip it (counted in :attr:`ExportStats.undecodable`).
* CSV and Parquet also carry the times as times, beside the seconds: ``rx_utc`` (of
  ``rx_t``) and ``t_utc`` (of the message's ``t``, when it has one), ISO 8601 UTC text
  with microseconds in CSV and ``timestamp[us, UTC]`` in Parquet. They are derived, so the
  loader drops them.
"""

from __future__ import annotations

import base64
import csv
import json
import math
import sys
import types
from collections.abc import Callable, Iterable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, TextIO, Union, get_args, get_origin

from flightsw.archive import ArchiveReader, Record, decode_record
from flightsw.exceptions import ArchiveError
from flightsw.protocol import messages
from flightsw.timeutil import format_iso
from groundstation.exceptions import ReplayError

__all__ = [
    "FORMATS",
    "ExportStats",
    "Format",
    "export",
    "load",
    "record_row",
    "rows_equal",
]

Format = Literal["jsonl", "csv", "parquet"]
FORMATS: tuple[Format, ...] = ("jsonl", "csv", "parquet")
ColumnType = Literal["float", "int", "bool", "str", "bytes", "json"]

_B64 = "$base64"
_MISSING = "$missing"
_EXTRA = "_extra"
_TIMES = ("rx_utc", "t_utc")  # derived from rx_t and the message's t; dropped on load
_BATCH = 65_536
_INT64 = 2**63


@dataclass(frozen=True, slots=True)
class ExportStats:
    rows: int
    skipped: int  # records of another kind (CSV, Parquet)
    undecodable: int  # payloads that are not msgpack maps


# --- message schemas -------------------------------------------------------------------


def _models() -> dict[str, type[messages.Message]]:
    out = {}
    for name in messages.__all__:
        cls = getattr(messages, name)
        if isinstance(cls, type) and issubclass(cls, messages.Message):
            kind_field = cls.model_fields.get("kind")
            if kind_field is not None and isinstance(kind_field.default, str):
                out[kind_field.default] = cls
    return out


_MODELS = _models()


def _column_type(annotation: Any) -> tuple[ColumnType, bool]:
    """(type, nullable) of a model field annotation."""
    nullable = False
    origin = get_origin(annotation)
    if origin in (Union, types.UnionType):
        args = get_args(annotation)
        rest = [a for a in args if a is not type(None)]
        nullable = len(rest) < len(args)
        if len(rest) != 1:
            return "json", nullable
        annotation = rest[0]
        origin = get_origin(annotation)
    if origin is Literal:
        values = get_args(annotation)
        if all(isinstance(v, str) for v in values):
            return "str", nullable
        return "json", nullable
    simple: dict[Any, ColumnType] = {bool: "bool", int: "int", float: "float", str: "str",
                                     bytes: "bytes"}
    return simple.get(annotation, "json"), nullable


@dataclass(frozen=True, slots=True)
class _Schema:
    kind: str
    columns: tuple[str, ...]
    types: tuple[ColumnType, ...]
    nullable: tuple[bool, ...]


def _schema(kind: str) -> _Schema:
    model = _MODELS.get(kind)
    if model is None:
        raise ReplayError(
            f"kind: {kind!r} has no protocol schema for CSV/Parquet columns (known: "
            f"{', '.join(sorted(_MODELS))}); export it as jsonl"
        )
    names, kinds, nulls = [], [], []
    for name, info in model.model_fields.items():
        ctype, nullable = _column_type(info.annotation)
        names.append(name)
        kinds.append(ctype)
        nulls.append(nullable)
    return _Schema(kind, tuple(names), tuple(kinds), tuple(nulls))


def _fits(value: Any, ctype: ColumnType, nullable: bool) -> bool:
    """Whether ``value`` can sit in a typed cell and read back identical."""
    if value is None:
        return nullable or ctype == "json"
    if ctype == "float":
        return type(value) is float
    if ctype == "int":
        return type(value) is int and -_INT64 <= value < _INT64
    if ctype == "bool":
        return type(value) is bool
    if ctype == "str":
        # an empty CSV cell means null; "" must not be mistaken for it
        return type(value) is str and (value != "" or not nullable)
    if ctype == "bytes":
        return type(value) is bytes
    return True


# --- JSON with bytes -------------------------------------------------------------------


def _json_default(obj: Any) -> Any:
    if isinstance(obj, bytes | bytearray | memoryview):
        return {_B64: base64.b64encode(bytes(obj)).decode("ascii")}
    raise TypeError(f"{type(obj).__name__} is not JSON serialisable")


def _json_hook(obj: dict[str, Any]) -> Any:
    if len(obj) == 1 and _B64 in obj:
        return base64.b64decode(obj[_B64])
    return obj


def _dumps(obj: Any) -> str:
    return json.dumps(obj, default=_json_default, separators=(",", ":"), ensure_ascii=False)


def _loads(text: str) -> Any:
    return json.loads(text, object_hook=_json_hook)


# --- rows ------------------------------------------------------------------------------


def record_row(record: Record) -> dict[str, Any]:
    """The canonical row of a record: ``rx_t``, ``rx_topic`` and the message fields.

    For a payload that is not a msgpack map: ``rx_raw`` (the bytes) and ``rx_error``.
    """
    row: dict[str, Any] = {"rx_t": record.t, "rx_topic": record.topic}
    try:
        row.update(decode_record(record))
    except ArchiveError as exc:
        row["rx_raw"] = record.payload
        row["rx_error"] = str(exc)
    return row


def _split(msg: dict[str, Any], schema: _Schema) -> tuple[list[Any], dict[str, Any] | None]:
    """Cell values (None where absent or moved) and the ``_extra`` map, if needed."""
    cells: list[Any] = []
    extra: dict[str, Any] = {}
    missing = []
    for name, ctype, nullable in zip(schema.columns, schema.types, schema.nullable,
                                     strict=True):
        if name not in msg:
            missing.append(name)
            cells.append(None)
            continue
        value = msg[name]
        if _fits(value, ctype, nullable):
            cells.append(value)
        else:
            extra[name] = value
            cells.append(None)
    if len(msg) != len(schema.columns) - len(missing):
        known = set(schema.columns)
        extra.update({k: v for k, v in msg.items() if k not in known})
    if missing:
        extra[_MISSING] = missing
    return cells, extra or None


def _merge(row: dict[str, Any], extra: dict[str, Any] | None) -> dict[str, Any]:
    if extra:
        missing = extra.pop(_MISSING, [])
        row.update(extra)
        for name in missing:
            row.pop(name, None)
    return row


# --- writers ---------------------------------------------------------------------------


def _csv_cell(value: Any, ctype: ColumnType) -> str:
    if value is None:
        return ""
    if ctype == "json":
        return _dumps(value)
    if ctype == "float":
        return repr(value)
    if ctype == "bool":
        return "true" if value else "false"
    if ctype == "bytes":
        return base64.b64encode(value).decode("ascii")
    return str(value)


def _parse_cell(text: str, ctype: ColumnType, nullable: bool) -> Any:
    if text == "":
        # "" sits in a cell only where null cannot (see _fits); else the value is in _extra
        return "" if ctype == "str" and not nullable else None
    if ctype == "json":
        return _loads(text)
    if ctype == "float":
        return float(text)
    if ctype == "int":
        return int(text)
    if ctype == "bool":
        if text not in ("true", "false"):
            raise ValueError(f"{text!r} is not true/false")
        return text == "true"
    if ctype == "bytes":
        return base64.b64decode(text, validate=True)
    return text


class _Sink:
    def write(self, record: Record) -> int:
        """Export one record; returns 1 if written, 0 if skipped, -1 if undecodable."""
        raise NotImplementedError

    def close(self) -> None:
        return None


class _JsonlSink(_Sink):
    def __init__(self, stream: TextIO, kind: str | None) -> None:
        self.stream = stream
        self.kind = kind

    def write(self, record: Record) -> int:
        row = record_row(record)
        if "rx_error" in row:
            if self.kind is not None:
                return -1
            self.stream.write(_dumps(row) + "\n")
            return -1
        if self.kind is not None and row.get("kind") != self.kind:
            return 0
        self.stream.write(_dumps(row) + "\n")
        return 1


class _CsvSink(_Sink):
    def __init__(self, stream: TextIO, schema: _Schema) -> None:
        self.schema = schema
        self.writer = csv.writer(stream, lineterminator="\n")
        self.writer.writerow(["rx_t", "rx_topic", *schema.columns, *_TIMES, _EXTRA])

    def write(self, record: Record) -> int:
        row = record_row(record)
        if "rx_error" in row:
            return -1
        if row.get("kind") != self.schema.kind:
            return 0
        del row["rx_t"], row["rx_topic"]
        t = _finite(row.get("t"))
        cells, extra = _split(row, self.schema)
        self.writer.writerow([
            repr(record.t), record.topic,
            *(_csv_cell(v, c) for v, c in zip(cells, self.schema.types, strict=True)),
            _iso(record.t), "" if t is None else _iso(t),
            "" if extra is None else _dumps(extra),
        ])
        return 1


def _pyarrow() -> tuple[Any, Any]:
    """pyarrow and pyarrow.parquet, imported when a Parquet file is written or read: they
    are the ``parquet`` extra (``pip install 'orbital-dc-emulator[parquet]'``)."""
    try:
        import pyarrow as pa  # noqa: PLC0415
        import pyarrow.parquet as pq  # noqa: PLC0415
    except ImportError as exc:
        raise ReplayError(
            "parquet needs pyarrow, an optional dependency: "
            "pip install 'orbital-dc-emulator[parquet]' (or export --to csv or jsonl)"
        ) from exc
    return pa, pq


class _ParquetSink(_Sink):
    def __init__(self, path: Path, schema: _Schema) -> None:
        pa, pq = _pyarrow()
        self.pa = pa
        self.schema = schema
        arrow = {"float": pa.float64(), "int": pa.int64(), "bool": pa.bool_(),
                 "str": pa.string(), "bytes": pa.binary(), "json": pa.string()}
        fields = [pa.field("rx_t", pa.float64(), nullable=False),
                  pa.field("rx_topic", pa.string(), nullable=False)]
        fields += [pa.field(n, arrow[c]) for n, c in zip(schema.columns, schema.types,
                                                          strict=True)]
        utc = pa.timestamp("us", tz="UTC")
        fields += [pa.field(_TIMES[0], utc, nullable=False), pa.field(_TIMES[1], utc)]
        fields.append(pa.field(_EXTRA, pa.string()))
        meta = {"odc.kind": schema.kind,
                "odc.json_columns": ",".join(n for n, c in zip(schema.columns, schema.types,
                                                               strict=True) if c == "json")}
        self.arrow_schema = pa.schema(fields, metadata=meta)
        try:
            self.writer = pq.ParquetWriter(str(path), self.arrow_schema)
        except (OSError, pa.ArrowException) as exc:
            raise ReplayError(f"--out {path}: cannot write parquet: {exc}") from exc
        self.cols: list[list[Any]] = [[] for _ in fields]

    def write(self, record: Record) -> int:
        row = record_row(record)
        if "rx_error" in row:
            return -1
        if row.get("kind") != self.schema.kind:
            return 0
        del row["rx_t"], row["rx_topic"]
        t = _finite(row.get("t"))
        cells, extra = _split(row, self.schema)
        cols = self.cols
        cols[0].append(record.t)
        cols[1].append(record.topic)
        for i, (v, c) in enumerate(zip(cells, self.schema.types, strict=True), start=2):
            cols[i].append(_dumps(v) if c == "json" and v is not None else v)
        cols[-3].append(_micros(record.t))
        cols[-2].append(None if t is None else _micros(t))
        cols[-1].append(None if extra is None else _dumps(extra))
        if len(cols[0]) >= _BATCH:
            self._flush()
        return 1

    def _flush(self) -> None:
        pa = self.pa
        if self.cols[0]:
            arrays = [pa.array(col, type=f.type)
                      for col, f in zip(self.cols, self.arrow_schema, strict=True)]
            self.writer.write_table(pa.Table.from_arrays(arrays, schema=self.arrow_schema))
            for col in self.cols:
                col.clear()

    def close(self) -> None:
        try:
            self._flush()
        finally:
            self.writer.close()


def _finite(value: Any) -> float | None:
    """The message's time field when it is a usable one."""
    if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value):
        return float(value)
    return None


def _micros(t: float) -> int:
    """POSIX seconds to integer microseconds (Parquet ``timestamp[us]``)."""
    return round(t * 1_000_000)


def _iso(t: float) -> str:
    """POSIX seconds to ISO 8601 UTC, microseconds, trailing ``Z``."""
    try:
        return format_iso(t, timespec="microseconds")
    except (OverflowError, ValueError, OSError):
        return ""  # beyond what a calendar date holds; the seconds column still has it


def export(
    reader: ArchiveReader,
    fmt: str,
    out: str | Path | TextIO,
    *,
    kind: str | None = None,
    nodes: Iterable[str] | None = None,
    start: float | None = None,
    end: float | None = None,
    topics: Iterable[str] | None = None,
    progress: Callable[[int], None] | None = None,
) -> ExportStats:
    """Write the selected records to ``out`` (a path, ``"-"`` for stdout, or a text stream).

    ``kind`` keeps one message kind; JSON Lines exports every kind by default, CSV and
    Parquet default to ``telemetry``. ``progress`` is called with the number of records
    read so far (every 1024 and at the end).
    """
    if fmt not in FORMATS:
        raise ReplayError(f"format: {fmt!r} is not one of {', '.join(FORMATS)}")
    if fmt == "parquet" and not isinstance(out, str | Path):
        raise ReplayError("--out: parquet needs a file path")
    if fmt == "parquet" and str(out) == "-":
        raise ReplayError("--out: parquet cannot go to stdout; give a file name")
    with ExitStack() as stack:
        sink: _Sink
        if fmt == "parquet":
            assert isinstance(out, str | Path)
            sink = _ParquetSink(Path(out), _schema(kind or "telemetry"))
        else:
            stream = _open_text(out, stack)
            if fmt == "csv":
                sink = _CsvSink(stream, _schema(kind or "telemetry"))
            else:
                sink = _JsonlSink(stream, kind)
        stack.callback(sink.close)
        rows = skipped = bad = seen = 0
        try:
            records = reader.records(start, end, topics=topics, nodes=nodes)
        except ArchiveError as exc:
            raise ReplayError(str(exc)) from exc
        for record in records:
            status = sink.write(record)
            if status > 0:
                rows += 1
            elif status == 0:
                skipped += 1
            else:
                bad += 1
            seen += 1
            if progress is not None and not seen & 1023:
                progress(seen)
        if progress is not None:
            progress(seen)
    return ExportStats(rows=rows, skipped=skipped, undecodable=bad)


def _open_text(out: str | Path | TextIO, stack: ExitStack) -> TextIO:
    if not isinstance(out, str | Path):
        return out
    if str(out) == "-":
        return sys.stdout
    try:
        return stack.enter_context(Path(out).open("w", encoding="utf-8", newline=""))
    except OSError as exc:
        raise ReplayError(f"--out {out}: cannot write: {exc}") from exc


# --- loaders ---------------------------------------------------------------------------


def load(path: str | Path, fmt: str) -> Iterator[dict[str, Any]]:
    """Rows of an export, with every field as it was in the archived message."""
    if fmt == "jsonl":
        return _load_jsonl(Path(path))
    if fmt == "csv":
        return _load_csv(Path(path))
    if fmt == "parquet":
        return _load_parquet(Path(path))
    raise ReplayError(f"format: {fmt!r} is not one of {', '.join(FORMATS)}")


def _load_jsonl(path: Path) -> Iterator[dict[str, Any]]:
    with path.open(encoding="utf-8") as f:
        for line in f:
            if line.strip():
                row: dict[str, Any] = _loads(line)
                yield row


def _load_csv(path: Path) -> Iterator[dict[str, Any]]:
    with path.open(encoding="utf-8", newline="") as f:
        reader = csv.reader(f)
        header = next(reader)
        schema: _Schema | None = None
        for n, cells in enumerate(reader, start=2):
            if schema is None:
                schema = _schema(cells[header.index("kind")] if "kind" in header else "")
                if list(header) != ["rx_t", "rx_topic", *schema.columns, *_TIMES, _EXTRA]:
                    raise ReplayError(f"{path}: columns do not match the {schema.kind} schema")
            try:
                row: dict[str, Any] = {"rx_t": float(cells[0]), "rx_topic": cells[1]}
                for name, ctype, nullable, text in zip(
                    schema.columns, schema.types, schema.nullable, cells[2:-3], strict=True
                ):
                    row[name] = _parse_cell(text, ctype, nullable)
                yield _merge(row, _loads(cells[-1]) if cells[-1] else None)
            except (ValueError, IndexError) as exc:
                raise ReplayError(f"{path}:{n}: {exc}") from exc


def _load_parquet(path: Path) -> Iterator[dict[str, Any]]:
    _, pq = _pyarrow()
    pf = pq.ParquetFile(str(path))
    meta = pf.schema_arrow.metadata or {}
    json_cols = set(meta.get(b"odc.json_columns", b"").decode().split(",")) - {""}
    for batch in pf.iter_batches():
        for raw in batch.to_pylist():
            for name in _TIMES:
                raw.pop(name, None)
            extra = raw.pop(_EXTRA)
            for name in json_cols:
                if raw[name] is not None:
                    raw[name] = _loads(raw[name])
            yield _merge(raw, _loads(extra) if extra else None)


def rows_equal(a: dict[str, Any], b: dict[str, Any]) -> bool:
    """Row equality where NaN equals NaN (exports keep NaN; ``==`` does not)."""
    if a.keys() != b.keys():
        return False
    return all(_same(a[k], b[k]) for k in a)


def _same(x: Any, y: Any) -> bool:
    if isinstance(x, float) and isinstance(y, float):
        return x == y or (math.isnan(x) and math.isnan(y))
    if isinstance(x, dict) and isinstance(y, dict):
        return rows_equal(x, y)
    if isinstance(x, list) and isinstance(y, list):
        return len(x) == len(y) and all(_same(p, q) for p, q in zip(x, y, strict=True))
    return bool(type(x) is type(y) and x == y)
