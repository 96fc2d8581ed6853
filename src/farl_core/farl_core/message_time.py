"""builtin_interfaces/Time <-> float seconds, for any ROS 2 message implementation (rclpy's or rosbags').

Every FARL dataclass carries time as float seconds on the robot clock (simulated time under
franky-sim); messages carry (sec, nanosec).  Converting in one place keeps the rounding the same
for every topic, which matters: the control step's stamp is how a proposed action, its command
and its verdict are matched across nodes.
"""

from __future__ import annotations

import math
from typing import Any


def stamp_fields(seconds: float) -> tuple[int, int]:
    """(sec, nanosec) of a time in seconds, nanosec rounded and kept in [0, 1e9)."""
    sec = math.floor(seconds)
    nanosec = int(round((seconds - sec) * 1e9))
    if nanosec >= 1_000_000_000:
        sec, nanosec = sec + 1, nanosec - 1_000_000_000
    return int(sec), nanosec


def to_stamp(seconds: float, time_type: Any) -> Any:
    """A builtin_interfaces/Time of `time_type` (the message class) for `seconds`."""
    sec, nanosec = stamp_fields(seconds)
    return time_type(sec=sec, nanosec=nanosec)


def stamp_seconds(stamp: Any) -> float:
    """Seconds of a builtin_interfaces/Time (any implementation with sec and nanosec)."""
    return float(stamp.sec) + float(stamp.nanosec) * 1e-9


def stamp_key(stamp: Any) -> tuple[int, int]:
    """An exact key for matching messages of one control step (floats would round differently)."""
    return int(stamp.sec), int(stamp.nanosec)
