from __future__ import annotations

import io
import logging
from typing import Any

import numpy as np
import pytest
from rich.console import Console

from flightsw.protocol import JobEvent, Telemetry
from flightsw.timeutil import parse_iso
from groundstation.demo.plan import DemoPlan, plan_demo
from groundstation.demo.state import DemoState, JobTrack
from groundstation.demo.summary import DemoResult
from groundstation.demo.view import PlainView, TtyView, fmt_energy
from groundstation.protocol import JobRecord

EPOCH = parse_iso("2025-11-02T10:00:00Z")


@pytest.fixture(scope="module")
def plan() -> DemoPlan:
    return plan_demo(EPOCH, 3, 6000.0)


def tel(node: str, t: float, **over: Any) -> Telemetry:
    base: dict[str, Any] = {
        "node": node, "seq": 1, "t": t, "profile": "p", "lat_deg": 0.0, "lon_deg": 0.0,
        "alt_km": 550.0, "sunlit": 1.0, "beta_deg": 2.0, "solar_w": 80.0, "load_w": 30.0,
        "battery_wh": 50.0, "soc": 0.5, "temperature_c": 20.0, "power_mode": "8core",
        "safe_mode": False, "paused": False, "queue_depth": 2, "jobs_running": 1,
        "jobs_done": 4, "jobs_failed": 0, "energy_used_j": 1.0, "upsets": 0,
        "migrations_in": 1, "migrations_out": 2,
    }
    base.update(over)
    return Telemetry(**base)


def record(job_id: str, state: str, **over: Any) -> JobRecord:
    return JobRecord(job_id=job_id, model="m" * 64, state=state, **over)


def test_telemetry_transitions_become_events(plan: DemoPlan) -> None:
    st = DemoState(plan)
    st.on_telemetry(tel("sat1", EPOCH))
    st.on_telemetry(tel("sat1", EPOCH + 60, sunlit=0.0, soc=0.41))
    st.on_telemetry(tel("sat1", EPOCH + 120, sunlit=0.0, safe_mode=True, soc=0.29))
    st.on_telemetry(tel("sat1", EPOCH + 180, sunlit=1.0, safe_mode=False, soc=0.36))
    st.on_telemetry(tel("elsewhere", EPOCH + 180))  # another run's node on a shared broker
    texts = [e.text for e in st.events]
    assert texts == [
        "sat1 entered eclipse at 41% charge",
        "sat1 in SAFE MODE at 29% charge: compute stopped",
        "sat1 left eclipse: solar 80 W",
        "sat1 left safe mode at 36%",
    ]
    assert set(st.telemetry) == {"sat1"}
    assert [e.seq for e in st.events] == [1, 2, 3, 4]


def test_jobs_flow_and_figures(plan: DemoPlan) -> None:
    st = DemoState(plan)
    labels = np.array([1, 2, 3], dtype=np.int64)
    st.submitted(JobTrack("a" * 32, "classifier", 3, EPOCH, labels=labels))
    st.submitted(JobTrack("b" * 32, "embedder", 2, EPOCH))
    st.submitted(JobTrack("c" * 32, "detector", 4, EPOCH))
    assert st.on_record(record("z" * 32, "done"), EPOCH) is None  # not ours
    for jid in ("a" * 32, "b" * 32):
        st.on_record(record(jid, "uplinked", node="sat2"), EPOCH + 10)
    st.update_contacts(EPOCH + 20)
    ups = [e.text for e in st.events if e.text.startswith("uplink")]
    assert len(ups) == 1 and "uplink to sat2" in ups[0]
    assert "2 jobs (1 classifier, 1 embedder)" in ups[0]
    st.on_job_event(JobEvent(job_id="b" * 32, epoch=0, node="sat2", state="deferred",
                             t=EPOCH + 25, detail="energy: needs 0.001 Wh at mode 2core"))
    st.on_job_event(JobEvent(job_id="b" * 32, epoch=0, node="sat2", state="handed_over",
                             t=EPOCH + 30, detail="to sat3 (0.004 s transfer)", target="sat3"))
    assert st.jobs["b" * 32].node == "sat3" and st.handovers == 1
    texts = [e.text for e in st.events]
    assert f"job {'b' * 6} (embedder, 2 seq) deferred on sat2: no battery margin left " \
        "through the next eclipse" in texts
    assert f"job {'b' * 6} (embedder, 2 seq) migrated sat2 -> sat3 over ISL (4 ms transfer)" \
        in texts
    done = st.on_record(record("a" * 32, "done", node="sat2", modelled_energy_j=2e-6),
                        EPOCH + 40)
    assert done is not None and done.labels is not None
    done.correct = 2
    st.on_record(record("b" * 32, "done", node="sat3", migrations=1, modelled_energy_j=4e-6),
                 EPOCH + 50)
    st.on_record(record("c" * 32, "failed", node="sat1", reason="deadline expired"), EPOCH + 60)
    assert st.on_record(record("a" * 32, "done"), EPOCH + 70) is None  # once only
    assert st.counts() == {"submitted": 3, "done": 2, "failed": 1, "ground": 0, "onboard": 0}
    assert st.accuracy() == (2, 3)
    assert st.energy_per_job_j() == pytest.approx(3e-6)
    assert st.migrations() == 1
    assert any("FAILED on sat1: deadline expired" in e.text for e in st.events)
    assert st.failed_by_reason() == {"deadline expired": 1}


def test_failures_by_reason_in_events_log_and_summary(
    plan: DemoPlan, caplog: pytest.LogCaptureFixture
) -> None:
    """A job failing before it starts ("deadline expired before start") is an event, a line
    of demo.log and a line of the summary, grouped by reason."""
    st = DemoState(plan)
    for c in "abc":
        st.submitted(JobTrack(c * 32, "detector", 2, EPOCH))
    with caplog.at_level(logging.INFO, logger="groundstation.demo"):
        st.on_record(record("a" * 32, "failed", node="sat1",
                            reason="deadline expired before start (12 s late)"), EPOCH + 5)
        st.on_record(record("b" * 32, "failed", node="sat2",
                            reason="deadline expired before start (3 s late)"), EPOCH + 6)
        st.on_record(record("c" * 32, "failed", node=None,
                            reason="deadline expired at the ground (no uplink in time)"),
                     EPOCH + 7)
    assert st.failed_by_reason() == {"deadline expired before start": 2,
                                     "deadline expired at the ground": 1}
    assert sum("FAILED" in e.text for e in st.events) == 3
    assert any("FAILED at the ground" in e.text for e in st.events)
    assert sum("failed" in r.getMessage() for r in caplog.records) == 3
    result = DemoResult(
        nodes=["sat1", "sat2"], time_scale=50, mission_s=600, wall_s=12, interrupted=False,
        submitted=3, completed=0, failed=3, unfinished=0, classifier_images=0,
        classifier_correct=0, energy_per_job_j=None, energy_total_j=0.0, migrations=0,
        archive_dir="a", archive_records=0, telemetry_nodes=[], archived_done_results=0,
        report_png=None, report_error="x", by_kind={}, failed_by_reason=st.failed_by_reason(),
    )
    assert ("failures: 2 deadline expired before start, 1 deadline expired at the ground"
            in result.lines())


def test_contacts_follow_the_planned_passes(plan: DemoPlan) -> None:
    node = plan.nodes[0]

    def alone(q: Any) -> bool:  # no other station's pass overlaps this one
        return all(o is q or o.los < q.aos - 60 or o.aos > q.los + 60 for _, o in node.passes)

    name, p = next((n, p) for n, p in node.passes if p.aos > EPOCH + 60 and alone(p))
    st = DemoState(plan)
    st.update_contacts(p.aos - 20)
    assert st.contact[node.node_id] is None
    st.update_contacts(p.aos + 20)
    assert st.contact[node.node_id] == name
    assert f"{node.node_id} acquired {name}: uplink open" in [e.text for e in st.events]
    st.update_contacts(p.los + 20)
    assert f"{node.node_id} lost {name}" in [e.text for e in st.events]


def test_fmt_energy() -> None:
    assert fmt_energy(3.2e-6) == "3.2 uJ" and fmt_energy(1.5) == "1.5 J"
    assert fmt_energy(None) == "-"


def test_tty_and_plain_views(plan: DemoPlan) -> None:
    st = DemoState(plan)
    st.on_telemetry(tel("sat1", EPOCH, sunlit=0.0, soc=0.8))
    st.on_telemetry(tel("sat3", EPOCH, safe_mode=True, soc=0.3))
    st.add_event(EPOCH + 90, "something happened", "move")
    out = io.StringIO()
    console = Console(file=out, width=140, force_terminal=True, color_system="standard")
    view = TtyView(st, out, plan.headline(), 50.0, console)
    screen = view.render(EPOCH + 120, 0.02, 3.0)
    lines = screen.splitlines()
    row1 = next(line for line in lines if line.startswith("sat1"))
    assert "ECLIPSE" in row1 and "80%" in row1 and "2+1" in row1 and "1/2" in row1
    assert "SAFE" in next(line for line in lines if line.startswith("sat3"))
    assert "(waiting)" in next(line for line in lines if line.startswith("sat2"))
    assert "T+  1.5  something happened" in screen and "x50" in screen
    assert "\x1b" not in screen
    view.start()
    view.draw(EPOCH + 120, 0.02, 3.0)
    view.draw(EPOCH + 121, 0.03, 3.5)
    view.stop()
    drawn = out.getvalue()
    assert "\x1b[" in drawn and "something happened" in drawn  # rich redrew it in place
    assert drawn.count("flightsw demo") >= 2

    plain_out = io.StringIO()
    plain = PlainView(st, plain_out, every_s=10.0)
    plain.draw(EPOCH + 120, 0.02, 3.0)
    plain.draw(EPOCH + 130, 0.03, 4.0)  # no new events, status not due: nothing new
    st.add_event(EPOCH + 140, "later", "")
    plain.draw(EPOCH + 150, 0.04, 5.0)
    text = plain_out.getvalue()
    assert "\x1b" not in text
    assert text.count("something happened") == 1 and text.count("later") == 1
    assert text.count("jobs: submitted") == 1
