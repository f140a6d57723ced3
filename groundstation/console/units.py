"""Figures with SI prefixes, as operators read them: ``429 ns``, ``3.00 µJ``, ``1.52 kW``.

Modelled job latencies and energies span nanoseconds to hours and nanojoules to
kilojoules; a fixed number of decimals shows most of them as ``0.0000``. One rule for the
job table, the demo and the console page.
"""

from __future__ import annotations

import math

__all__ = ["si"]

_PREFIXES = ((1e9, "G"), (1e6, "M"), (1e3, "k"), (1.0, ""), (1e-3, "m"), (1e-6, "µ"),
             (1e-9, "n"), (1e-12, "p"))


def si(value: float | None, unit: str, digits: int = 3, *, ascii_only: bool = False) -> str:
    """``value`` in ``unit`` with ``digits`` significant digits and an SI prefix; ``-`` for
    None, ``0 unit`` for zero."""
    if value is None:
        return "-"
    if value == 0 or not math.isfinite(value):
        return f"{value:g} {unit}"
    scale, prefix = next(
        ((f, p) for f, p in _PREFIXES if abs(value) >= f * 0.9995),  # 999.96 ms: 1 s
        _PREFIXES[-1],
    )
    if ascii_only and prefix == "µ":
        prefix = "u"
    return f"{value / scale:.{digits}g} {prefix}{unit}"
