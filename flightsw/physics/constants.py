"""Physical constants used by the physics package, each with its source.

Units: km, s, W, K, kg unless the name says otherwise.
"""

from __future__ import annotations

import math

__all__ = [
    "ALBEDO",
    "AU_KM",
    "C_KM_S",
    "C_M_S",
    "EARTH_FLATTENING",
    "EARTH_IR_W_M2",
    "EARTH_ROTATION_RAD_S",
    "J2",
    "J2000_JD",
    "MU_EARTH",
    "R_EARTH",
    "R_SUN",
    "SECONDS_PER_DAY",
    "SIGMA",
    "SOLAR_CONSTANT",
    "SSO_RAAN_RATE_RAD_S",
    "TROPICAL_YEAR_DAYS",
    "T_SINK_K",
    "UNIX_EPOCH_JD",
]

# Earth gravitational parameter, km^3/s^2: WGS-84 / EGM-96 value (NIMA TR8350.2).
MU_EARTH = 398600.4418
# Earth equatorial radius, km: WGS-84 semi-major axis (NIMA TR8350.2).
R_EARTH = 6378.137
# Earth flattening: WGS-84 (NIMA TR8350.2), 1/298.257223563.
EARTH_FLATTENING = 1.0 / 298.257223563
# Second zonal harmonic (unnormalised): EGM-96 / Vallado, "Fundamentals of Astrodynamics", 4th ed.
J2 = 1.08262668e-3
# Earth rotation rate, rad/s: WGS-84 (NIMA TR8350.2).
EARTH_ROTATION_RAD_S = 7.292115e-5

# Astronomical unit, km: IAU 2012 Resolution B2 (exact).
AU_KM = 149_597_870.7
# Nominal solar radius, km: IAU 2015 Resolution B3.
R_SUN = 695_700.0
# Total solar irradiance at 1 AU, W/m^2: Kopp & Lean (2011), GRL 38, L01706 (1360.8 +- 0.5).
SOLAR_CONSTANT = 1361.0
# Stefan-Boltzmann constant, W m^-2 K^-4: CODATA 2018 (exact since the 2019 SI).
SIGMA = 5.670374419e-8
# Speed of light: SI definition (exact).
C_M_S = 299_792_458.0
C_KM_S = C_M_S / 1000.0
# Earth outgoing long-wave (infrared) radiation, W/m^2, global annual mean: Trenberth,
# Fasullo & Kiehl (2009), BAMS 90, 311 (239); 237 is the common spacecraft design value
# (Gilmore, "Spacecraft Thermal Control Handbook", 2002).
EARTH_IR_W_M2 = 237.0
# Earth Bond albedo, design mean: Gilmore (2002), ~0.3 (CERES measures 0.29).
ALBEDO = 0.3
# Deep-space sink temperature, K: cosmic microwave background, ~2.7 K, rounded.
T_SINK_K = 3.0

# Days and Julian dates.
SECONDS_PER_DAY = 86_400.0
# Julian date of 1970-01-01T00:00:00 UTC (POSIX epoch): by definition of the JD.
UNIX_EPOCH_JD = 2_440_587.5
# Julian date of J2000.0 (2000-01-01T12:00 TT; used here on the UTC scale): IAU.
J2000_JD = 2_451_545.0
# Tropical year, days: mean value at J2000 (Astronomical Almanac).
TROPICAL_YEAR_DAYS = 365.242190
# Node precession rate that keeps a sun-synchronous orbit's plane fixed w.r.t. the sun, rad/s.
SSO_RAAN_RATE_RAD_S = 2.0 * math.pi / (TROPICAL_YEAR_DAYS * SECONDS_PER_DAY)
