"""Helpers for writing real (deliberately broken) profile files from packaged ones."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import pytest

from hardware_profiles import profile_path

EditProfile = Callable[..., Path]


def _edit(text: str, section: str, key: str, value: str | None) -> str:
    """Set (or, with ``value=None``, delete) ``key`` inside ``[section]`` of TOML ``text``."""
    lines = text.splitlines()
    header = f"[{section}]"
    start = lines.index(header)
    end = next((i for i in range(start + 1, len(lines)) if lines[i].startswith("[")), len(lines))
    pattern = re.compile(rf"^{re.escape(key)}\s*=")
    for i in range(start + 1, end):
        if pattern.match(lines[i]):
            if value is None:
                del lines[i]
            else:
                lines[i] = f"{key} = {value}"
            return "\n".join(lines) + "\n"
    if value is None:
        raise KeyError(f"{key} not in [{section}]")
    lines.insert(start + 1, f"{key} = {value}")
    return "\n".join(lines) + "\n"


@pytest.fixture
def edit_profile(tmp_path: Path) -> EditProfile:
    """Copy a packaged profile to ``tmp_path`` with edits ``(section, key, value)``."""

    def make(base: str, *edits: tuple[str, str, str | None], stem: str | None = None) -> Path:
        text = profile_path(base).read_text(encoding="utf-8")
        for section, key, value in edits:
            text = _edit(text, section, key, value)
        path = tmp_path / f"{stem or base}.toml"
        path.write_text(text, encoding="utf-8")
        return path

    return make
