"""Node configuration: defaults and validated fields."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from flightsw.node.config import NodeConfig
from flightsw.orbitdesc import OrbitSpec


def test_node_config(tmp_path: Path) -> None:
    cfg = NodeConfig(node_id="sat-1", profile="cubesat-6u",
                     orbit=OrbitSpec(altitude_km=550.0, inclination_deg=53.0),
                     data_dir=tmp_path)
    assert cfg.physics_step_s == 10.0 and cfg.policy == "local" and cfg.command_key is None
    with pytest.raises(ValidationError, match="node_id"):
        NodeConfig(node_id="bad/id", profile="p", orbit=cfg.orbit, data_dir=tmp_path)
    with pytest.raises(ValidationError, match="initial_soc"):
        NodeConfig(node_id="a", profile="p", orbit=cfg.orbit, data_dir=tmp_path,
                   initial_soc=1.5)
    with pytest.raises(ValidationError, match="physics_step_s"):
        NodeConfig(node_id="a", profile="p", orbit=cfg.orbit, data_dir=tmp_path,
                   physics_step_s=0)
