"""Load hardware profiles from TOML: packaged ones by name, any other file by path.

Every failure is a :class:`~flightsw.exceptions.ProfileError` whose text names the file
and the dotted field path, e.g. ``h100.toml: bus.battery_wh: Input should be greater
than 0``.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from importlib import resources
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from flightsw.exceptions import ProfileError
from hardware_profiles.schema import HardwareProfile

__all__ = [
    "format_validation_error",
    "list_profiles",
    "load_profile",
    "parse_profile",
    "profile_path",
    "profiles_dir",
]

_SUFFIX = ".toml"


def profiles_dir() -> Path:
    """The directory holding the packaged profile TOML files."""
    return Path(str(resources.files("hardware_profiles")))


def list_profiles() -> list[str]:
    """Names of the packaged profiles, sorted."""
    return sorted(p.stem for p in profiles_dir().glob(f"*{_SUFFIX}") if p.is_file())


def profile_path(name: str) -> Path:
    """Path of the packaged profile ``name``; unknown names list the available ones."""
    path = profiles_dir() / f"{name}{_SUFFIX}"
    if "/" in name or os.sep in name or not path.is_file():
        raise ProfileError(
            f"unknown hardware profile {name!r} (available: {', '.join(list_profiles())})"
        )
    return path


def _looks_like_path(ref: str | os.PathLike[str]) -> bool:
    if isinstance(ref, os.PathLike):
        return True
    return ref.endswith(_SUFFIX) or "/" in ref or os.sep in ref


def load_profile(name_or_path: str | os.PathLike[str]) -> HardwareProfile:
    """Load a packaged profile by name (``"starcloud-h100"``) or any TOML file by path."""
    path = Path(name_or_path) if _looks_like_path(name_or_path) else profile_path(str(name_or_path))
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise ProfileError(f"{path}: cannot read hardware profile: {exc.strerror}") from exc
    try:
        data = tomllib.loads(raw.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise ProfileError(f"{path.name}: not UTF-8 text: {exc.reason}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ProfileError(f"{path.name}: invalid TOML: {exc}") from exc
    return parse_profile(data, source=path.name, default_name=path.stem)


def parse_profile(
    data: Mapping[str, Any], source: str = "<profile>", default_name: str | None = None
) -> HardwareProfile:
    """Validate already-parsed profile data (a TOML table or a scenario override).

    ``name`` defaults to ``default_name`` (the file stem); when both are given they must
    agree, so a copied file cannot silently keep its old name.
    """
    table = dict(data)
    if default_name is not None:
        given = table.setdefault("name", default_name)
        if given != default_name:
            raise ProfileError(
                f"{source}: name: {given!r} does not match the file name "
                f"(expected {default_name!r})"
            )
    try:
        return HardwareProfile.model_validate(table)
    except ValidationError as exc:
        raise ProfileError(format_validation_error(exc, source)) from exc


def _dotted(loc: tuple[int | str, ...]) -> str:
    path = ""
    for part in loc:
        if isinstance(part, int):
            path += f"[{part}]"
        elif part == "[key]":
            path += " (key)"
        else:
            path += f".{part}" if path else part
    return path


def format_validation_error(exc: ValidationError, source: str) -> str:
    """One line per error: ``source: dotted.field.path: message``."""
    lines = []
    for err in exc.errors(include_url=False):
        loc = _dotted(tuple(err["loc"]))
        msg = str(err["msg"]).removeprefix("Value error, ")
        if err["type"] == "missing":
            msg = "field required"
        elif err["type"] == "extra_forbidden":
            msg = "unknown field (not part of the profile schema)"
        lines.append(f"{source}: {loc}: {msg}" if loc else f"{source}: {msg}")
    return "\n".join(lines)
