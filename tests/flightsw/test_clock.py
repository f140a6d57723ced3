"""The two clocks: the scaled wall clock and the deterministic virtual clock."""

from __future__ import annotations

import asyncio
import math

import numpy as np
import pytest

from flightsw.clock import VirtualClock, WallClock
from flightsw.exceptions import ClockError


def _host_now() -> float:
    """POSIX seconds of the host, read through the clock module (epoch 0, anchor 0)."""
    return WallClock(epoch=0.0, anchor=0.0, scale=1.0).now()


# -- WallClock -------------------------------------------------------------------------


def test_wall_clock_formula() -> None:
    anchor = _host_now() - 10.0
    clock = WallClock(epoch=1_000_000.0, scale=60.0, anchor=anchor)
    before = _host_now()
    now = clock.now()
    after = _host_now()
    assert clock.epoch == 1_000_000.0 and clock.anchor == anchor and clock.scale == 60.0
    assert 1_000_000.0 + (before - anchor) * 60.0 <= now <= 1_000_000.0 + (after - anchor) * 60.0
    assert now == pytest.approx(1_000_000.0 + 600.0, abs=1.0)


def test_wall_clocks_with_the_same_parameters_agree() -> None:
    a = WallClock(epoch=5_000.0, scale=100.0, anchor=_host_now())
    b = WallClock(epoch=a.epoch, scale=a.scale, anchor=a.anchor)
    t1 = a.now()
    t2 = b.now()
    t3 = a.now()
    assert t1 <= t2 <= t3
    assert t3 - t1 < 5.0  # 50 ms of host time at 100x: the calls are microseconds apart


def test_wall_clock_defaults_start_at_the_host_time() -> None:
    before = _host_now()
    clock = WallClock()
    after = _host_now()
    assert before <= clock.epoch <= after and clock.anchor == clock.epoch
    assert clock.scale == 1.0


@pytest.mark.parametrize("scale", [0.0, -1.0, math.inf, math.nan])
def test_wall_clock_rejects_bad_scale(scale: float) -> None:
    with pytest.raises(ClockError, match="time scale"):
        WallClock(scale=scale)


async def test_wall_clock_sleep_takes_mission_over_scale_host_seconds() -> None:
    clock = WallClock(epoch=0.0, scale=200.0)
    t0, h0 = clock.now(), clock.perf_counter()
    await clock.sleep(10.0)  # 50 ms of host time
    t1, h1 = clock.now(), clock.perf_counter()
    assert 0.045 <= h1 - h0 < 0.5
    assert t1 - t0 >= 9.0


async def test_wall_clock_negative_sleep_returns_at_once() -> None:
    clock = WallClock(scale=1.0)
    h0 = clock.perf_counter()
    await clock.sleep(-5.0)
    assert clock.perf_counter() - h0 < 0.5


async def test_wall_clock_sleep_until() -> None:
    clock = WallClock(epoch=0.0, scale=1000.0)
    target = clock.now() + 40.0  # 40 ms of host time
    await clock.sleep_until(target)
    assert clock.now() >= target
    h0 = clock.perf_counter()
    await clock.sleep_until(clock.now() - 1000.0)  # in the past: no wait
    assert clock.perf_counter() - h0 < 0.5


async def test_wall_clock_sleep_host_is_host_time() -> None:
    clock = WallClock(epoch=0.0, scale=1000.0)
    t0, h0 = clock.now(), clock.perf_counter()
    await clock.sleep_host(0.03)
    h1 = clock.perf_counter()
    assert 0.027 <= h1 - h0 < 0.5
    assert clock.now() - t0 >= 27.0  # 30 ms of host time is 30 mission seconds


def test_to_host_seconds() -> None:
    assert WallClock(scale=60.0).to_host_seconds(120.0) == 2.0
    assert WallClock(scale=0.5).to_host_seconds(3.0) == 6.0
    assert VirtualClock().to_host_seconds(1e9) == 0.0
    assert VirtualClock().scale == math.inf


def test_perf_counter_is_monotonic() -> None:
    clock = VirtualClock()
    a = clock.perf_counter()
    b = clock.perf_counter()
    assert b >= a
    assert clock.now() == 0.0  # reading the host counter does not move virtual time


# -- VirtualClock ----------------------------------------------------------------------


async def test_virtual_time_jumps_to_the_earliest_sleep() -> None:
    clock = VirtualClock(epoch=1_000.0)
    woke: list[tuple[str, float]] = []

    async def sleeper(name: str, delay: float) -> None:
        await clock.sleep(delay)
        woke.append((name, clock.now()))

    async def main() -> str:
        async with asyncio.TaskGroup() as tg:
            tg.create_task(sleeper("thirty", 30.0))
            tg.create_task(sleeper("ten", 10.0))
            tg.create_task(sleeper("twenty", 20.0))
        return "done"

    assert await clock.run(main()) == "done"
    assert woke == [("ten", 1_010.0), ("twenty", 1_020.0), ("thirty", 1_030.0)]
    assert clock.now() == 1_030.0
    assert clock.pending() == 0


@pytest.mark.parametrize("order", [["a", "b", "c", "d"], ["d", "b", "a", "c"]])
async def test_virtual_ties_wake_in_insertion_order(order: list[str]) -> None:
    clock = VirtualClock()
    woke: list[str] = []

    async def sleeper(name: str) -> None:
        await clock.sleep(5.0)
        woke.append(name)

    async def main() -> None:
        async with asyncio.TaskGroup() as tg:
            for name in order:
                tg.create_task(sleeper(name))

    await clock.run(main())
    assert woke == order
    assert clock.now() == 5.0


async def test_virtual_sleep_until_lands_exactly() -> None:
    clock = VirtualClock(epoch=100.0)

    async def main() -> float:
        await clock.sleep_until(123.25)
        await clock.sleep_until(50.0)  # in the past: returns without sleeping
        return clock.now()

    assert await clock.run(main()) == 123.25


async def test_virtual_sleep_host_sleeps_that_much_virtual_time() -> None:
    clock = VirtualClock()

    async def main() -> float:
        await clock.sleep_host(3.0)
        return clock.now()

    assert await clock.run(main()) == 3.0


async def _workload(seed: int) -> list[tuple[float, str, int]]:
    """Producers and consumers with seeded random delays, joined by an asyncio queue."""
    clock = VirtualClock(epoch=0.0)
    rng = np.random.default_rng(seed)
    trace: list[tuple[float, str, int]] = []
    queue: asyncio.Queue[int] = asyncio.Queue()

    async def producer(name: str, count: int) -> None:
        for i in range(count):
            await clock.sleep(float(rng.exponential(7.0)))
            trace.append((clock.now(), name, i))
            await queue.put(i)

    async def consumer(name: str) -> None:
        while True:
            item = await queue.get()
            await clock.sleep(float(rng.uniform(0.0, 12.0)))
            trace.append((clock.now(), name, item))
            queue.task_done()

    async def main() -> None:
        async with asyncio.TaskGroup() as tg:
            workers = [tg.create_task(consumer(f"c{k}")) for k in range(3)]
            producers = [tg.create_task(producer(f"p{k}", 15)) for k in range(4)]
            for task in producers:
                await task
            await queue.join()
            for task in workers:
                task.cancel()

    await clock.run(main())
    return trace


async def test_seeded_workload_repeats_exactly() -> None:
    first = await _workload(42)
    second = await _workload(42)
    assert len(first) == 2 * 4 * 15
    assert first == second
    times = [t for t, _, _ in first]
    assert times == sorted(times)  # virtual time never runs backwards
    assert await _workload(43) != first


async def test_virtual_negative_sleep_is_an_error() -> None:
    clock = VirtualClock()

    async def main() -> None:
        await clock.sleep(-1.0)

    with pytest.raises(ClockError, match="negative"):
        await clock.run(main())


async def test_run_until_stops_and_cancels() -> None:
    clock = VirtualClock()
    ticks: list[float] = []
    cancelled = asyncio.Event()

    async def main() -> None:
        try:
            while True:
                await clock.sleep(10.0)
                ticks.append(clock.now())
        except asyncio.CancelledError:
            cancelled.set()
            raise

    assert await clock.run(main(), until=35.0) is None
    assert ticks == [10.0, 20.0, 30.0]
    assert clock.now() == 35.0
    assert cancelled.is_set()


async def test_run_until_returns_the_result_when_main_finishes_first() -> None:
    clock = VirtualClock()

    async def main() -> int:
        await clock.sleep(10.0)
        return 7

    assert await clock.run(main(), until=100.0) == 7
    assert clock.now() == 10.0


async def test_deadlock_raises() -> None:
    clock = VirtualClock()
    never = asyncio.Event()

    async def waiter() -> None:
        await never.wait()

    async def main() -> None:
        async with asyncio.TaskGroup() as tg:
            tg.create_task(waiter())
            tg.create_task(waiter())
            await clock.sleep(5.0)  # the clock still has this to offer first
            await never.wait()

    with pytest.raises(ClockError, match="deadlock"):
        await clock.run(main())
    assert clock.now() == 5.0


async def test_cancelled_sleeps_are_skipped() -> None:
    clock = VirtualClock()
    woke: list[tuple[str, float]] = []
    seen: dict[str, object] = {}

    async def sleeper(name: str, delay: float) -> None:
        await clock.sleep(delay)
        woke.append((name, clock.now()))

    async def main() -> None:
        a = asyncio.create_task(sleeper("a", 10.0))
        b = asyncio.create_task(sleeper("b", 20.0))
        await clock.sleep(5.0)  # a and b are now waiting on the clock
        a.cancel()
        seen["pending_before"] = clock.pending()
        seen["next"] = clock.next_wakeup()
        seen["pending_after"] = clock.pending()
        await b
        with pytest.raises(asyncio.CancelledError):
            await a

    await clock.run(main())
    assert woke == [("b", 20.0)]
    assert seen == {"pending_before": 2, "next": 20.0, "pending_after": 1}
    assert clock.now() == 20.0


def test_advance_with_nothing_pending() -> None:
    clock = VirtualClock(epoch=7.0)
    assert clock.advance() is False
    assert clock.next_wakeup() is None
    assert clock.now() == 7.0
