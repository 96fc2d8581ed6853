"""ROS teleop devices: any `geometry_msgs/Twist` or `sensor_msgs/Joy` topic as the operator (devices.py's interface).

So the drivers people already run work unchanged: `spacenav_node` (/spacenav/twist, /spacenav/joy),
`joy_node` with or without `teleop_twist_joy`, a VR or haptic bridge publishing Twist.

    twist   the linear velocity (m/s, base frame) times `scale` becomes the per-tick displacement,
            normalised by the bridge's max_translation: a Twist of max_translation * rate m/s is
            full speed.  Deadman: a Twist newer than `timeout_s` with non-zero linear velocity.
    joy     axes `axes` (base x, y, z) times `signs`; the deadman is the enable button held
            (teleop_twist_joy's convention), the gripper buttons latch closed / open.

The subscription lives on a node of its own context, spun in a background thread, so the device
works in the synchronous `farl teleop` process as it would beside other nodes.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from farl_teleop.devices import CLOSED, OPEN, TeleopInput, _input


@dataclass(frozen=True)
class TwistMapping:
    period_s: float = 0.2            # the control period: one tick's displacement = velocity * period
    max_translation: float = 0.03    # the bridge's per-command cap (m): a full action
    scale: float = 1.0               # multiplies the incoming velocity (drivers publish in their own units)
    timeout_s: float = 0.5           # a Twist older than this is no input


def twist_input(linear: tuple[float, float, float], age_s: float, mapping: TwistMapping,
                gripper: float) -> TeleopInput:
    """The input of a Twist's linear velocity received `age_s` ago."""
    motion = np.asarray(linear, dtype=float) * mapping.scale * mapping.period_s / mapping.max_translation
    fresh = age_s <= mapping.timeout_s and bool(np.any(motion))
    return _input(motion, gripper, fresh)


@dataclass(frozen=True)
class JoyMapping:
    axes: tuple[int, int, int] = (1, 0, 4)     # base x, y, z <- Joy axes (left stick up/left, right stick up)
    signs: tuple[float, float, float] = (1.0, 1.0, 1.0)
    enable_button: int = 4                     # held = deadman released (left shoulder on common pads)
    close_button: int = 0
    open_button: int = 1
    timeout_s: float = 0.5


def joy_input(axes: list[float], buttons: list[int], age_s: float, mapping: JoyMapping,
              gripper: float) -> tuple[TeleopInput, float]:
    """(input, latched gripper) of one Joy message received `age_s` ago."""
    def button(i: int) -> bool:
        return 0 <= i < len(buttons) and bool(buttons[i])

    if button(mapping.close_button):
        gripper = CLOSED
    elif button(mapping.open_button):
        gripper = OPEN
    motion = np.array([mapping.signs[k] * (axes[i] if 0 <= i < len(axes) else 0.0)
                       for k, i in enumerate(mapping.axes)])
    engaged = age_s <= mapping.timeout_s and button(mapping.enable_button)
    return _input(motion, gripper, engaged), gripper


class RosTopicTeleop:
    """A Twist or Joy topic read on a node of its own (module docstring)."""

    def __init__(self, kind: str, topic: str, twist: TwistMapping = TwistMapping(),
                 joy: JoyMapping = JoyMapping(), node_name: str = "farl_teleop_device") -> None:
        import rclpy
        from rclpy.context import Context
        from rclpy.executors import SingleThreadedExecutor
        from rclpy.qos import qos_profile_sensor_data

        self.name = f"{kind}:{topic}"
        self.kind, self.twist, self.joy = kind, twist, joy
        self._lock = threading.Lock()
        self._latest: tuple[float, Any] | None = None
        self._gripper = OPEN
        self._context = Context()
        rclpy.init(context=self._context)
        self._node = rclpy.create_node(node_name, context=self._context)
        if kind == "twist":
            from geometry_msgs.msg import Twist as kind_type
        else:
            from sensor_msgs.msg import Joy as kind_type
        self._node.create_subscription(kind_type, topic, self._on_message, qos_profile_sensor_data)
        self._executor = SingleThreadedExecutor(context=self._context)
        self._executor.add_node(self._node)
        self._thread = threading.Thread(target=self._spin, daemon=True, name=f"teleop-{kind}")
        self._thread.start()

    def _spin(self) -> None:
        from rclpy.executors import ExternalShutdownException

        try:
            self._executor.spin()
        except ExternalShutdownException:
            pass  # close() shut the context down

    def _on_message(self, msg: Any) -> None:
        with self._lock:
            self._latest = (time.monotonic(), msg)

    @property
    def messages_seen(self) -> bool:
        with self._lock:
            return self._latest is not None

    def read(self, observation: np.ndarray) -> TeleopInput:
        del observation
        with self._lock:
            latest = self._latest
        if latest is None:
            return _input(np.zeros(3), self._gripper, False)
        age, msg = time.monotonic() - latest[0], latest[1]
        if self.kind == "twist":
            return twist_input((msg.linear.x, msg.linear.y, msg.linear.z), age, self.twist, self._gripper)
        result, self._gripper = joy_input(list(msg.axes), list(msg.buttons), age, self.joy, self._gripper)
        return result

    def close(self) -> None:
        import rclpy

        self._executor.shutdown(timeout_sec=1.0)
        self._node.destroy_node()
        if self._context.ok():
            rclpy.shutdown(context=self._context)
        self._thread.join(timeout=2.0)
