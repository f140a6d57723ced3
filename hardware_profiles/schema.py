"""The typed schema of a hardware profile (see ``docs/hardware_profiles.md``).

A profile is a definition, not a reading: the compute, power, thermal, radiation and link
figures of one kind of satellite node. Every model forbids unknown fields, so a misspelt
key is an error rather than a silently ignored default. Units are SI unless a field name
says otherwise (``_wh``, ``_km``, ``_c`` for degrees Celsius).
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator, model_validator
from pydantic_core import PydanticCustomError

from flightsw.exceptions import ProfileError

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
    "Thermal",
]

Precision = Literal["fp64", "fp32", "tf32", "bf16", "fp16", "fp8", "int8"]
PRECISIONS: tuple[Precision, ...] = ("fp64", "fp32", "tf32", "bf16", "fp16", "fp8", "int8")

Mitigation = Literal["weight_checksum", "dual_execution", "scrubbing", "ecc"]
MITIGATIONS: tuple[Mitigation, ...] = ("weight_checksum", "dual_execution", "scrubbing", "ecc")

Positive = Annotated[float, Field(gt=0)]
NonNegative = Annotated[float, Field(ge=0)]
Fraction = Annotated[float, Field(gt=0, le=1)]  # (0, 1]
OpenFraction = Annotated[float, Field(gt=0, lt=1)]  # (0, 1)
HalfOpenFraction = Annotated[float, Field(ge=0, lt=1)]  # [0, 1)
ModeName = Annotated[str, Field(pattern=r"^[A-Za-z0-9_.-]{1,32}$")]


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class PowerMode(_Section):
    """One compute power mode (DVFS / power cap / nvpmodel setting)."""

    name: ModeName = Field(description="mode name, unique within the profile")
    watts: Positive = Field(description="compute power while running inference, W")
    throughput: Fraction = Field(
        description="inference throughput relative to the fastest mode (which is 1.0)"
    )


class Compute(_Section):
    """The accelerator: roofline figures and power modes."""

    accelerator: str = Field(min_length=1, description="hardware name")
    peak_ops: dict[Precision, Positive] = Field(
        min_length=1, description="dense peak operations per second, by precision"
    )
    inference_precision: Precision = Field(
        description="the key of peak_ops the onboard roofline uses"
    )
    efficiency: Fraction = Field(
        description="achieved fraction of peak for real inference (an estimate)"
    )
    memory_bandwidth_bps: Positive = Field(description="memory bandwidth, bytes/s")
    memory_bytes: Positive = Field(description="accelerator memory, bytes")
    idle_w: NonNegative = Field(description="compute power when idle, W")
    power_modes: list[PowerMode] = Field(min_length=1, description="at least one mode")
    default_mode: ModeName = Field(description="the mode the node boots in")

    @field_validator("inference_precision")
    @classmethod
    def _precision_has_peak(cls, value: Precision, info: ValidationInfo) -> Precision:
        peak = info.data.get("peak_ops")
        if peak is not None and value not in peak:
            raise ValueError(
                f"{value!r} has no entry in compute.peak_ops (present: {', '.join(peak)})"
            )
        return value

    @field_validator("power_modes")
    @classmethod
    def _modes_consistent(cls, modes: list[PowerMode]) -> list[PowerMode]:
        names = [m.name for m in modes]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"power mode names must be unique; repeated: {', '.join(dupes)}")
        fastest = max(m.throughput for m in modes)
        if fastest != 1.0:
            raise ValueError(
                f"the fastest power mode must have throughput 1.0 (found {fastest:g}); "
                "throughput is relative to the fastest mode"
            )
        return modes

    @field_validator("default_mode")
    @classmethod
    def _default_is_a_mode(cls, value: str, info: ValidationInfo) -> str:
        modes: list[PowerMode] | None = info.data.get("power_modes")
        if modes is not None and value not in {m.name for m in modes}:
            valid = ", ".join(m.name for m in modes)
            raise ValueError(f"{value!r} is not a power mode (valid: {valid})")
        return value


class Bus(_Section):
    """Electrical power system: solar array and battery."""

    array_area_m2: Positive = Field(description="solar cell area, m^2")
    cell_efficiency: OpenFraction = Field(description="cell efficiency (BOL)")
    degradation: HalfOpenFraction = Field(description="fractional array power loss")
    battery_wh: Positive = Field(description="battery capacity, Wh")
    charge_efficiency: Fraction = Field(description="fraction of charging energy stored")
    discharge_efficiency: Fraction = Field(description="fraction of stored energy delivered")
    base_load_w: NonNegative = Field(description="bus load excluding compute and heaters, W")
    heater_w: NonNegative = Field(description="survival heater power when on, W")
    dod_floor: HalfOpenFraction = Field(
        description="minimum state of charge that must always remain (a hard budget)"
    )
    initial_soc: Fraction = Field(description="state of charge at the start of a run")

    @field_validator("initial_soc")
    @classmethod
    def _starts_above_floor(cls, value: float, info: ValidationInfo) -> float:
        floor = info.data.get("dod_floor")
        if floor is not None and value <= floor:
            raise ValueError(f"initial_soc ({value:g}) must be above dod_floor ({floor:g})")
        return value

    @property
    def dod_floor_wh(self) -> float:
        """Energy that must always remain in the battery, Wh."""
        return self.battery_wh * self.dod_floor


class Thermal(_Section):
    """Lumped-node thermal model: m c dT/dt = absorbed + internal - radiated."""

    heat_capacity_j_per_k: Positive = Field(description="m * c of the node, J/K")
    radiator_area_m2: Positive = Field(description="radiating area, m^2")
    emissivity: Fraction = Field(description="IR emissivity of the radiator")
    absorptivity: Annotated[float, Field(ge=0, le=1)] = Field(
        description="solar absorptivity of the sunlit surfaces"
    )
    sun_area_m2: NonNegative = Field(description="area absorbing direct sunlight, m^2")
    albedo_area_m2: NonNegative = Field(description="area absorbing Earth albedo, m^2")
    earth_ir_area_m2: NonNegative = Field(description="area absorbing Earth IR, m^2")
    initial_c: float = Field(description="temperature at the start of a run, deg C")
    throttle_c: float = Field(description="above this the node drops its power mode, deg C")
    max_c: float = Field(description="above this compute stops, deg C")
    min_c: float = Field(description="below this heaters run, deg C")

    @field_validator("max_c")
    @classmethod
    def _max_above_throttle(cls, value: float, info: ValidationInfo) -> float:
        throttle = info.data.get("throttle_c")
        if throttle is not None and value <= throttle:
            raise ValueError(f"max_c ({value:g}) must be above throttle_c ({throttle:g})")
        return value

    @field_validator("min_c")
    @classmethod
    def _min_below_throttle(cls, value: float, info: ValidationInfo) -> float:
        throttle = info.data.get("throttle_c")
        if throttle is not None and value >= throttle:
            raise ValueError(f"min_c ({value:g}) must be below throttle_c ({throttle:g})")
        return value


class Radiation(_Section):
    """Single-event upsets in memory as a Poisson process."""

    upset_rate_per_bit_day: NonNegative = Field(
        description="upsets per bit per day outside the SAA (multiplied by saa_factor inside)"
    )
    memory_bits: Positive = Field(description="bits exposed (weights and activations)")
    saa_factor: Annotated[float, Field(ge=1)] = Field(
        description="rate multiplier inside the South Atlantic Anomaly"
    )
    mitigation: list[Mitigation] = Field(
        default_factory=list, description="mitigations the node applies"
    )

    @field_validator("mitigation")
    @classmethod
    def _unique(cls, value: list[Mitigation]) -> list[Mitigation]:
        dupes = sorted({m for m in value if value.count(m) > 1})
        if dupes:
            raise ValueError(f"mitigations must be unique; repeated: {', '.join(dupes)}")
        return value


class Links(_Section):
    """Communication links."""

    isl_rate_bps: NonNegative = Field(description="inter-satellite link rate, bit/s (0 = none)")
    isl_max_range_km: NonNegative = Field(description="longest usable ISL range, km")
    downlink_rate_bps: Positive = Field(description="space-to-ground rate, bit/s")
    uplink_rate_bps: Positive = Field(description="ground-to-space rate, bit/s")
    processing_latency_s: NonNegative = Field(description="per-hop latency besides range/c, s")

    @property
    def has_isl(self) -> bool:
        return self.isl_rate_bps > 0 and self.isl_max_range_km > 0


class Design(_Section):
    """The operating point a profile was sized for (optional; used by the sizing checks)."""

    altitude_km: Positive = Field(default=550.0, description="design orbit altitude, km")
    eclipse_fraction: HalfOpenFraction = Field(
        default=0.372, description="worst eclipse fraction of an orbit the design must survive"
    )
    sustained_mode: ModeName | None = Field(
        default=None,
        description="highest mode the array sustains through a worst-case orbit "
        "(default: the fastest mode)",
    )
    mass_kg: Positive | None = Field(default=None, description="satellite mass, kg")


class Lifetime(_Section):
    """Ageing and attrition of one satellite over its life (optional; the lifetime study).

    The models that use these figures are in :mod:`flightsw.node.aging`.
    """

    accelerators: Annotated[int, Field(ge=1)] = Field(
        description="accelerators per satellite (each fails on its own)"
    )
    design_life_years: Positive = Field(description="planned life before deorbit, years")
    dose_rate_rad_per_year: NonNegative = Field(
        description="total ionising dose rate behind dose_ref_shielding_mm_al, rad(Si)/year"
    )
    dose_ref_shielding_mm_al: Positive = Field(
        description="aluminium shielding the dose rate was given for, mm"
    )
    shielding_mm_al: Positive = Field(description="shielding of the accelerators, mm Al")
    hard_failure_dose_rad: Positive = Field(
        description="characteristic (Weibull 63 %) dose of a permanent failure, rad(Si)"
    )
    hard_failure_shape: Positive = Field(description="Weibull shape of the dose hazard")
    random_failure_per_year: HalfOpenFraction = Field(
        description="dose-independent permanent failure probability per accelerator-year"
    )
    battery_cycles_to_80pct: Positive = Field(
        description="charge cycles until the battery keeps 80 % of its capacity, at the ref DoD"
    )
    battery_ref_dod: OpenFraction = Field(description="depth of discharge of that cycle life")
    battery_dod_exponent: NonNegative = Field(
        description="cycle life scales as (ref DoD / DoD) ** exponent"
    )
    array_degradation_per_year: HalfOpenFraction = Field(
        description="fractional solar-array power loss per year"
    )
    radiator_absorptivity_rise_per_year: NonNegative = Field(
        description="rise of the radiator's solar absorptivity per year (UV darkening)"
    )
    manoeuvres_per_year: NonNegative = Field(
        description="debris collision-avoidance manoeuvres per satellite-year"
    )
    manoeuvre_pause_s: NonNegative = Field(description="compute paused per manoeuvre, s")
    propulsion_w: NonNegative = Field(description="propulsion power while manoeuvring, W")


class Cost(_Section):
    """Unit costs for the economics study (optional)."""

    satellite_usd: Positive = Field(
        description="one satellite without its accelerators: bus, array, radiator, integration"
    )
    accelerator_usd: Positive = Field(description="one accelerator (module or chip)")


class HardwareProfile(_Section):
    """One kind of satellite node, every figure with its source in the TOML file."""

    name: str = Field(pattern=r"^[a-z0-9][a-z0-9-]{0,63}$", description="profile name = file stem")
    description: str = Field(min_length=1)
    compute: Compute
    bus: Bus
    thermal: Thermal
    radiation: Radiation
    links: Links
    design: Design = Field(default_factory=Design)
    lifetime: Lifetime | None = Field(default=None, description="ageing figures (optional)")
    cost: Cost | None = Field(default=None, description="unit costs (optional)")

    @model_validator(mode="after")
    def _sustained_is_a_mode(self) -> HardwareProfile:
        sustained = self.design.sustained_mode
        if sustained is not None and sustained not in self.mode_names():
            raise PydanticCustomError(
                "unknown_mode",
                "design.sustained_mode: {mode} is not a power mode (valid: {valid})",
                {"mode": repr(sustained), "valid": ", ".join(self.mode_names())},
            )
        return self

    # -- power modes ---------------------------------------------------------------------

    def mode_names(self) -> list[str]:
        """Power mode names in file order."""
        return [m.name for m in self.compute.power_modes]

    def power_mode(self, name: str) -> PowerMode:
        """The power mode called ``name``; :class:`ProfileError` names the valid ones."""
        for mode in self.compute.power_modes:
            if mode.name == name:
                return mode
        raise ProfileError(
            f"profile {self.name!r} has no power mode {name!r} "
            f"(valid: {', '.join(self.mode_names())})"
        )

    @property
    def fastest_mode(self) -> PowerMode:
        """The mode with throughput 1.0 (the cheapest one if several)."""
        return min(self.compute.power_modes, key=lambda m: (-m.throughput, m.watts))

    @property
    def default_mode(self) -> PowerMode:
        return self.power_mode(self.compute.default_mode)

    @property
    def sustained_mode(self) -> PowerMode:
        """The mode the design sustains through a worst-case orbit (see :class:`Design`)."""
        name = self.design.sustained_mode
        return self.fastest_mode if name is None else self.power_mode(name)

    def modes_by_watts(self) -> list[PowerMode]:
        """Power modes from the lowest to the highest power."""
        return sorted(self.compute.power_modes, key=lambda m: (m.watts, m.throughput))

    def _mode(self, mode: str | PowerMode | None) -> PowerMode:
        if mode is None:
            return self.default_mode
        if isinstance(mode, PowerMode):
            return mode
        return self.power_mode(mode)

    def effective_ops_per_s(self, mode: str | PowerMode | None = None) -> float:
        """Achieved ops/s at ``mode`` (default mode if None):
        peak_ops[inference_precision] * efficiency * throughput."""
        c = self.compute
        return c.peak_ops[c.inference_precision] * c.efficiency * self._mode(mode).throughput

    def load_w(self, mode: str | PowerMode | None = None, *, heaters: bool = False) -> float:
        """Total electrical load while running at ``mode``: bus + compute (+ heaters), W."""
        heater = self.bus.heater_w if heaters else 0.0
        return self.bus.base_load_w + self._mode(mode).watts + heater

    def idle_load_w(self, *, heaters: bool = False) -> float:
        """Total electrical load with compute idle, W."""
        heater = self.bus.heater_w if heaters else 0.0
        return self.bus.base_load_w + self.compute.idle_w + heater

    @property
    def dod_floor_wh(self) -> float:
        """Energy that must always remain in the battery, Wh."""
        return self.bus.dod_floor_wh
