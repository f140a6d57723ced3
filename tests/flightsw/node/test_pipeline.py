"""A node's rules for pipeline jobs: which copies of a stage it takes, from whom, the job
it passes on, and when the next member is no longer usable."""

from __future__ import annotations

import numpy as np
import pytest

from flightsw.exceptions import JobRejected
from flightsw.node.jobs import read_job
from flightsw.node.pipeline import (
    MAX_FOLLOWING,
    Following,
    LinkQueue,
    check_plan,
    check_sender,
    firsts,
    hop_s,
    is_passed_on,
    next_stage,
    send_s,
    spent,
    unusable,
)
from flightsw.protocol import JobSubmit, NodeState, Tensor, dump
from flightsw.protocol.messages import Pipeline
from flightsw.protocol.warrant import inputs_sha256

STAGES = ["a1" * 32, "b2" * 32, "c3" * 32]
MEMBERS = ["n0", "n1", "n2"]


def job(stage: int = 0, members: list[str] | None = None) -> JobSubmit:
    x = {"X": Tensor.from_array(np.arange(12, dtype=np.float32).reshape(3, 4))}
    plan = Pipeline(stages=STAGES, inputs_sha256=inputs_sha256(x), stage=stage,
                    members=MEMBERS if members is None else members)
    return JobSubmit(job_id="p1", model=STAGES[stage], inputs=x, pipeline=plan)


def test_stage_zero_comes_from_the_ground_to_member_zero_only() -> None:
    check_sender(job(0), "n0", None)
    with pytest.raises(JobRejected, match="stage 0 is n0's, not n1's") as err:
        check_sender(job(0), "n1", None)
    assert err.value.field == "pipeline.members"
    with pytest.raises(JobRejected, match="stage 0 comes from the ground, not from n2"):
        check_sender(job(0), "n0", "n2")
    with pytest.raises(JobRejected, match="empty"):
        check_sender(job(0, members=[]), "n0", None)


def test_a_later_stage_comes_only_from_the_member_before() -> None:
    check_sender(job(2), "n2", "n1")
    with pytest.raises(JobRejected, match="stage 2 comes from n1, not from n0") as err:
        check_sender(job(2), "n2", "n0")
    assert err.value.field == "pipeline.stage"
    with pytest.raises(JobRejected, match="from member n0, not from the ground"):
        check_sender(job(1), "n1", None)


def test_a_plain_job_passes_the_checks() -> None:
    plain = job().model_copy(update={"pipeline": None})
    check_sender(plain, "anyone", "anyone-else")
    check_plan(plain)
    assert not is_passed_on(plain)


def test_the_model_must_be_the_stage_model_and_stage_zero_inputs_the_signed_ones() -> None:
    check_plan(job(0))
    with pytest.raises(JobRejected, match="is not stage 1's model") as err:
        check_plan(job(1).model_copy(update={"model": STAGES[0]}))
    assert err.value.field == "model"
    other = {"X": Tensor.from_array(np.zeros((3, 4), np.float32))}
    with pytest.raises(JobRejected, match="inputs: their sha256") as err:
        check_plan(job(0).model_copy(update={"inputs": other}))
    assert err.value.field == "inputs"
    # a later stage runs on activations no digest names
    check_plan(job(1).model_copy(update={"inputs": other}))
    # read_job applies the plan check to what arrives
    with pytest.raises(JobRejected, match="inputs: their sha256"):
        read_job(dump(job(0).model_copy(update={"inputs": other})), 1 << 20)


def test_next_stage_carries_the_outputs_with_epoch_plus_one() -> None:
    first = job(0).model_copy(update={"epoch": 4, "warrant": "0" * 128})
    out = {"h": Tensor.from_array(np.ones((3, 5), np.float32))}
    assert is_passed_on(first)
    nxt = next_stage(first, out)
    assert nxt.pipeline is not None
    assert (nxt.epoch, nxt.model, nxt.pipeline.stage) == (5, STAGES[1], 1)
    assert nxt.inputs == out and nxt.warrant == first.warrant
    assert nxt.pipeline.inputs_sha256 == first.pipeline.inputs_sha256  # type: ignore[union-attr]
    check_plan(nxt)
    check_sender(nxt, "n1", "n0")
    assert (nxt.pipeline.spent_s, nxt.pipeline.spent_j) == (0.0, 0.0)
    last = next_stage(next_stage(first, out, 2.5, 10.0, 100.0, 101.0), out, 1.5, 4.0,
                      200.0, 201.0)
    assert not is_passed_on(last)
    assert spent(last) == (4.0, 14.0)  # what the stages before the last took, added up
    assert spent(first) == (0.0, 0.0)
    # the last stage reports stage 0's acceptance and start; a plain job its own
    assert firsts(last, 300.0, 301.0) == (100.0, 101.0)
    assert firsts(first, 300.0, 301.0) == (300.0, 301.0)


def test_the_hop_time_is_serialisation_light_time_and_latency() -> None:
    here = np.array([7000.0, 0.0, 0.0])
    peer = NodeState(node="n1", t=0.0, soc=1.0, battery_wh=1.0, floor_wh=0.0,
                     temperature_c=20.0, throttle_c=80.0, queue_depth=0, queued_work_s=0.0,
                     sunlit=1.0, next_eclipse_s=None, eclipse_s=0.0, effective_ops_per_s=1.0,
                     power_w=1.0, position_km=[7000.0, 2997.92458, 0.0], isl_rate_bps=1e6)
    # 1 MB at the slower end's 1 Mbit/s = 8 s, 2997.9 km of light = 10 ms, 5 ms processing
    assert hop_s(here, 1e9, 0.005, peer, 1_000_000) == pytest.approx(8.0 + 0.010 + 0.005)
    # peer unheard of: this end's rate and latency only
    assert hop_s(here, 1e9, 0.005, None, 1_000_000) == pytest.approx(0.008 + 0.005)

    assert send_s(1e9, peer, 1_000_000) == pytest.approx(8.0)


def test_hand_overs_on_one_link_wait_for_the_ones_before() -> None:
    q = LinkQueue()
    # two micro-batches finished 1 s apart, each 3 s on the link to n1: the second waits 2 s
    assert q.book("n1", 100.0, 3.0) == 0.0
    assert q.book("n1", 101.0, 3.0) == pytest.approx(2.0)
    # another link is not held up by it
    assert q.book("n2", 101.0, 3.0) == 0.0
    # once the link is free again nothing waits
    assert q.book("n1", 106.5, 3.0) == 0.0


def peer_state(t: float = 100.0, temperature_c: float = 20.0, safe: bool = False) -> NodeState:
    return NodeState(node="n1", t=t, soc=0.9, battery_wh=50.0, floor_wh=5.0,
                     temperature_c=temperature_c, throttle_c=80.0, queue_depth=0,
                     queued_work_s=0.0, sunlit=1.0, next_eclipse_s=None, eclipse_s=0.0,
                     effective_ops_per_s=1.0, power_w=1.0, position_km=[7000.0, 0.0, 0.0],
                     safe_mode=safe, isl_rate_bps=1e9, isl_max_range_km=1000.0)


def test_the_next_member_is_unusable_offline_in_safe_mode_throttled_or_unlinked() -> None:
    assert unusable(peer_state(), 110.0, 30.0, linked=True) is None
    assert unusable(None, 110.0, 30.0, linked=True) == "not heard from"
    assert unusable(peer_state(t=60.0), 110.0, 30.0, linked=True) == \
        "silent for 50.0 s (offline)"
    assert unusable(peer_state(safe=True), 110.0, 30.0, linked=True) == "in safe mode"
    assert unusable(peer_state(temperature_c=80.0), 110.0, 30.0, linked=True) is None
    assert unusable(peer_state(temperature_c=81.5), 110.0, 30.0, linked=True) == \
        "throttled (81.5 C > 80.0 C)"
    why = unusable(peer_state(), 110.0, 30.0, linked=False)
    assert why is not None and why.startswith("no inter-satellite link")


def test_a_copy_from_the_ground_after_a_replan_starts_at_its_stage() -> None:
    base = job(2).pipeline
    assert base is not None
    # n0 ran stage 0 and runs stage 2 too: allowed only for the stages before ``start``
    fields = {**base.model_dump(), "members": ["n0", "n1", "n0"]}
    with pytest.raises(ValueError, match="appears twice"):
        Pipeline.model_validate(fields)
    plan = Pipeline.model_validate({**fields, "start": 2})
    resumed = job(2).model_copy(update={"pipeline": plan})
    check_sender(resumed, "n0", None)  # the ground sends the first stage left
    with pytest.raises(JobRejected, match="stage 2 comes from the ground, not from n1"):
        check_sender(resumed, "n0", "n1")
    with pytest.raises(ValueError, match="start 2 is after stage 1"):
        Pipeline.model_validate({**fields, "start": 2, "stage": 1})
    # a copy uplinked from stage 0 travels without the field (older nodes take it)
    assert "start" not in job(0).model_dump()["pipeline"]
    assert resumed.model_dump()["pipeline"]["start"] == 2


def test_a_node_forgets_a_followed_stage_that_never_ended_only_when_many_and_old() -> None:
    f = Following()
    for i in range(MAX_FOLLOWING + 1):
        f.begin(f"old{i}", 0.0, 1.0)
    f.begin("young", 50.0, 1.0)  # more than the bound, but none 100 periods old: all kept
    assert len(f) == MAX_FOLLOWING + 2
    f.begin("new", 150.0, 1.0)  # the first ones are 150 periods old now; "young" is 100
    assert len(f) == 2 and "young" in f and "new" in f
    assert f.end("young") == 50.0
    assert f.end("young") is None and "young" not in f
