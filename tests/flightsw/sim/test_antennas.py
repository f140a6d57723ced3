"""Ground stations with several antennas, and optical stations, in the simulator.

A tight cluster of four satellites passes over one station while a dozen ground jobs wait,
each a 40 s uplink: every uplink the run makes is recorded (start, end, satellite), and the
station never holds more uplinks at once than it has antennas, nor two to one satellite.
"""

from __future__ import annotations

import copy
import heapq
import itertools
import json
import math
import tomllib
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from sim_cases import H100_OPS, T0, scenario, small, subpoint

from flightsw.exceptions import ScenarioError
from flightsw.physics.orbit import CircularOrbits
from flightsw.protocol.jobrules import (
    EXPIRED_AT_GROUND,
    UplinkOption,
    choose_uplink,
    expired_at_ground,
)
from flightsw.sim import Simulation, build_world, collect_metrics, parse_scenario
from flightsw.sim.ledger import GROUND

ROOT = Path(__file__).resolve().parents[3]
UPLINK_BYTES = 125e6  # 40 s at the H100 profile's 25 Mbps uplink
N_JOBS = 12


class _Recording(Simulation):
    """A simulation that notes every uplink it completes or retries."""

    def __init__(self, *args: Any, **kw: Any) -> None:
        super().__init__(*args, **kw)
        self.spans: list[tuple[float, float, int, int]] = []  # start, end, node, station

    def _uplink_done(self, t: float, job: Any, epoch: int, i: int, s: int, size: float,
                     start: float) -> None:
        self.spans.append((start, t, i, s))
        super()._uplink_done(t, job, epoch, i, s, size, start)


def _cluster(station: dict[str, Any] | None = None, **station_fields: Any) -> dict[str, Any]:
    orb = CircularOrbits(550.0, 53.0, 0.0, 0.0, T0, ["A"])
    lat, lon = subpoint(orb, T0 + 600.0)
    st = {"name": "under", "lat_deg": lat, "lon_deg": lon, **station_fields}
    if station is not None:
        st = station
    return small(
        duration_hours=0.5,
        telemetry_period_s=0.0,
        constellation={"satellites": [
            {"name": n, "altitude_km": 550.0, "inclination_deg": 53.0,
             "arg_latitude_deg": 0.3 * k}
            for k, n in enumerate("ABCD")
        ]},
        ground_stations=[st],
        scheduler={"policy": "local"},
        jobs=[{
            "name": "up", "flops_per_item": 2.0 * H100_OPS, "items": 1,
            "input_bytes_per_item": UPLINK_BYTES, "output_bytes_per_item": 1e3,
            "origin": "ground", "times_s": [400.0 + k for k in range(N_JOBS)],
            "deadline_s": 20_000.0,
        }],
    )


def _run(data: dict[str, Any]) -> tuple[_Recording, dict[str, Any]]:
    sim = _Recording(build_world(scenario(data)))
    sim.run()
    return sim, collect_metrics(sim)


def _most_at_once(spans: list[tuple[float, float, int, int]]) -> int:
    edges = sorted([(a, 1) for a, _, _, _ in spans] + [(b, -1) for _, b, _, _ in spans])
    now = most = 0
    for _, d in edges:  # an end before a start at the same instant (-1 sorts first)
        now += d
        most = max(most, now)
    return most


def _overlap_per_sat(spans: list[tuple[float, float, int, int]]) -> bool:
    by_sat: dict[int, list[tuple[float, float]]] = {}
    for a, b, i, _ in spans:
        by_sat.setdefault(i, []).append((a, b))
    for iv in by_sat.values():
        iv.sort()
        if any(iv[k + 1][0] < iv[k][1] - 1e-9 for k in range(len(iv) - 1)):
            return True
    return False


@pytest.mark.parametrize("antennas", [1, 2, 8])
def test_a_station_uplinks_to_as_many_satellites_at_once_as_it_has_antennas(
    antennas: int,
) -> None:
    fields = {} if antennas == 1 else {"antennas": antennas}
    sim, m = _run(_cluster(**fields))
    assert len(sim.spans) >= N_JOBS
    assert m["jobs_completed"] == N_JOBS
    assert m["jobs_lost"] == 0
    for a, b, _, _ in sim.spans:
        assert b - a == pytest.approx(8.0 * UPLINK_BYTES / 25e6)
    # never more than its antennas, nor than the 4 satellites (one antenna per satellite)
    assert _most_at_once(sim.spans) == min(antennas, 4)
    assert not _overlap_per_sat(sim.spans)


def test_one_antenna_is_the_original_rule_one_uplink_after_the_other() -> None:
    """Each uplink starts when the one before it ended, or at the round that sent it."""
    sim, _ = _run(_cluster())
    spans = sorted(sim.spans)
    for (_, prev_end, _, _), (start, _, _, _) in itertools.pairwise(spans):
        assert start >= prev_end - 1e-9
        on_round = abs((start - T0) / 10.0 - round((start - T0) / 10.0)) < 1e-9
        assert start == pytest.approx(prev_end) or on_round


def test_more_antennas_uplink_the_queue_sooner() -> None:
    one, _ = _run(_cluster())
    two, _ = _run(_cluster(antennas=2))
    assert max(b for _, b, _, _ in two.spans) < max(b for _, b, _, _ in one.spans) - 100.0


@pytest.mark.parametrize(
    ("fields", "where"),
    [
        ({"antennas": 0}, "ground_stations[0].antennas"),
        ({"antennas": -2}, "ground_stations[0].antennas"),
        ({"antennas": 1.5}, "ground_stations[0].antennas"),
        ({"antennas": 2.0}, "ground_stations[0].antennas"),
        ({"antennas": "2"}, "ground_stations[0].antennas"),
        ({"antennas": True}, "ground_stations[0].antennas"),
        ({"kind": "laser"}, "ground_stations[0].kind"),
        ({"kind": "optical", "uplink_rate_bps": 1e9, "downlink_rate_bps": 1e9},
         "availability: required for kind 'optical'"),
        ({"kind": "optical", "uplink_rate_bps": 1e9, "downlink_rate_bps": 1e9,
          "availability": 1.2}, "ground_stations[0].availability"),
        ({"uplink_rate_bps": 1e9}, "uplink_rate_bps: only for kind 'optical'"),
        ({"weather_cell_s": 600.0}, "weather_cell_s: only for kind 'optical'"),
        ({"kind": "optical", "uplink_rate_bps": 0.0, "downlink_rate_bps": 1e9,
          "availability": 0.5}, "ground_stations[0].uplink_rate_bps"),
    ],
)
def test_bad_station_fields_are_refused_naming_the_field(fields: dict[str, Any],
                                                         where: str) -> None:
    with pytest.raises(ScenarioError, match=r"test: ground_stations\[0\]") as err:
        scenario(_cluster(**fields))
    assert where in str(err.value)


OPTICAL = {"kind": "optical", "uplink_rate_bps": 1e9, "downlink_rate_bps": 1e10}


def test_an_optical_station_uplinks_at_its_own_rate_under_a_clear_sky() -> None:
    sim, m = _run(_cluster(**OPTICAL, availability=1.0))
    assert m["jobs_completed"] == N_JOBS
    for a, b, _, _ in sim.spans:
        assert b - a == pytest.approx(8.0 * UPLINK_BYTES / 1e9)  # 1 s, not the radio's 40 s


def test_an_optical_station_under_clouds_uplinks_nothing() -> None:
    sim, m = _run(_cluster(**OPTICAL, availability=0.0))
    assert sim.spans == []
    assert m["jobs_completed"] == 0
    assert m["failed_by_reason"]  # they wait at the ground until the run ends


def test_weather_is_the_same_for_a_seed_and_clear_for_its_share_of_cells() -> None:
    data = _cluster(**OPTICAL, availability=0.6, weather_cell_s=60.0)
    a = Simulation(build_world(scenario(data)))
    b = Simulation(build_world(scenario(data)))
    other = Simulation(build_world(scenario({**data, "seed": 4})))
    times = [T0 + 60.0 * k + 1.0 for k in range(2000)]
    sky_a = [a.sky.clear(0, t) for t in times]
    assert sky_a == [b.sky.clear(0, t) for t in times]
    assert sky_a != [other.sky.clear(0, t) for t in times]
    assert sum(sky_a) / len(sky_a) == pytest.approx(0.6, abs=0.04)
    assert a.sky.clear_share(0, times[-1]) == pytest.approx(sum(sky_a) / len(sky_a), abs=1e-3)


@pytest.mark.parametrize(("fields", "down_s"), [({}, 8 * 5e8 / 800e6),
                                                 (OPTICAL | {"availability": 1.0}, 0.4)])
def test_a_result_goes_down_at_an_optical_stations_rate(fields: dict[str, Any],
                                                        down_s: float) -> None:
    """A 500 MB result, finished in view: 5 s at the H100's 800 Mbps radio downlink, 0.4 s
    at the optical station's 10 Gbps (counted from the step that delivers it)."""
    data = _cluster(**fields)
    data["jobs"] = [{"name": "big-out", "flops_per_item": 2.0 * H100_OPS, "items": 1,
                     "output_bytes_per_item": 5e8, "times_s": [500.0], "nodes": ["A"],
                     "deadline_s": 20_000.0}]
    sim, m = _run(data)
    assert m["jobs_completed"] == 1
    (job,) = sim.ledger.jobs.values()
    step_t = T0 + 10.0 * math.floor((job.delivered_at - T0) / 10.0)
    assert job.finished_at <= step_t
    assert job.delivered_at - step_t == pytest.approx(down_s)


class _SerialStations(Simulation):
    """The uplink round as it was before antennas (commit a56ee0b): each station sends one
    job after the other (``station_free``), kept here as the reference for one antenna."""

    def __init__(self, *args: Any, **kw: Any) -> None:
        super().__init__(*args, **kw)
        self.station_free = [self.w.t0] * len(self.stations)

    def _uplink_round(self, t: float, contact: Any) -> None:
        horizon = t + self.step_s
        rates = self._uplink_rates
        for s in range(len(self.stations)):
            if not self.ground_queue:
                return
            if self.station_free[s] >= horizon or self._station_out(s, t):
                continue
            sats = np.nonzero(contact[:, s])[0].tolist()
            if not sats:
                continue
            extra = dict.fromkeys(sats, 0.0)
            base = [(self.nodes[i].name, rates[i],
                     self.nodes[i].backlog_s(t) + self.incoming_s[i], self.nodes[i].models)
                    for i in sats]
            while self.ground_queue and self.station_free[s] < horizon:
                _, job = heapq.heappop(self.ground_queue)
                if job.outcome:
                    continue
                if expired_at_ground(job.deadline, t):
                    self._fail(job, None, GROUND, EXPIRED_AT_GROUND, t)
                    continue
                start = max(self.station_free[s], t)
                options = [
                    UplinkOption(name, rate, backlog + extra[i], job.model in held)
                    for i, (name, rate, backlog, held) in zip(sats, base, strict=True)
                ]
                k = choose_uplink(options, job.input_bytes, job.model_bytes)
                assert k is not None
                i = sats[k]
                size = job.input_bytes + (0.0 if options[k].has_model else job.model_bytes)
                end = start + 8.0 * size / float(self.uplink_bps[i])
                extra[i] += self.nodes[i].spec.seconds(self._work(i, job))
                self.station_free[s] = end
                self.uplinks[job.jid] = (job, i, s)
                self.q.push(end, self._uplink_done, job, job.epoch, i, s, size, start)


@pytest.mark.parametrize(("name", "hours"), [("quickstart", None), ("regime-contact", 2.0)])
def test_one_antenna_gives_the_same_run_as_the_rule_before_antennas(
    name: str, hours: float | None
) -> None:
    """An existing scenario's metrics (all but host timings) are identical under the
    antenna rule with its default of one antenna and under the original serial rule."""
    path = ROOT / "examples" / "scenarios" / f"{name}.toml"
    data = tomllib.loads(path.read_text())
    if hours is not None:
        data.pop("duration_orbits", None)
        data["duration_hours"] = hours
    assert all("antennas" not in g for g in data["ground_stations"])

    def metrics(cls: type[Simulation]) -> str:
        sim = cls(build_world(parse_scenario(copy.deepcopy(data), source=path.name,
                                             base_dir=path.parent)))
        sim.run()
        m = collect_metrics(sim)
        return json.dumps({k: v for k, v in m.items() if "wall" not in k}, sort_keys=True,
                          default=str)

    new, old = metrics(Simulation), metrics(_SerialStations)
    assert json.loads(new)["uplinks"] > 0
    assert new == old
