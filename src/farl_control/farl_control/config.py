"""Configuration of the Franka bridge and of its hard limits (node `farl_bridge`).

Defaults are chosen for a Panda on a table with the paper's 5 Hz control loop: a 3 cm
translation cap per command is 15 cm/s at 5 Hz, well inside what franky's Cartesian motion
tracks at dynamics factor 0.1 (SERL uses a comparable per-step clip in its Franka env).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from farl_core.config import param

Vec3 = tuple[float, float, float]


@dataclass(frozen=True)
class HardLimits:
    """Limits no learned component can switch off: they are applied to every command."""

    workspace_min: Vec3 = (0.30, -0.30, 0.02)   # m, robot base frame: the safety box corner
    workspace_max: Vec3 = (0.70, 0.30, 0.40)    # m, opposite corner
    max_translation: float = param(0.03, gt=0.0, le=0.10)  # m per command
    max_yaw: float = param(0.15, ge=0.0, le=0.50)          # rad per command
    dynamics_factor: float = param(0.10, gt=0.0, le=1.0)   # franky relative velocity/accel/jerk
    watchdog_periods: float = param(2.0, ge=1.0)           # stop after this many silent periods

    def __post_init__(self) -> None:
        for axis, lo, hi in zip("xyz", self.workspace_min, self.workspace_max, strict=False):
            if lo >= hi:
                raise ValueError(f"workspace_min.{axis} ({lo}) must be below workspace_max.{axis} ({hi})")


@dataclass(frozen=True)
class BridgeConfig:
    """Which robot to drive and how fast."""

    robot: str = "sim"  # "sim": embedded franky-sim on loopback; otherwise the robot's FCI IP
    control_rate_hz: float = param(5.0, gt=0.0, le=1000.0)  # paper: 5 Hz perception + control
    state_rate_hz: float = param(30.0, gt=0.0, le=1000.0)   # RobotState publishing rate
    limits: HardLimits = field(default_factory=HardLimits)
