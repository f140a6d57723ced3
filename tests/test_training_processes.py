"""Data-parallel training across satellites, for real (issue #18).

Three ``flightsw node`` processes on a real mosquitto each get a third of the digits that
ship with the package and train the same MLP from the same seed; every step their
gradients are all-reduced over MQTT (each publishes its own, adds everyone's in member
order). The members end with the same parameters, and those reach within 1 % of the
accuracy of the same training on one node with the whole set (in this process). A member
SIGKILLed mid-training is left out: the job runs again on the other two
(``groundstation.training``), with the same result.
"""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Iterator
from importlib import resources
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest
from mosquitto import MosquittoProcess
from procs import Procs

from flightsw.bus.mqtt import MqttBus
from flightsw.models.mlp_train import accuracy, train_local
from flightsw.protocol import decode, dump, parse
from flightsw.protocol.messages import Tensor
from flightsw.protocol.training import TrainDone, TrainJob, train_inbox
from groundstation.training import run_training

pytestmark = [pytest.mark.mqtt, pytest.mark.slow]

EPOCH = "2026-03-20T00:00:00Z"
NODES = ["sat-a", "sat-b", "sat-c"]
SIZES = [64, 32, 10]
STEPS = 150
LR = 0.01
SEED = 4
TRAIN = 300  # of the 450 digits that ship with the package; the other 150 are the test set


def digits() -> tuple[npt.NDArray[np.float64], npt.NDArray[np.int64]]:
    data = resources.files("groundstation.demo") / "data" / "digits_heldout.npz"
    with resources.as_file(data) as path, np.load(path) as d:
        return d["pixels"] / 16.0, d["labels"].astype(np.int64)


@pytest.fixture
def procs(tmp_path: Path) -> Iterator[Procs]:
    p = Procs(tmp_path / "procs", epoch=EPOCH, scale=1.0)
    yield p
    p.close()


async def test_three_nodes_train_data_parallel_to_the_accuracy_of_one(
    mosquitto: MosquittoProcess, procs: Procs, tmp_path: Path
) -> None:
    for i, n in enumerate(NODES):
        procs.node(mosquitto.url, n, "jetson-orin-nano-super", arg_latitude=5.0 * i)
    x, y = digits()
    x_train, y_train, x_test, y_test = x[:TRAIN], y[:TRAIN], x[TRAIN:], y[TRAIN:]
    loop = asyncio.get_running_loop()
    end = loop.time() + 60
    while not all((procs.logdir / n / "heartbeat").exists() for n in NODES):
        assert loop.time() < end, "nodes did not start"
        await asyncio.sleep(0.2)
    shards = np.array_split(np.arange(TRAIN), len(NODES))
    done: dict[str, TrainDone] = {}
    async with (
        MqttBus(mosquitto.url, client_id="train-test", clean_start=True) as bus,
        bus.subscribe("odc/sat/+/train/digits-1/done", qos=1) as sub,
    ):
        for node, rows in zip(NODES, shards, strict=True):
            job = TrainJob(job_id="digits-1", members=NODES, sizes=SIZES, seed=SEED,
                           steps=STEPS, lr=LR, total_items=TRAIN,
                           x=Tensor.from_array(x_train[rows]),
                           y=Tensor.from_array(y_train[rows]))
            await bus.publish(train_inbox(node), dump(job), qos=1)

        async def collect() -> None:
            while len(done) < len(NODES):
                msg = await sub.get()
                obj = decode(msg.payload)
                assert isinstance(obj, dict)
                d = parse(TrainDone, obj)
                done[d.node] = d

        try:
            await asyncio.wait_for(collect(), 240)
        except TimeoutError:
            logs = "\n".join(f"--- {n}\n{procs.log(n)[-2000:]}" for n in NODES)
            pytest.fail(f"training did not end: {sorted(done)}\n{logs}")
    for d in done.values():
        assert d.status == "done", d.reason
        assert d.steps == STEPS and len(d.losses) == STEPS
        assert d.messages_in >= (len(NODES) - 1) * STEPS  # every other member, every step
    # the all-reduce kept the members in lockstep: identical parameters and losses
    params = {n: [t.to_array() for t in d.params] for n, d in done.items()}
    for n in NODES[1:]:
        assert done[n].losses == done[NODES[0]].losses
        for a, b in zip(params[NODES[0]], params[n], strict=True):
            assert np.array_equal(a, b)
    # the loss fell, and the accuracy is within 1 % of one node on the whole set
    losses = done[NODES[0]].losses
    assert losses[-1] < 0.25 * losses[0]
    ref = train_local(SIZES, x_train, y_train, steps=STEPS, lr=LR, seed=SEED)
    acc_one = accuracy(ref, x_test, y_test)
    acc_dp = accuracy(params[NODES[0]], x_test, y_test)
    assert acc_one > 0.85
    assert abs(acc_dp - acc_one) <= 0.01, (acc_dp, acc_one)
    # the data-parallel parameters are the one-node parameters up to rounding
    for a, b in zip(params[NODES[0]], ref, strict=True):
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-8)


async def test_a_member_killed_mid_training_is_left_out_and_the_result_is_the_same(
    mosquitto: MosquittoProcess, procs: Procs, tmp_path: Path
) -> None:
    for i, n in enumerate(NODES):
        procs.node(mosquitto.url, n, "jetson-orin-nano-super", arg_latitude=5.0 * i)
    x, y = digits()
    x_train, y_train = x[:TRAIN], y[:TRAIN]
    loop = asyncio.get_running_loop()
    end = loop.time() + 60
    while not all((procs.logdir / n / "heartbeat").exists() for n in NODES):
        assert loop.time() < end, "nodes did not start"
        await asyncio.sleep(0.2)
    async with (
        MqttBus(mosquitto.url, client_id="train-kill", clean_start=True) as bus,
        bus.subscribe("odc/sat/+/train/digits-2/grad", qos=0) as grads,
        asyncio.TaskGroup() as tg,
    ):
        run = tg.create_task(run_training(bus, "digits-2", NODES, SIZES, x_train, y_train,
                                          steps=STEPS, lr=LR, seed=SEED, step_timeout_s=5.0,
                                          timeout_s=240))

        async def some_steps_done() -> None:
            while True:
                obj = decode((await grads.get()).payload)
                if isinstance(obj, dict) and obj.get("step", 0) >= 10:
                    return

        await asyncio.wait_for(some_steps_done(), 120)
        procs.kill("sat-b", signal.SIGKILL)
        result = await run
    # the broker's last will took sat-b out; the job ran again on the other two, re-split
    assert result.attempts == 2 and result.job_id == "digits-2.r1"
    assert result.members == ["sat-a", "sat-c"]
    assert [d.status for d in result.done] == ["done", "done"]
    a, c = ([t.to_array() for t in d.params] for d in result.done)
    for p, q in zip(a, c, strict=True):
        assert np.array_equal(p, q)
    # the full batch is the same, so the parameters are one node's again
    ref = train_local(SIZES, x_train, y_train, steps=STEPS, lr=LR, seed=SEED)
    for p, r in zip(a, ref, strict=True):
        np.testing.assert_allclose(p, r, rtol=0, atol=1e-8)
    assert abs(accuracy(a, x[TRAIN:], y[TRAIN:]) - accuracy(ref, x[TRAIN:], y[TRAIN:])) <= 0.01
