"""The ground's part in pipeline jobs: submission checks, the group, the job table."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from flightsw.protocol import JobSubmit, Tensor
from flightsw.protocol.messages import Pipeline
from flightsw.protocol.warrant import inputs_sha256
from groundstation.exceptions import RequestError
from groundstation.jobtable import JobTable
from groundstation.pipeline import Candidate, check_stages, choose_group

STAGES = ["a1" * 32, "b2" * 32, "c3" * 32]


R = 6_928.0  # km: 550 km up


def cand(node: str, backlog: float = 0.0, models: tuple[str, ...] = (),
         contact: bool = True, at_deg: float = 0.0, isl_km: float = 580.0) -> Candidate:
    """A candidate on one circular orbit at ``at_deg`` of argument of latitude, with an
    optical terminal of ``isl_km`` range (0: none)."""
    a = math.radians(at_deg)
    return Candidate(node, backlog, frozenset(models), contact,
                     (R * math.cos(a), R * math.sin(a), 0.0),
                     20e6 if isl_km > 0 else 0.0, isl_km)


def test_each_stage_prefers_a_holder_of_its_model_then_the_least_backlog() -> None:
    nodes = [cand("a", 50.0), cand("b", 10.0), cand("c", 0.0, (STAGES[1],)), cand("d", 20.0)]
    assert choose_group(STAGES, nodes) == ["b", "c", "d"]


def test_distinct_nodes_and_stage_zero_in_contact() -> None:
    assert choose_group(STAGES, [cand("a"), cand("b")]) is None  # too few
    nodes = [cand("a", 0.0, contact=False), cand("b", 5.0), cand("c", 9.0)]
    assert choose_group(STAGES, nodes) == ["b", "a", "c"]
    assert choose_group(STAGES, [cand(n, contact=False) for n in "abc"]) is None


def test_the_group_is_a_chain_over_the_isl_graph() -> None:
    # on one orbit: a 0, b 3, c 6, d 12 degrees (363 km a step); 580 km terminals
    nodes = [cand("a", 0.0, at_deg=0.0), cand("b", 9.0, at_deg=3.0),
             cand("c", 1.0, at_deg=6.0), cand("d", 0.0, at_deg=12.0)]
    # by backlog alone a, d, c; but d links to nobody (726 km from c), so a-b-c
    assert choose_group(STAGES, nodes) == ["a", "b", "c"]
    # the middle one gone: a and c are 726 km apart, so there is no chain of three
    assert choose_group(STAGES, [n for n in nodes if n.node != "b"]) is None
    # a terminal-less node (a 6U CubeSat) or one not heard with a position is no member
    blind = [cand("a"), cand("b", at_deg=1.0, isl_km=0.0), cand("c", at_deg=2.0)]
    assert choose_group(STAGES, blind) is None
    unknown = [nodes[0], nodes[1], Candidate("c", 0.0, frozenset(), True)]
    assert choose_group(STAGES, unknown) is None


def test_the_earth_blocks_a_link_whatever_the_range() -> None:
    # 20,000 km terminals at 550 km: in sight up to ~43 degrees apart (the line must clear
    # the Earth plus 80 km); a at 0, c at 30, b at 60: a-b is in range but not in sight,
    # so the only chain has c in the middle
    nodes = [cand("a", at_deg=0.0, isl_km=20_000.0), cand("b", at_deg=60.0, isl_km=20_000.0),
             cand("c", at_deg=30.0, isl_km=20_000.0)]
    assert choose_group(STAGES, nodes) == ["a", "c", "b"]
    nodes[2] = cand("c", at_deg=180.0, isl_km=20_000.0)  # behind the Earth from both
    assert choose_group(STAGES, nodes) is None


def test_a_submission_is_checked_naming_the_field() -> None:
    def stored(m: str) -> bool:
        return m != STAGES[2]

    check_stages(STAGES[0], STAGES[:2], None, stored)
    with pytest.raises(RequestError, match="not the first stage") as err:
        check_stages(STAGES[1], STAGES, None, stored)
    assert err.value.field == "job.model"
    with pytest.raises(RequestError, match="not uploaded") as err:
        check_stages(STAGES[0], STAGES, None, stored)
    assert err.value.field == "job.stages.2"
    with pytest.raises(RequestError, match="cannot be pinned") as err:
        check_stages(STAGES[0], STAGES[:2], "n1", stored)
    assert err.value.field == "node"


def test_the_job_table_keeps_the_stage_count_and_adds_the_column_to_an_old_table(
    tmp_path: Path,
) -> None:
    import sqlite3

    path = tmp_path / "jobs.sqlite"
    old = sqlite3.connect(path)  # a table as written before pipelines existed
    old.execute("CREATE TABLE jobs (job_id TEXT PRIMARY KEY, model, state, epoch, node, "
                "target, attempts, priority, deadline, value, items, submitted_at, "
                "uplinked_at, accepted_at, started_at, finished_at, host_wall_s, "
                "modelled_latency_s, modelled_energy_j, power_mode, migrations, duplicates, "
                "reason, detail, lease_seen, submit_blob BLOB NOT NULL, result_blob BLOB)")
    old.commit()
    old.close()
    table = JobTable(path)
    x = {"X": Tensor.from_array(np.ones((2, 4), np.float32))}
    plain = JobSubmit(job_id="plain", model=STAGES[0], inputs=x)
    piped = JobSubmit(job_id="piped", model=STAGES[0], inputs=x,
                      pipeline=Pipeline(stages=STAGES, inputs_sha256=inputs_sha256(x)))
    table.insert(plain, None, 2)
    table.insert(piped, None, 2)
    assert table.record("plain").stages == 0
    assert table.record("piped").stages == 3
    assert table.submitted("piped").pipeline == piped.pipeline
    table.close()
