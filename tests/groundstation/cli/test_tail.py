"""``groundstation tail``'s two renderings: plain lines under a header, and the rich table."""

from __future__ import annotations

from rich.console import Console

from flightsw.protocol import Telemetry
from groundstation.cli.tail import header, line, table


def _tm(node: str, **kw: object) -> Telemetry:
    base: dict[str, object] = {
        "seq": 1, "t": 1_790_000_000.0, "profile": "jetson-agx-orin", "lat_deg": 1.0,
        "lon_deg": 2.0, "alt_km": 550.0, "sunlit": 1.0, "beta_deg": 0.0, "solar_w": 80.0,
        "load_w": 40.5, "battery_wh": 90.0, "soc": 0.87, "temperature_c": 21.25,
        "power_mode": "60W", "safe_mode": False, "paused": False, "queue_depth": 3,
        "jobs_running": 1, "jobs_done": 12, "jobs_failed": 0, "energy_used_j": 1.0,
        "upsets": 0,
    }
    return Telemetry(node=node, **(base | kw))  # type: ignore[arg-type]


def test_plain_line_sits_under_its_header() -> None:
    head, row = header(), line(_tm("sat-1"))
    assert head.split()[:3] == ["node", "profile", "mission"]
    # every value ends where its right-aligned column title ends
    assert row.index("87%") + 3 == head.index("soc") + 3
    assert row.startswith("sat-1 ") and "2026-09-21T" in row and "60W" in row


def test_rich_table_lists_every_node_sorted() -> None:
    console = Console(record=True, width=200, color_system=None)
    console.print(table({"sat-2": _tm("sat-2", safe_mode=True), "sat-1": _tm("sat-1")}))
    text = console.export_text()
    lines = [ln for ln in text.splitlines() if ln.strip()]
    assert lines[0].split()[:2] == ["node", "profile"]
    assert lines[1].startswith("sat-1") and lines[2].startswith("sat-2")
    assert "YES" in lines[2] and "-" in lines[1]
