"""Configuration of the Franka bridge and of its hard limits (node `farl_bridge`).

Defaults are chosen for a Panda on a table with the paper's 5 Hz control loop: a 3 cm
translation cap per command is 15 cm/s at 5 Hz, well inside what franky's Cartesian motion
tracks at dynamics factor 0.1 (SERL uses a comparable per-step clip in its Franka env).
The home pose is franky-sim's and the Panda's usual ready pose (EE about 0.55 m in front of
the base, 0.52 m up, pointing down).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from farl_core.config import param

Vec3 = tuple[float, float, float]


@dataclass(frozen=True)
class HardLimits:
    """Limits no learned component can switch off: they are applied to every command."""

    workspace_min: Vec3 = (0.30, -0.30, 0.02)   # m, robot base frame: the safety box corner
    workspace_max: Vec3 = (0.70, 0.30, 0.55)    # m, opposite corner (the home pose is inside)
    max_translation: float = param(0.03, gt=0.0, le=0.10)  # m per command
    max_yaw: float = param(0.15, ge=0.0, le=0.50)          # rad per command
    dynamics_factor: float = param(0.10, gt=0.0, le=1.0)   # franky relative velocity/accel/jerk
    watchdog_periods: float = param(2.0, ge=1.0)           # stop after this many silent periods

    def __post_init__(self) -> None:
        for axis, lo, hi in zip("xyz", self.workspace_min, self.workspace_max, strict=False):
            if lo >= hi:
                raise ValueError(f"workspace_min.{axis} ({lo}) must be below workspace_max.{axis} ({hi})")


@dataclass(frozen=True)
class RecoveryConfig:
    """Reflex-error handling: `recover_from_errors` with exponential backoff, then give up loudly."""

    retries: int = param(3, ge=1, le=20)
    backoff_s: float = param(0.2, ge=0.0, le=10.0)  # wait before attempt k: backoff_s * 2**k


@dataclass(frozen=True)
class ResetConfig:
    """Where `reset` sends the arm (a joint motion, slower than task motions)."""

    home_joints: tuple[float, ...] = (0.0, 0.0, 0.0, -1.57, 0.0, 1.57, 0.785)  # rad
    joint_noise: float = param(0.0, ge=0.0, le=0.2)          # rad, uniform offset per joint per reset
    dynamics_factor: float = param(0.15, gt=0.0, le=1.0)

    def __post_init__(self) -> None:
        if len(self.home_joints) != 7:
            raise ValueError(f"home_joints needs 7 joint angles, got {len(self.home_joints)}")


@dataclass(frozen=True)
class GripperConfig:
    """The action's gripper channel: above +threshold grasp, below -threshold open, between: keep."""

    threshold: float = param(0.5, ge=0.0, lt=1.0)
    open_width: float = param(0.08, gt=0.0, le=0.08)  # m
    speed: float = param(0.05, gt=0.0, le=0.2)        # m/s
    force: float = param(20.0, gt=0.0, le=70.0)       # N, grasp force


@dataclass(frozen=True)
class BridgeConfig:
    """Which robot to drive and how fast."""

    robot: str = "sim"  # "sim": embedded franky-sim on loopback; otherwise the robot's FCI IP
    control_rate_hz: float = param(5.0, gt=0.0, le=1000.0)  # paper: 5 Hz perception + control
    state_rate_hz: float = param(30.0, gt=0.0, le=1000.0)   # RobotState publishing rate
    limits: HardLimits = field(default_factory=HardLimits)
    recovery: RecoveryConfig = field(default_factory=RecoveryConfig)
    reset: ResetConfig = field(default_factory=ResetConfig)
    gripper: GripperConfig = field(default_factory=GripperConfig)
    realtime_kernel: bool = False  # True: libfranka enforces its realtime checks (franky RealtimeConfig.Enforce)
