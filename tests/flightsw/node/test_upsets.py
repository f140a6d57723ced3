"""Radiation upsets in a job's memory: mitigations catch them, or the outputs are corrupted."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
from node_harness import DETECTOR, kind, running_node, submit, upload, wait_for
from profiles import slow_profile

from flightsw.bus import MemoryBus
from flightsw.clock import WallClock
from flightsw.node.upsets import corrupt_one_bit, draw_hits, work_factor
from flightsw.protocol import JobResult, parse
from flightsw.timeutil import parse_iso


def test_hits_split_by_footprint_and_mitigation() -> None:
    rng = np.random.default_rng(0)
    none = draw_hits(rng, 10_000, 1e6, 3e6, 1e7, [])
    assert 800 < none.weights < 1200 and 2700 < none.activations < 3300
    assert none.silent == none.weights + none.activations and none.mitigated == 0
    wc = draw_hits(np.random.default_rng(0), 10_000, 1e6, 3e6, 1e7, ["weight_checksum"])
    assert wc.mitigated == wc.weights and wc.silent == wc.activations
    ecc = draw_hits(np.random.default_rng(0), 10_000, 1e6, 3e6, 1e7, ["ecc"])
    assert ecc.silent == 0
    assert draw_hits(rng, 0, 1e6, 1e6, 1e7, []).silent == 0
    assert work_factor(["dual_execution"]) == 2.0 and work_factor(["ecc"]) == 1.0


def test_corrupt_one_bit_flips_exactly_one_bit() -> None:
    outs = {"a": np.arange(12, dtype=np.float32).reshape(3, 4), "b": np.ones(5, np.int64)}
    bad = corrupt_one_bit(outs, np.random.default_rng(1))
    flipped = sum(
        int(np.unpackbits(np.bitwise_xor(outs[k].view(np.uint8), bad[k].view(np.uint8))).sum())
        for k in outs
    )
    assert flipped == 1
    assert np.array_equal(outs["a"], np.arange(12, dtype=np.float32).reshape(3, 4))


def _radiant(tmp_path: Path, mitigation: str) -> Path:
    text = slow_profile(tmp_path, ops=1e7, name=f"hot-rad-{mitigation or 'none'}").read_text()
    swaps = {
        "upset_rate_per_bit_day": "upset_rate_per_bit_day = 1.0  # test: absurd on purpose",
        "memory_bits": "memory_bits = 4.0e7  # test: about the job's footprint",
        "mitigation": f"mitigation = [{mitigation!r}]" if mitigation else "mitigation = []",
    }
    lines = [
        next((new for key, new in swaps.items() if line.startswith(key)), line)
        for line in text.splitlines()
    ]
    path = tmp_path / f"hot-rad-{mitigation or 'none'}.toml"
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.mark.parametrize(("mitigation", "corrupted"), [("", True), ("ecc", False)])
async def test_upsets_during_a_job(tmp_path: Path, mitigation: str, corrupted: bool) -> None:
    clock = WallClock(epoch=parse_iso("2026-03-20T12:00:00Z"), scale=50)
    bus = MemoryBus()
    img = np.random.default_rng(5).standard_normal((2, 3, 96, 96)).astype(np.float32)
    async with (
        bus.subscribe("odc/sat/n1/#") as sub,
        running_node(bus, clock, tmp_path / "n1", profile=_radiant(tmp_path, mitigation),
                     physics_step_s=1.0),
    ):
        h = await upload(bus, "n1", DETECTOR)
        await wait_for(sub, kind("model_stored"))
        await submit(bus, "n1", "j", h, {"image": img})
        msg, _ = await wait_for(sub, kind("result", job_id="j"), timeout=60)
    res = parse(JobResult, msg.payload)
    assert res.status == "done" and res.upsets_hit > 0
    assert res.corrupted is corrupted
    sess = ort.InferenceSession(str(DETECTOR), providers=["CPUExecutionProvider"])
    want = dict(zip([o.name for o in sess.get_outputs()], sess.run(None, {"image": img}),
                    strict=True))
    got = res.arrays()
    same = all(np.array_equal(got[k], want[k], equal_nan=True) for k in want)
    assert same is not corrupted
