from __future__ import annotations

import pytest

from groundstation.console.units import si


@pytest.mark.parametrize(
    ("value", "unit", "text"),
    [
        (4.289e-7, "s", "429 ns"),
        (3e-6, "J", "3 µJ"),
        (0.00099996, "s", "1 ms"),  # rounds up into the next prefix, not "1e+03 µs"
        (12.5, "s", "12.5 s"),
        (1520.0, "W", "1.52 kW"),
        (-0.002, "J", "-2 mJ"),
        (0.0, "J", "0 J"),
        (None, "J", "-"),
    ],
)
def test_si(value: float | None, unit: str, text: str) -> None:
    assert si(value, unit) == text


def test_ascii() -> None:
    assert si(3e-6, "J", ascii_only=True) == "3 uJ"
