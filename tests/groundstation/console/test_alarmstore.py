"""Alarms outlive a console restart: the book's state round trip, its file, and a console
service restarted on a real mosquitto with an alarm raised and acknowledged before."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from pathlib import Path

import aiohttp
import pytest
from mosquitto import MosquittoProcess

from flightsw.bus.mqtt import MqttBus
from flightsw.clock import WallClock
from flightsw.protocol import Telemetry, dump, topics
from groundstation.console.alarms import AlarmBook, Condition
from groundstation.console.alarmstore import FILENAME, AlarmStore
from groundstation.console.auth import OperatorAuth
from groundstation.console.exceptions import ConsoleError
from groundstation.console.service import ConsoleService

TOKEN = "alarm-store-operator"


def _book() -> AlarmBook:
    b = AlarmBook()
    b.raise_(Condition("n1", "battery", "yellow", "SoC 35 %"), 10.0)
    b.raise_(Condition("n1", "battery", "red", "SoC 29 %"), 20.0)  # peak red, asks again
    b.raise_(Condition("n2", "temperature", "yellow", "61 C"), 30.0)
    t = next(a for a in b.listed() if a.node == "n2")
    b.acknowledge(t.id, "alice", 31.0)
    b.raise_(Condition("n3", "failed_job", "yellow", "job x failed"), 40.0)
    b.clear("n3", "failed_job", 40.0)  # an event: inactive, listed until acknowledged
    return b


def test_state_round_trip_keeps_every_field_and_the_id_sequence() -> None:
    b = _book()
    again = AlarmBook()
    again.restore(json.loads(json.dumps(b.state())))
    assert [a.as_dict() for a in again.listed()] == [a.as_dict() for a in b.listed()]
    assert again.raised_total == b.raised_total == {"yellow": 3, "red": 1}
    assert again.changed() == []  # nothing to push for what was already there
    # a new alarm gets an id never used before the restart
    old_ids = {a.id for a in b.listed()}
    new = again.raise_(Condition("n4", "battery", "yellow", "SoC 38 %"), 50.0)
    assert new.id not in old_ids and new.id.endswith(":4")


def test_store_saves_only_changes_and_loads_them_back(tmp_path: Path) -> None:
    store = AlarmStore(tmp_path)
    b = _book()
    assert store.load(b) == 0  # no file yet: nothing restored, the book untouched
    assert store.dirty(b)
    store.save(b)
    assert not store.dirty(b) and (tmp_path / FILENAME).is_file()
    assert not (tmp_path / (FILENAME + ".tmp")).exists()
    b.raise_(Condition("n1", "battery", "red", "SoC 29 %"), 21.0)  # same: no change
    assert not store.dirty(b)
    b.clear("n1", "battery", 60.0)
    assert store.dirty(b)
    store.save(b)
    fresh = AlarmBook()
    assert AlarmStore(tmp_path).load(fresh) == 3
    n1 = next(a for a in fresh.listed() if a.node == "n1")
    assert (n1.active, n1.acked, n1.level, n1.as_dict()["peak"]) == (False, False, "red", "red")


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("{not json", "not a console alarm book"),
        ('{"format": 7, "seq": 0, "alarms": []}', "format: expected 1, got 7"),
        ('{"format": 1, "alarms": []}', "missing field 'seq'"),
        ('{"format": 1, "seq": 1, "alarms": [{"id": "a:1", "node": "n", "kind": "battery",'
         ' "level": "purple", "message": "", "raised_at": 0, "updated_at": 0,'
         ' "active": true, "acked": false}]}', "level 'purple'"),
    ],
)
def test_a_bad_file_is_named(tmp_path: Path, text: str, says: str) -> None:
    (tmp_path / FILENAME).write_text(text)
    with pytest.raises(ConsoleError, match=says) as info:
        AlarmStore(tmp_path).load(AlarmBook())
    assert FILENAME in str(info.value)


def _telemetry(node: str, t: float, soc: float, seq: int) -> Telemetry:
    return Telemetry(
        node=node, seq=seq, t=t, profile="jetson-orin-nano-super", lat_deg=0.0, lon_deg=0.0,
        alt_km=550.0, sunlit=1.0, beta_deg=0.0, solar_w=40.0, load_w=20.0, battery_wh=30.0,
        soc=soc, temperature_c=30.0, power_mode="15W", safe_mode=False, paused=False,
        queue_depth=0, jobs_running=0, jobs_done=0, jobs_failed=0, energy_used_j=0.0,
        upsets=0,
    )


async def _until(what: str, cond: Callable[[], bool], timeout: float = 10.0) -> None:
    try:
        async with asyncio.timeout(timeout):
            while not cond():  # noqa: ASYNC110 (the state is the service's)
                await asyncio.sleep(0.02)
    except TimeoutError:
        raise AssertionError(f"timed out waiting for {what}") from None


@pytest.mark.mqtt
async def test_alarms_survive_a_console_restart(
    mosquitto: MosquittoProcess, tmp_path: Path
) -> None:
    clock = WallClock()

    def console(bus: MqttBus) -> ConsoleService:
        return ConsoleService(bus, clock, tmp_path, port=0, auth=OperatorAuth(TOKEN),
                              push_period_s=0.05)

    async with (
        MqttBus(mosquitto.url, "alarm-store-sat", clean_start=True) as sat,
        MqttBus(mosquitto.url, "alarm-store-console", clean_start=True) as cbus,
    ):
        async with console(cbus) as c:
            # two low nodes: one alarm is acknowledged before the restart, one is not
            for node, soc in (("sat-a", 0.25), ("sat-b", 0.35)):
                await sat.publish(topics.telemetry(node), dump(_telemetry(node, clock.now(),
                                                                          soc, 1)), qos=1)
            await _until("two battery alarms", lambda: len(c.alarms.listed()) == 2)
            a_id = next(a.id for a in c.alarms.listed() if a.node == "sat-a")
            async with aiohttp.ClientSession() as s, s.post(
                f"{c.url}api/alarms/{a_id}/ack", json={},
                headers={"Authorization": f"Bearer {TOKEN}"},
            ) as r:
                assert r.status == 200
            await _until("the alarm book saved",
                         lambda: not c.alarm_store.dirty(c.alarms))
        assert (tmp_path / FILENAME).is_file()

        async with console(cbus) as c2:  # a new console process would do the same
            async with aiohttp.ClientSession() as s, s.get(f"{c2.url}api/alarms") as r:
                listed = {a["node"]: a for a in (await r.json())["alarms"]}
            assert set(listed) == {"sat-a", "sat-b"}
            assert listed["sat-a"]["id"] == a_id
            assert listed["sat-a"]["acked"] and listed["sat-a"]["acked_by"] == "operator"
            assert (listed["sat-a"]["level"], listed["sat-b"]["level"]) == ("red", "yellow")
            assert not listed["sat-b"]["acked"]
            # the restored acknowledged alarm goes once its node reports the battery back
            await sat.publish(topics.telemetry("sat-a"),
                              dump(_telemetry("sat-a", clock.now(), 0.9, 2)), qos=1)
            await _until("sat-a's alarm cleared and gone",
                         lambda: [a.node for a in c2.alarms.listed()] == ["sat-b"])


@pytest.mark.mqtt
async def test_the_book_is_saved_on_exit(mosquitto: MosquittoProcess, tmp_path: Path) -> None:
    """A change the push task has not saved yet (its first push is a minute away) is
    written when the console stops."""
    clock = WallClock()
    async with (
        MqttBus(mosquitto.url, "exit-sat", clean_start=True) as sat,
        MqttBus(mosquitto.url, "exit-console", clean_start=True) as cbus,
    ):
        async with ConsoleService(cbus, clock, tmp_path, port=0, auth=OperatorAuth(TOKEN),
                                  push_period_s=60.0) as c:
            await sat.publish(topics.telemetry("sat-x"),
                              dump(_telemetry("sat-x", clock.now(), 0.2, 1)), qos=1)
            await _until("the battery alarm", lambda: len(c.alarms.listed()) == 1)
            c.alarms.acknowledge(c.alarms.listed()[0].id, "bob", clock.now())
            assert not (tmp_path / FILENAME).exists()
        book = AlarmBook()
        assert AlarmStore(tmp_path).load(book) == 1
        (a,) = book.listed()
        assert (a.node, a.kind, a.level, a.acked_by) == ("sat-x", "battery", "red", "bob")
