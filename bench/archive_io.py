"""Archive throughput: write and read records per second (``--json`` for machine output).

    .venv/bin/python bench/archive_io.py --records 500000 --json
"""

from __future__ import annotations

import itertools
import os
import shutil
import tempfile
from collections import deque
from pathlib import Path
from typing import Any

import numpy as np
from _common import emit, parser  # bench/ is on sys.path when run as a script

from flightsw.archive import ArchiveReader, ArchiveWriter
from flightsw.clock import WallClock


def _payloads(n_distinct: int, size: int, seed: int) -> list[bytes]:
    rng = np.random.default_rng(seed)
    return [rng.bytes(size) for _ in range(n_distinct)]


def run(records: int, payload_bytes: int, nodes: int, repeats: int) -> dict[str, Any]:
    clock = WallClock()
    payloads = _payloads(64, payload_bytes, seed=1)
    topics = [f"odc/sat/sat-{i:04d}/telemetry" for i in range(nodes)]
    rng = np.random.default_rng(2)
    # 1 Hz telemetry per node, received with up to 0.5 s of jitter (not strictly ordered)
    t = 1_790_000_000.0 + np.arange(records) / nodes + rng.uniform(0, 0.5, records)
    times = t.tolist()
    tmp = Path(tempfile.mkdtemp(prefix="odc-archive-bench-"))
    try:
        path = tmp / "archive"
        best_write = float("inf")
        for k in range(repeats):
            if path.exists():
                shutil.rmtree(path)
            t0 = clock.perf_counter()
            with ArchiveWriter(path) as w:
                append = w.append
                for i in range(records):
                    append(times[i], topics[i % nodes], payloads[i & 63])
            best_write = min(best_write, clock.perf_counter() - t0)
            del k
        size = sum(p.stat().st_size for p in path.glob("seg-*.odca"))

        t0 = clock.perf_counter()
        reader = ArchiveReader(path)
        open_s = clock.perf_counter() - t0

        def timed(fn: Any) -> tuple[float, int]:
            best, count = float("inf"), 0
            for _ in range(repeats):
                t0 = clock.perf_counter()
                count = fn()
                best = min(best, clock.perf_counter() - t0)
            return best, count

        def read_all() -> int:
            # count while consuming at C speed, so the figure is the reader's own rate
            counter = itertools.count()
            deque(zip(reader.records(), counter, strict=False), maxlen=0)
            return next(counter)

        read_s, n_read = timed(read_all)
        assert n_read == records, (n_read, records)
        lo = float(np.quantile(t, 0.45))
        hi = lo + (t.max() - t.min()) * 0.05
        range_s, n_range = timed(lambda: len(list(reader.records(lo, hi))))
        node_s, n_node = timed(lambda: len(list(reader.records(nodes=["sat-0001"]))))

        for p in path.glob("*.odci"):
            p.unlink()
        t0 = clock.perf_counter()
        rebuilt = ArchiveReader(path, write_index=False)
        rebuild_s = clock.perf_counter() - t0
        assert len(rebuilt) == records
        return {
            "records": records,
            "payload_bytes": payload_bytes,
            "nodes": nodes,
            "archive_bytes": size,
            "segments": len(reader.segments),
            "write_records_per_s": round(records / best_write),
            "write_mb_per_s": round(size / best_write / 1e6, 1),
            "read_records_per_s": round(records / read_s),
            "read_mb_per_s": round(size / read_s / 1e6, 1),
            "range_query_5pct_s": round(range_s, 4),
            "range_query_records": n_range,
            "node_filter_records_per_s_scanned": round(records / node_s),
            "node_filter_records": n_node,
            "open_with_index_s": round(open_s, 4),
            "open_rebuilding_index_s": round(rebuild_s, 3),
            "rebuild_records_per_s": round(records / rebuild_s),
            "repeats": repeats,
            "cpu_count": os.cpu_count(),
            "load_average_1min": round(os.getloadavg()[0], 2),
        }
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def main() -> None:
    ap = parser(__doc__ or "archive throughput")
    ap.add_argument("--records", type=int, default=500_000)
    ap.add_argument("--payload-bytes", type=int, default=200)
    ap.add_argument("--nodes", type=int, default=16)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    emit(run(args.records, args.payload_bytes, args.nodes, args.repeats), args.json)


if __name__ == "__main__":
    main()
