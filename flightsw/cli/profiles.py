"""``flightsw profiles``: list, show and size-check hardware profiles.

* ``flightsw profiles list``: one packaged profile per line, name first.
* ``flightsw profiles show NAME [--json]``: the validated profile (NAME may be a path).
* ``flightsw profiles check [NAME ...] [--json]``: the sizing checks; exit 1 if any fails.
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from hardware_profiles import (
    HardwareProfile,
    SizingReport,
    list_profiles,
    load_profile,
    size_profile,
)

__all__ = ["format_profile", "register", "summary_line"]

# unit shown after a field value in the readable listing, by field-name suffix
_UNITS = (
    ("_wh", "Wh"),
    ("_w", "W"),
    ("_m2", "m2"),
    ("_km", "km"),
    ("_c", "C"),
    ("_s", "s"),
    ("_kg", "kg"),
    ("_j_per_k", "J/K"),
    ("_bytes", "B"),
    ("_bits", "bit"),
)


def _si(value: float, unit: str) -> str:
    """``1.979e15, 'ops/s'`` -> ``'1.98 Pops/s'``."""
    for factor, prefix in ((1e15, "P"), (1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(value) >= factor:
            return f"{value / factor:.3g} {prefix}{unit}"
    return f"{value:.3g} {unit}"


def summary_line(profile: HardwareProfile) -> str:
    """``name  accelerator; peak; modes; battery; ISL`` on one line."""
    c = profile.compute
    watts = [m.watts for m in profile.modes_by_watts()]
    modes = f"{watts[0]:g}-{watts[-1]:g} W" if len(watts) > 1 else f"{watts[0]:g} W"
    isl = _si(profile.links.isl_rate_bps, "bit/s") if profile.links.has_isl else "none"
    peak = _si(c.peak_ops[c.inference_precision], "ops/s")
    return (
        f"{profile.name:<24} {c.accelerator}; {peak} {c.inference_precision} dense; "
        f"modes {modes}; battery {profile.bus.battery_wh:g} Wh; ISL {isl}"
    )


def _unit(section: str, key: str) -> str:
    if key.endswith("_bps"):
        return "bit/s" if section == "links" else "B/s"
    for suffix, unit in _UNITS:
        if key.endswith(suffix):
            return unit
    return ""


def _value(section: str, key: str, value: Any) -> str:
    if isinstance(value, dict):
        return ", ".join(f"{k} {_si(v, 'ops/s')}" for k, v in value.items())
    if isinstance(value, list):
        return ", ".join(str(v) for v in value) or "none"
    if isinstance(value, float):
        unit = _unit(section, key)
        if unit in {"B/s", "bit/s", "B", "bit"}:
            return _si(value, unit)
        return f"{value:g} {unit}".rstrip()
    return str(value)


def format_profile(profile: HardwareProfile) -> str:
    """A readable, sectioned listing of every field with its unit."""
    data = profile.model_dump()
    lines = [f"{profile.name}: {profile.description}"]
    sections = ("compute", "bus", "thermal", "radiation", "links", "design", "lifetime", "cost")
    for section in sections:
        if data[section] is None:  # lifetime and cost are optional
            continue
        lines.append(f"[{section}]")
        for key, value in data[section].items():
            if key == "power_modes":
                continue
            shown = _value(section, key, value)
            if key == "sustained_mode" and value is None:
                shown = f"{profile.fastest_mode.name} (the fastest mode)"
            lines.append(f"  {key:<24} {shown}")
        if section == "compute":
            lines.append("  power modes (name, watts, throughput, effective ops/s):")
            for mode in profile.compute.power_modes:
                flag = " (default)" if mode.name == profile.compute.default_mode else ""
                lines.append(
                    f"    {mode.name:<10} {mode.watts:>7g} W  {mode.throughput:>5g}  "
                    f"{_si(profile.effective_ops_per_s(mode), 'ops/s')}{flag}"
                )
    lines.append(f"dod floor energy: {profile.dod_floor_wh:g} Wh")
    return "\n".join(lines)


def _format_report(report: SizingReport) -> str:
    lines = [f"{report.profile}: {'ok' if report.ok else 'FAILED'}"]
    for check in report.checks:
        sign = "<=" if check.sense == "le" else ">="
        lines.append(
            f"  [{'ok' if check.ok else 'FAIL'}] {check.name}: "
            f"{check.value:.3g} {sign} {check.limit:.3g} {check.unit}".rstrip()
            + f"  ({check.detail})"
        )
    return "\n".join(lines)


def _cmd_list(args: argparse.Namespace) -> int:
    for name in list_profiles():
        print(summary_line(load_profile(name)))
    return 0


def _cmd_show(args: argparse.Namespace) -> int:
    profile = load_profile(args.name)
    if args.json:
        print(json.dumps(profile.model_dump(mode="json"), indent=2))
    else:
        print(format_profile(profile))
    return 0


def _cmd_check(args: argparse.Namespace) -> int:
    names = args.names or list_profiles()
    reports = [size_profile(load_profile(n)) for n in names]
    if args.json:
        print(json.dumps([r.to_dict() for r in reports], indent=2))
    else:
        print("\n".join(_format_report(r) for r in reports))
    return 0 if all(r.ok for r in reports) else 1


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "profiles",
        help="list, show and check hardware profiles",
        description="Hardware profiles (hardware_profiles/*.toml): list, show, sizing checks.",
    )
    sub = parser.add_subparsers(dest="profiles_command", required=True, metavar="ACTION")

    p_list = sub.add_parser("list", help="one profile per line: name, then a summary")
    p_list.set_defaults(func=_cmd_list)

    p_show = sub.add_parser("show", help="print one validated profile")
    p_show.add_argument("name", metavar="NAME", help="profile name or path to a TOML file")
    p_show.add_argument("--json", action="store_true", help="print JSON")
    p_show.set_defaults(func=_cmd_show)

    p_check = sub.add_parser(
        "check", help="power, battery and radiator sizing checks (exit 1 on a failure)"
    )
    p_check.add_argument(
        "names", nargs="*", metavar="NAME", help="profiles or paths (default: all packaged)"
    )
    p_check.add_argument("--json", action="store_true", help="print JSON")
    p_check.set_defaults(func=_cmd_check)
