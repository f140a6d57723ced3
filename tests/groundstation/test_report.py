"""The mission report PNG: one row of panels per node, eclipses shaded, readable labels."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib.image as mpimg
import numpy as np
import pytest
from matplotlib.collections import PolyCollection
from matplotlib.patches import Rectangle

from flightsw.archive import ArchiveReader, ArchiveWriter
from flightsw.protocol import dump, topics
from groundstation.exceptions import ReplayError
from groundstation.report import build_report, write_report
from hardware_profiles import load_profile

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def test_report_png_has_a_row_per_node(mission: Any, tmp_path: Path) -> None:
    out = tmp_path / "report.png"
    summary = write_report(ArchiveReader(mission.path), out)
    assert out.read_bytes()[:8] == PNG_MAGIC
    image = mpimg.imread(out)
    assert image.shape[1] > 1500
    assert image.shape[0] > 3 * 250  # rows stack vertically
    assert summary.nodes == ["sat-001", "sat-002", "sat-003"]
    n_tel = sum(1 for r in mission.records if r[1].endswith("/telemetry"))
    assert summary.samples == n_tel
    assert summary.results == sum(1 for r in mission.records if r[1].endswith("/result"))


def test_figure_layout_titles_and_eclipses(mission: Any) -> None:
    fig, summary = build_report(ArchiveReader(mission.path))
    rows = fig.subfigs
    assert len(rows) == len(summary.nodes) == 3
    for row, (node, profile) in zip(rows, mission.nodes.items(), strict=True):
        title = row.get_suptitle()
        assert node in title
        assert profile in title
        axes = row.axes
        assert [a.get_ylabel() for a in axes] == [
            "SoC [%]", "Temperature [°C]", "Power mode", "Jobs completed"]
        # 3 hours of a 95.65 min orbit with 37 % eclipse: two eclipses (the second
        # cut by the end of the run), shaded in every panel
        for ax in axes:
            spans = [p for p in ax.patches if isinstance(p, Rectangle)]
            assert len(spans) == 2
        labels = [t.get_text() for t in axes[2].get_yticklabels()]
        assert labels == ["low", "balanced", "max"]  # ordered by load
        assert {line.get_label() for line in axes[3].get_lines()} == {
            "jobs_done (telemetry)", "results archived"}
    assert "hours since 2026-09-21T14:13:20Z" in rows[-1].axes[0].get_xlabel()


def test_node_selection_and_row_limit(mission: Any) -> None:
    _, one = build_report(ArchiveReader(mission.path), nodes=["sat-002"])
    assert one.nodes == ["sat-002"]
    fig, two = build_report(ArchiveReader(mission.path), max_nodes=2)
    assert two.nodes == ["sat-001", "sat-002"]
    assert two.omitted_nodes == 1
    assert "1 more nodes with telemetry not shown" in fig.get_suptitle()


def test_no_telemetry_is_a_clear_error(tmp_path: Path) -> None:
    with ArchiveWriter(tmp_path / "a") as w:
        w.append(1.0, "odc/sat/x/result", b"\xc1")
    with pytest.raises(ReplayError, match="no telemetry to report"):
        write_report(ArchiveReader(tmp_path / "a"), tmp_path / "r.png")
    with pytest.raises(ReplayError, match=r"for nodes \['y'\]"):
        write_report(ArchiveReader(tmp_path / "a"), tmp_path / "r.png", nodes=["y"])


def test_limits_contact_failures_and_one_scale(tmp_path: Path, mission_writer: Any) -> None:
    """Floor, throttle and max of each packaged profile drawn; contact windows along the
    bottom; failed results marked; like panels share one y-range across rows."""
    nodes = {"sat-a": "jetson-orin-nano-super", "sat-b": "starcloud-h100"}
    log = mission_writer.write(tmp_path / "a", nodes=nodes, hours=1.0, period_s=60.0)
    t_fail = mission_writer.EPOCH + 1800.0
    failed = mission_writer.result("sat-a", 999, t_fail, np.random.default_rng(0))
    failed = failed.model_copy(update={"status": "failed", "reason": "deadline expired",
                                       "outputs": {}})
    with ArchiveWriter(tmp_path / "a") as w:  # appends a segment after the mission's
        w.append(t_fail, topics.result("sat-a"), dump(failed))
    assert log.records
    fig, _ = build_report(ArchiveReader(tmp_path / "a"))
    rows = {row.get_suptitle().split()[0]: row.axes for row in fig.subfigs}
    for node, profile in nodes.items():
        p = load_profile(profile)
        soc, temp, _, _ = rows[node]
        assert {round(y, 6) for line in soc.get_lines() if len(set(line.get_ydata())) == 1
                for y in line.get_ydata()} == {round(p.bus.dod_floor * 100, 6)}
        flat = {float(line.get_ydata()[0]) for line in temp.get_lines()
                if len(set(line.get_ydata())) == 1}
        assert flat == {p.thermal.throttle_c, p.thermal.max_c}
        assert any(isinstance(c, PolyCollection) for c in soc.collections)  # contact bar
    assert rows["sat-a"][1].get_ylim() == rows["sat-b"][1].get_ylim()
    assert rows["sat-a"][3].get_ylim() == rows["sat-b"][3].get_ylim()
    marks = [c for c in rows["sat-a"][3].collections if c.get_label() == "failed"]
    assert len(marks) == 1 and len(marks[0].get_offsets()) == 1
    assert not [c for c in rows["sat-b"][3].collections if c.get_label() == "failed"]


def test_fleet_bands_when_more_nodes_than_rows(mission: Any) -> None:
    fig, summary = build_report(ArchiveReader(mission.path), max_nodes=2)
    assert summary.omitted_nodes == 1
    titles = [sf.get_suptitle() for sf in fig.subfigs]
    assert len(titles) == 3 and titles[-1].startswith("Fleet: all 3 nodes")
    soc_ax = fig.subfigs[-1].axes[0]
    (median,) = soc_ax.get_lines()
    band = soc_ax.collections[0].get_paths()[0].vertices[:, 1]
    y = median.get_ydata()
    assert np.nanmin(y) >= band.min() - 1e-9 and np.nanmax(y) <= band.max() + 1e-9
    assert 40 < np.nanmedian(y) < 90  # the synthetic missions' SoC swings 45-85 %
    fig_all, _ = build_report(ArchiveReader(mission.path))
    assert not any(sf.get_suptitle().startswith("Fleet") for sf in fig_all.subfigs)
