"""Numpy-vectorised physics of N satellites: one array row per satellite.

Orbits (circular/Walker and TLE/SGP4), frames, the Sun and Earth's shadow, eclipses, ground
contacts, inter-satellite links, power, thermal and radiation. Mission time is POSIX
seconds UTC; positions are km in the ECI frame (TEME, see :mod:`flightsw.physics.frames`).
See docs/physics.md for the models and their assumptions.
"""

from flightsw.physics.eclipse import eclipse_fraction, eclipse_intervals
from flightsw.physics.events import find_intervals
from flightsw.physics.frames import (
    ecef_to_eci,
    ecef_to_geodetic,
    eci_to_ecef,
    geodetic_to_ecef,
    gmst_rad,
)
from flightsw.physics.ground import Pass, Station, contact_windows, elevation_deg, in_contact
from flightsw.physics.isl import (
    latency_s,
    line_of_sight,
    link_matrix,
    link_pairs,
    nearest_links,
    pair_links,
    range_matrix,
)
from flightsw.physics.orbit import (
    CircularOrbits,
    Orbits,
    TleOrbits,
    circular_period_s,
    dawn_dusk_raan,
    ltan_raan,
    sun_synchronous_inclination,
    walker,
)
from flightsw.physics.power import (
    BatteryStep,
    PowerParams,
    cos_incidence,
    floor_wh,
    max_load_w,
    max_sustainable_load_w,
    orbit_average_solar_w,
    orbit_energy_balance_wh,
    solar_power_w,
    step_battery,
)
from flightsw.physics.radiation import expected_upsets, in_saa, sample_upsets, split_rate
from flightsw.physics.sun import (
    beta_angle_deg,
    illumination,
    sun_direction,
    sun_distance_au,
    sun_position_km,
)
from flightsw.physics.thermal import (
    HeatFlows,
    ThermalParams,
    equilibrium_temperature_k,
    heat_flows,
    radiated_flux_w_m2,
    step_temperature,
    time_constant_s,
    view_factor,
)

__all__ = [
    "BatteryStep",
    "CircularOrbits",
    "HeatFlows",
    "Orbits",
    "Pass",
    "PowerParams",
    "Station",
    "ThermalParams",
    "TleOrbits",
    "beta_angle_deg",
    "circular_period_s",
    "contact_windows",
    "cos_incidence",
    "dawn_dusk_raan",
    "ecef_to_eci",
    "ecef_to_geodetic",
    "eci_to_ecef",
    "eclipse_fraction",
    "eclipse_intervals",
    "elevation_deg",
    "equilibrium_temperature_k",
    "expected_upsets",
    "find_intervals",
    "floor_wh",
    "geodetic_to_ecef",
    "gmst_rad",
    "heat_flows",
    "illumination",
    "in_contact",
    "in_saa",
    "latency_s",
    "line_of_sight",
    "link_matrix",
    "link_pairs",
    "ltan_raan",
    "max_load_w",
    "max_sustainable_load_w",
    "nearest_links",
    "orbit_average_solar_w",
    "orbit_energy_balance_wh",
    "pair_links",
    "radiated_flux_w_m2",
    "range_matrix",
    "sample_upsets",
    "solar_power_w",
    "split_rate",
    "step_battery",
    "step_temperature",
    "sun_direction",
    "sun_distance_au",
    "sun_position_km",
    "sun_synchronous_inclination",
    "time_constant_s",
    "view_factor",
    "walker",
]
