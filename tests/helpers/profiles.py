"""Test-only hardware profiles derived from packaged ones (written to a temp dir)."""

from __future__ import annotations

from pathlib import Path

from hardware_profiles import profile_path


def slow_profile(tmp_path: Path, *, ops: float = 2.0e8, name: str = "slow-nano") -> Path:
    """The Orin Nano Super profile with a tiny compute rate: jobs last seconds."""
    text = profile_path("jetson-orin-nano-super").read_text()
    for a, b in {
        "peak_ops.int8 = 33.5e12": f"peak_ops.int8 = {ops:.3e}",
        "efficiency = 0.35": "efficiency = 1.0",
        'name = "jetson-orin-nano-super"': f'name = "{name}"',
    }.items():
        assert a in text, a
        text = text.replace(a, b)
    path = tmp_path / f"{name}.toml"
    path.write_text(text)
    return path
