"""Helpers for node tests: run a node on a bus, upload models, submit jobs, await messages."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from flightsw.bus import Bus, Message, Subscription
from flightsw.clock import Clock
from flightsw.exceptions import ProtocolError
from flightsw.node.config import NodeConfig
from flightsw.node.service import Node
from flightsw.orbitdesc import OrbitSpec, build_orbits
from flightsw.protocol import JobSubmit, ModelChunk, Tensor, decode, dump, topics
from hardware_profiles import load_profile

ROOT = Path(__file__).resolve().parents[2]
MODELS = ROOT / "examples" / "models"
DIGITS = MODELS / "digits_classifier.onnx"
DETECTOR = MODELS / "detector.onnx"


def model_hash(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def digits_inputs(n: int = 16) -> npt.NDArray[np.float32]:
    from sklearn.datasets import load_digits

    return np.asarray(load_digits().data[:n], dtype=np.float32)


@contextlib.asynccontextmanager
async def running_node(
    bus: Bus,
    clock: Clock,
    data_dir: Path,
    *,
    node_id: str = "n1",
    profile: str | Path = "jetson-orin-nano-super",
    altitude_km: float = 550.0,
    inclination_deg: float = 53.0,
    raan_deg: float = 0.0,
    arg_latitude_deg: float = 0.0,
    **config: Any,
) -> AsyncIterator[Node]:
    cfg = NodeConfig(
        node_id=node_id,
        profile=str(profile),
        orbit=OrbitSpec(
            altitude_km=altitude_km,
            inclination_deg=inclination_deg,
            raan_deg=raan_deg,
            arg_latitude_deg=arg_latitude_deg,
        ),
        data_dir=data_dir,
        **config,
    )
    prof = load_profile(cfg.profile)
    async with Node(cfg, bus, clock, prof, build_orbits(cfg.orbit, clock.now(), node_id)) as n:
        yield n


async def upload(bus: Bus, node: str, path: Path, chunk: int = 8192) -> str:
    data = path.read_bytes()
    h = hashlib.sha256(data).hexdigest()
    parts = [data[i : i + chunk] for i in range(0, len(data), chunk)]
    for i, p in enumerate(parts):
        msg = ModelChunk(model=h, index=i, total=len(parts), size=len(data), data=p)
        await bus.publish(topics.model(node), dump(msg), qos=1)
    return h


async def submit(
    bus: Bus, node: str, job_id: str, model: str, inputs: dict[str, npt.NDArray[Any]], **fields: Any
) -> None:
    job = JobSubmit(
        job_id=job_id,
        model=model,
        inputs={k: Tensor.from_array(v) for k, v in inputs.items()},
        **fields,
    )
    await bus.publish(topics.job(node), dump(job), qos=1)


async def wait_for(
    sub: Subscription, pred: Callable[[Message, dict[str, Any]], bool], timeout: float = 20.0
) -> tuple[Message, dict[str, Any]]:
    """The first message (and its decoded map) for which ``pred`` holds."""

    async def scan() -> tuple[Message, dict[str, Any]]:
        while True:
            msg = await sub.get()
            try:
                obj = decode(msg.payload)
            except ProtocolError:
                continue
            if isinstance(obj, dict) and pred(msg, obj):
                return msg, obj

    return await asyncio.wait_for(scan(), timeout)


def kind(k: str, **match: Any) -> Callable[[Message, dict[str, Any]], bool]:
    def pred(_m: Message, o: dict[str, Any]) -> bool:
        return o.get("kind") == k and all(o.get(a) == b for a, b in match.items())

    return pred
