"""Message models: every one round-trips through msgpack; errors name the dotted field."""

from __future__ import annotations

import hashlib
from typing import Any

import numpy as np
import pytest

from flightsw.exceptions import ProtocolError
from flightsw.physics.ground import Station
from flightsw.protocol import (
    Ack,
    CircularOrbitInfo,
    Command,
    ErrorEvent,
    GroundStations,
    Handover,
    JobEvent,
    JobResult,
    JobSubmit,
    ModelChunk,
    ModelMissing,
    ModelStored,
    NodeState,
    StationInfo,
    Status,
    Telemetry,
    Tensor,
    TleOrbitInfo,
    decode,
    dump,
    encode,
    parse,
    parse_event,
)
from flightsw.protocol.messages import Message

MODEL = hashlib.sha256(b"model bytes").hexdigest()
IMAGE = np.random.default_rng(0).standard_normal((2, 3, 4)).astype(np.float32)


def _job(**over: Any) -> JobSubmit:
    fields: dict[str, Any] = {
        "job_id": "job-1",
        "epoch": 2,
        "model": MODEL,
        "inputs": {"image": Tensor.from_array(IMAGE), "mask": Tensor.from_array(np.ones(2, bool))},
        "priority": 8,
        "deadline": 1_773_964_900.5,
        "value": 3.5,
        "submitted_at": 1_773_964_800.0,
        "origin": "ground",
        "migrations": 1,
    }
    return JobSubmit(**{**fields, **over})


def _examples() -> list[Message]:
    t = 1_773_964_800.25
    return [
        Tensor.from_array(np.arange(5, dtype=np.int16)),
        _job(),
        JobResult(
            job_id="job-1", epoch=2, node="sat-1", status="done",
            outputs={"scores": Tensor.from_array(np.linspace(0, 1, 10, dtype=np.float64))},
            items=2, host_wall_s=0.01, modelled_latency_s=0.2, modelled_energy_j=5.0,
            power_mode="25W", submitted_at=t, accepted_at=t + 1, started_at=t + 2,
            finished_at=t + 3, deadline=t + 100, value=3.5, migrations=1, upsets_hit=2,
            upsets_mitigated=1, corrupted=True,
        ),
        JobResult(job_id="job-2", epoch=0, node="sat-1", status="failed", reason="inputs: bad"),
        JobEvent(job_id="job-1", epoch=3, node="sat-2", state="migrating", t=t, detail="late",
                 target="sat-3"),
        ErrorEvent(node="sat-1", t=t, code="bad_job", message="inputs.x.dtype: nope",
                   field="inputs.x.dtype", job_id="job-9", topic="odc/sat/sat-1/job"),
        Telemetry(
            node="sat-1", seq=7, t=t, profile="jetson-orin-nano-super", lat_deg=-12.5,
            lon_deg=170.0, alt_km=551.2, sunlit=1.0, beta_deg=23.0, solar_w=77.0, load_w=41.0,
            battery_wh=80.0, soc=0.8, temperature_c=31.5, power_mode="15W", safe_mode=False,
            paused=True, queue_depth=3, jobs_running=1, jobs_done=10, jobs_failed=1,
            energy_used_j=1234.5, upsets=4, in_contact=False, migrations_out=2,
            migrations_in=1, upsets_mitigated=3, silent_corruptions=1,
        ),
        Status(node="sat-1", state="safe", t=t, profile="cubesat-6u",
               orbit=CircularOrbitInfo(altitude_km=550.0, inclination_deg=53.0, raan_deg=10.0,
                                       arg_latitude_deg=-5.0, epoch=t)),
        Command(cmd_id="c-1", name="set_power_mode", args={"mode": "7W"}, counter=9, t=t,
                hmac="ab" * 32),
        Ack(cmd_id="c-1", node="sat-1", name="set_power_mode", ok=False, t=t,
            reason="mode: unknown", data={"modes": ["7W", "15W"]}),
        ModelChunk(model=MODEL, index=3, total=4, size=1000, data=b"\x00\x01" * 100),
        NodeState(
            node="sat-1", t=t, soc=0.7, battery_wh=70.0, floor_wh=30.0, temperature_c=25.0,
            throttle_c=60.0, queue_depth=2, queued_work_s=12.5, sunlit=0.0,
            next_eclipse_s=None, eclipse_s=2100.0, effective_ops_per_s=1e13, power_w=25.0,
            position_km=[6928.0, 0.0, 0.0], models=[MODEL], leases={"job-1": 2},
            safe_mode=True, margin_wh=12.0, heat_capacity_j_per_k=14400.0,
            isl_rate_bps=2e7, isl_max_range_km=580.0, uplink_rate_bps=2e6, alt_km=550.0,
        ),
        Handover(src="sat-1", dst="sat-2", t=t, job=_job(epoch=3, migrations=2)),
        Status(node="sat-2", state="online", t=t, orbit=TleOrbitInfo(name="X", text="1 ...")),
        ModelStored(node="sat-1", t=t, model=MODEL),
        ModelMissing(node="sat-1", t=t, model=MODEL, job_id="job-1"),
        GroundStations(stations=[StationInfo(name="svalbard", lat_deg=78.23, lon_deg=15.39,
                                             alt_m=500.0)], min_elevation_deg=5.0),
        GroundStations(),
    ]


@pytest.mark.parametrize("message", _examples(), ids=lambda m: type(m).__name__)
def test_every_message_round_trips(message: Message) -> None:
    wire = dump(message)
    back = parse(type(message), wire)
    assert back == message
    assert dump(back) == wire
    assert parse(type(message), decode(wire)) == message  # an already decoded map works too


def test_bytes_stay_binary_on_the_wire() -> None:
    obj = decode(dump(ModelChunk(model=MODEL, index=0, total=1, size=3, data=b"abc")))
    assert obj["data"] == b"abc" and obj["kind"] == "model_chunk"


def test_job_arrays_round_trip() -> None:
    job = parse(JobSubmit, dump(_job()))
    arrays = job.arrays()
    assert arrays["image"].dtype == np.float32 and np.array_equal(arrays["image"], IMAGE)
    assert arrays["mask"].tolist() == [True, True]


def test_job_with_a_bad_tensor_names_the_input() -> None:
    raw = decode(dump(_job()))
    raw["inputs"]["image"]["data"] = raw["inputs"]["image"]["data"][:-4]
    job = parse(JobSubmit, raw)  # the schema holds; the size check is the codec's
    with pytest.raises(ProtocolError, match=r"^inputs\.image\.data: 92 bytes"):
        job.arrays()
    raw = decode(dump(JobResult(job_id="j", epoch=0, node="n", status="done",
                                outputs={"y": Tensor.from_array(np.zeros(3, np.uint8))})))
    raw["outputs"]["y"]["dtype"] = "complex128"
    with pytest.raises(ProtocolError, match=r"^outputs\.y\.dtype: 'complex128'"):
        parse(JobResult, raw).arrays()


def _raw_job(**over: Any) -> dict[str, Any]:
    return {**decode(dump(_job())), **over}


@pytest.mark.parametrize(
    ("raw", "pattern"),
    [
        (_raw_job(inputs={"x": {"dtype": "float32", "shape": [2, -1], "data": b""}}),
         r"^inputs\.x\.shape\.1: Input should be greater than or equal to 0"),
        (_raw_job(inputs={"x": {"dtype": "float32", "shape": [1], "data": 123}}),
         r"^inputs\.x\.data: "),
        (_raw_job(inputs={}), r"^inputs: "),
        (_raw_job(model="XYZ"), r"^model: String should match pattern"),
        (_raw_job(priority=10), r"^priority: Input should be less than or equal to 9"),
        (_raw_job(value=-1.0), r"^value: "),
        (_raw_job(job_id=""), r"^job_id: "),
        (_raw_job(kind="result"), r"^kind: Input should be 'job'"),
        (_raw_job(colour="red"), r"^colour: Extra inputs are not permitted"),
        ({k: v for k, v in _raw_job().items() if k != "job_id"}, r"^job_id: Field required"),
    ],
)
def test_parse_errors_name_the_dotted_field(raw: dict[str, Any], pattern: str) -> None:
    with pytest.raises(ProtocolError, match=pattern):
        parse(JobSubmit, encode(raw))


def test_nested_error_paths() -> None:
    handover = {"src": "a", "dst": "b", "t": 0.0, "job": _raw_job(inputs={})}
    with pytest.raises(ProtocolError, match=r"^job\.inputs: "):
        parse(Handover, encode(handover))
    state = decode(dump(_examples()[11]))
    state["position_km"] = [1.0, "far", 3.0]
    with pytest.raises(ProtocolError, match=r"^position_km\.1: "):
        parse(NodeState, state)
    with pytest.raises(ProtocolError, match=r"^node: String should match pattern"):
        parse(Status, {"node": "bad/node", "state": "online", "t": 0.0})
    with pytest.raises(ProtocolError, match=r"^name: Input should be "):
        parse(Command, {"cmd_id": "c", "name": "self_destruct"})


@pytest.mark.parametrize(("payload", "got"), [([1, 2], "list"), ("text", "str"), (3, "int")])
def test_parse_wants_a_map(payload: Any, got: str) -> None:
    with pytest.raises(ProtocolError, match=f"expected a map for Telemetry, got {got}"):
        parse(Telemetry, encode(payload))


def test_parse_undecodable_and_oversize() -> None:
    with pytest.raises(ProtocolError, match=r"undecodable payload \(1 bytes\)"):
        parse(JobSubmit, b"\xc1")
    wire = dump(_job())
    assert parse(JobSubmit, wire, max_bytes=len(wire)).job_id == "job-1"
    with pytest.raises(ProtocolError, match=f"payload of {len(wire)} bytes exceeds the limit"):
        parse(JobSubmit, wire, max_bytes=100)


def test_defaults() -> None:
    job = JobSubmit(job_id="j", model=MODEL, inputs={"x": Tensor.from_array(np.zeros(1))})
    assert (job.kind, job.epoch, job.priority, job.deadline, job.value, job.origin) == (
        "job", 0, 5, None, 1.0, "ground",
    )
    cmd = Command(cmd_id="c", name="ping")
    assert (cmd.counter, cmd.args, cmd.hmac) == (0, {}, None)


def test_parse_errors_carry_code_and_field() -> None:
    with pytest.raises(ProtocolError) as err:
        parse(JobSubmit, encode(_raw_job(priority=10)))
    assert (err.value.code, err.value.field) == ("schema", "priority")
    with pytest.raises(ProtocolError) as err:
        parse(Handover, encode({"src": "a", "dst": "b", "t": 0.0, "job": _raw_job(inputs={})}))
    assert (err.value.code, err.value.field) == ("schema", "job.inputs")
    with pytest.raises(ProtocolError) as err:
        parse(Telemetry, encode([1]))
    assert (err.value.code, err.value.field) == ("schema", None)
    with pytest.raises(ProtocolError) as err:
        parse(JobSubmit, b"\xc1")
    assert (err.value.code, err.value.field) == ("undecodable", None)
    with pytest.raises(ProtocolError) as err:
        parse(JobSubmit, dump(_job()), max_bytes=10)
    assert (err.value.code, err.value.field) == ("oversize", None)
    raw = decode(dump(_job()))
    raw["inputs"]["image"]["data"] = b"short"
    with pytest.raises(ProtocolError) as err:
        parse(JobSubmit, raw).arrays()
    assert (err.value.code, err.value.field) == ("schema", "inputs.image.data")


def test_events_parse_by_kind() -> None:
    t = 1.0
    for ev in (
        JobEvent(job_id="j", epoch=0, node="n", state="accepted", t=t),
        ErrorEvent(node="n", t=t, code="invalid_job", message="inputs: bad", field="inputs"),
        ModelStored(node="n", t=t, model=MODEL),
        ModelMissing(node="n", t=t, model=MODEL, job_id="j"),
    ):
        assert parse_event(dump(ev)) == ev
    with pytest.raises(ProtocolError, match=r"^kind: 'telemetry' is not an event") as err:
        parse_event(encode({"kind": "telemetry"}))
    assert err.value.field == "kind"
    with pytest.raises(ProtocolError, match=r"^model: String should match pattern"):
        parse_event(encode({"kind": "model_stored", "node": "n", "t": t, "model": "abc"}))
    with pytest.raises(ProtocolError, match="expected a map for an event"):
        parse_event(encode([1, 2]))


def test_ground_stations_validation_and_the_old_form() -> None:
    # the form the ground published before the message had a kind still parses
    old = {"stations": [{"name": "a", "lat_deg": 1.0, "lon_deg": 2.0, "alt_m": 3.0}],
           "min_elevation_deg": 10.0}
    gs = parse(GroundStations, encode(old))
    assert gs.stations[0].to_station() == Station("a", 1.0, 2.0, 3.0)
    assert parse(GroundStations, encode({"stations": []})).min_elevation_deg == 10.0
    for bad, field in (
        ({"name": "a", "lat_deg": 91.0, "lon_deg": 0.0}, "stations.0.lat_deg"),
        ({"name": "a", "lat_deg": 0.0, "lon_deg": 360.0}, "stations.0.lon_deg"),
        ({"name": "a", "lat_deg": 0.0, "lon_deg": -181.0}, "stations.0.lon_deg"),
        ({"name": "", "lat_deg": 0.0, "lon_deg": 0.0}, "stations.0.name"),
        ({"name": "a", "lat_deg": 0.0}, "stations.0.lon_deg"),
    ):
        with pytest.raises(ProtocolError) as err:
            parse(GroundStations, {"stations": [bad]})
        assert err.value.field == field
    with pytest.raises(ProtocolError) as err:
        parse(GroundStations, {"stations": [], "min_elevation_deg": 90.0})
    assert err.value.field == "min_elevation_deg"
    # a Station may say 360 degrees east; the wire says 0
    assert StationInfo.from_station(Station("b", 0.0, 360.0)).lon_deg == 0.0
