"""Hardware profiles: TOML data files (one per hardware), their schema and loader.

>>> from hardware_profiles import load_profile
>>> p = load_profile("starcloud-h100")
>>> p.effective_ops_per_s(p.fastest_mode) > 0
True
"""

from hardware_profiles.loader import (
    format_validation_error,
    list_profiles,
    load_profile,
    parse_profile,
    profile_path,
    profiles_dir,
)
from hardware_profiles.schema import (
    MITIGATIONS,
    PRECISIONS,
    Bus,
    Compute,
    Cost,
    Design,
    HardwareProfile,
    Lifetime,
    Links,
    Mitigation,
    PowerMode,
    Precision,
    Radiation,
    Thermal,
)
from hardware_profiles.sizing import SizingCheck, SizingReport, size_profile

__all__ = [
    "MITIGATIONS",
    "PRECISIONS",
    "Bus",
    "Compute",
    "Cost",
    "Design",
    "HardwareProfile",
    "Lifetime",
    "Links",
    "Mitigation",
    "PowerMode",
    "Precision",
    "Radiation",
    "SizingCheck",
    "SizingReport",
    "Thermal",
    "format_validation_error",
    "list_profiles",
    "load_profile",
    "parse_profile",
    "profile_path",
    "profiles_dir",
    "size_profile",
]
