"""``/metrics`` for Prometheus: per-node gauges read from the fleet at scrape time, and the
services' counters (messages ingested, archive bytes, HTTP request latency).

Per-node figures are collected when Prometheus scrapes, not updated per message, so a
200-node constellation at 1 Hz costs the console nothing between scrapes.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

from prometheus_client import CollectorRegistry, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from groundstation.console.alarms import AlarmBook
from groundstation.console.fleet import Fleet

__all__ = ["CONTENT_TYPE", "ConsoleMetrics"]

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


def _dir_bytes(path: Path) -> int:
    try:
        return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
    except OSError:
        return 0


class _FleetCollector(Collector):
    def __init__(self, m: ConsoleMetrics) -> None:
        self.m = m

    def collect(self) -> Iterator[Metric]:
        m = self.m
        per_node = [
            ("odc_node_soc_ratio", "state of charge, fraction of capacity", "soc"),
            ("odc_node_temperature_celsius", "node temperature", "temperature_c"),
            ("odc_node_queue_depth", "jobs queued on the node", "queue_depth"),
            ("odc_node_load_watts", "electrical load", "load_w"),
        ]
        rows = [r for r in m.fleet.rows.values() if r.telemetry is not None]
        for name, doc, attr in per_node:
            g = GaugeMetricFamily(name, doc, labels=["node", "profile"])
            for r in rows:
                assert r.telemetry is not None
                g.add_metric([r.node, r.telemetry.profile], float(getattr(r.telemetry, attr)))
            yield g
        for name, doc, attr in (
            ("odc_node_jobs_done", "jobs the node finished", "jobs_done"),
            ("odc_node_jobs_failed", "jobs the node failed", "jobs_failed"),
            ("odc_node_upsets", "radiation upsets on the node", "upsets"),
        ):
            c = CounterMetricFamily(name, doc, labels=["node", "profile"])
            for r in rows:
                assert r.telemetry is not None
                c.add_metric([r.node, r.telemetry.profile], float(getattr(r.telemetry, attr)))
            yield c
        up = GaugeMetricFamily("odc_node_online", "1 if the node's status is online or safe",
                               labels=["node"])
        for r in m.fleet.rows.values():
            up.add_metric([r.node], 1.0 if r.status in ("online", "safe") else 0.0)
        yield up
        ing = CounterMetricFamily("odc_console_messages_ingested", "messages the console received")
        ing.add_metric([], float(m.ingested()))
        yield ing
        rej = CounterMetricFamily(
            "odc_console_messages_rejected",
            "node messages the console refused: unsealed, forged or replayed (with node keys)",
        )
        rej.add_metric([], float(m.rejected()))
        yield rej
        if m.ground_ingested is not None:
            g_ing = CounterMetricFamily(
                "odc_ground_messages_ingested", "messages the ground station archived"
            )
            g_ing.add_metric([], float(m.ground_ingested()))
            yield g_ing
        ab = GaugeMetricFamily("odc_archive_bytes", "bytes of the telemetry archive on disk")
        ab.add_metric([], float(_dir_bytes(m.archive_dir)))
        yield ab
        al = GaugeMetricFamily("odc_alarms", "alarms listed", labels=["level"])
        for level, n in m.alarms.counts().items():
            al.add_metric([level], float(n))
        yield al


class ConsoleMetrics:
    def __init__(
        self,
        fleet: Fleet,
        alarms: AlarmBook,
        archive_dir: Path,
        ingested: Callable[[], int],
        ground_ingested: Callable[[], int] | None = None,
        rejected: Callable[[], int] = lambda: 0,
    ) -> None:
        self.rejected = rejected
        self.fleet = fleet
        self.alarms = alarms
        self.archive_dir = archive_dir
        self.ingested = ingested
        self.ground_ingested = ground_ingested
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(_FleetCollector(self))
        self.request_seconds = Histogram(
            "odc_console_request_seconds",
            "HTTP request latency of the console API",
            ["route", "method"],
            registry=self.registry,
        )

    def render(self) -> bytes:
        return generate_latest(self.registry)
