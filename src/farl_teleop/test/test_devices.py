"""Teleop devices: each maps its input to the task action, and with no input (the deadman) commands no motion."""

from __future__ import annotations

import sys
import time
from types import SimpleNamespace

import numpy as np
import pytest

from farl_core.errors import FarlError
from farl_teleop.devices import (
    CLOSED,
    OPEN,
    KeyboardTeleop,
    ScriptedTeleop,
    SpaceMouseMapping,
    SpaceMouseTeleop,
    device_kind,
    spacemouse_input,
)
from farl_teleop.topic_teleop_node import JoyMapping, TwistMapping, joy_input, twist_input

OBS = np.zeros(8)


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_keyboard_moves_while_a_key_repeats_and_stops_when_it_does_not() -> None:
    clock = Clock()
    keys = KeyboardTeleop(speed=0.5, hold_s=0.6, clock=clock)
    idle = keys.read(OBS)
    assert not idle.engaged and np.all(idle.action[:3] == 0) and idle.action[3] == OPEN
    assert keys.feed("i") and keys.feed("l") and not keys.feed("s")   # s is the console's start key
    held = keys.read(OBS)
    assert held.engaged and np.allclose(held.action[:3], [0.5, -0.5, 0.0])
    clock.now += 0.5
    keys.feed("i")                                          # the terminal's repeat of the held key
    clock.now += 0.3                                        # l's last repeat is 0.8 s old: released
    assert np.allclose(keys.read(OBS).action[:3], [0.5, 0.0, 0.0])
    clock.now += 0.7
    released = keys.read(OBS)
    assert not released.engaged and np.all(released.action[:3] == 0)


def test_keyboard_gripper_key_toggles_the_latched_gripper() -> None:
    keys = KeyboardTeleop(clock=Clock())
    keys.feed("g")
    assert keys.read(OBS).action[3] == CLOSED
    keys.feed("g")
    assert keys.read(OBS).action[3] == OPEN
    with pytest.raises(FarlError, match="speed"):
        KeyboardTeleop(speed=1.5)


def test_spacemouse_axes_deadzone_and_buttons() -> None:
    mapping = SpaceMouseMapping()
    pushed = SimpleNamespace(x=0.4, y=0.8, z=-0.05, buttons=[1, 0])
    reading, gripper = spacemouse_input(pushed, mapping, OPEN)
    # base x <- puck y, base y <- -puck x, z inside the deadzone
    assert reading.engaged and np.allclose(reading.action[:3], [0.8, -0.4, 0.0]) and gripper == CLOSED
    rest = SimpleNamespace(x=0.03, y=-0.02, z=0.01, buttons=[0, 1])
    reading, gripper = spacemouse_input(rest, mapping, gripper)
    assert not reading.engaged and np.all(reading.action[:3] == 0) and gripper == OPEN


def test_spacemouse_without_pyspacemouse_is_one_line(monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "pyspacemouse", None)   # not installed
    with pytest.raises(FarlError, match="pip install pyspacemouse") as error:
        SpaceMouseTeleop()
    assert "\n" not in str(error.value)


def test_twist_is_a_velocity_and_goes_stale() -> None:
    mapping = TwistMapping(period_s=0.2, max_translation=0.03)
    full = twist_input((0.15, 0.0, -0.075), 0.0, mapping, OPEN)   # 0.15 m/s * 0.2 s = 3 cm: the cap
    assert full.engaged and np.allclose(full.action[:3], [1.0, 0.0, -0.5])
    assert np.allclose(twist_input((1.0, 0.0, 0.0), 0.0, mapping, OPEN).action[:3], [1.0, 0, 0])  # clipped
    stale = twist_input((0.15, 0.0, 0.0), 0.6, mapping, OPEN)
    assert not stale.engaged and np.all(stale.action[:3] == 0)
    assert not twist_input((0.0, 0.0, 0.0), 0.0, mapping, OPEN).engaged


def test_joy_moves_only_with_the_enable_button_held() -> None:
    mapping = JoyMapping(axes=(1, 0, 4), enable_button=4, close_button=0)
    axes = [0.2, -0.6, 0.0, 0.0, 0.5]
    released, gripper = joy_input(axes, [1, 0, 0, 0, 0], 0.0, mapping, OPEN)
    assert not released.engaged and np.all(released.action[:3] == 0) and gripper == CLOSED
    held, _ = joy_input(axes, [0, 0, 0, 0, 1], 0.0, mapping, gripper)
    assert held.engaged and np.allclose(held.action[:3], [-0.6, 0.2, 0.5]) and held.action[3] == CLOSED
    old, _ = joy_input(axes, [0, 0, 0, 0, 1], 1.0, mapping, gripper)
    assert not old.engaged


def test_scripted_device_follows_its_controller_with_noise() -> None:
    device = ScriptedTeleop(lambda obs: np.array([0.3, -0.2, 0.0, 1.0]), noise=0.0)
    reading = device.read(OBS)
    assert reading.engaged and np.allclose(reading.action, [0.3, -0.2, 0.0, 1.0])
    noisy = ScriptedTeleop(lambda obs: np.array([0.3, -0.2, 0.0, 1.0]), noise=0.5)
    noisy.begin_episode(np.random.default_rng(1))
    assert not np.allclose(noisy.read(OBS).action[:3], [0.3, -0.2, 0.0])


@pytest.mark.parametrize("spec, message", [("mouse", "unknown teleop device"), ("twist:cmd", "absolute topic"),
                                           ("keyboard:/x", "only twist and joy")])
def test_device_specs_are_checked(spec: str, message: str) -> None:
    with pytest.raises(FarlError, match=message):
        device_kind(spec)
    assert device_kind("joy:/spacenav/joy") == ("joy", "/spacenav/joy")


def test_a_twist_topic_drives_the_device_on_real_rclpy() -> None:
    """A Twist published by another node (its own context, as a driver process would be) reaches the device."""
    import rclpy
    from geometry_msgs.msg import Twist
    from rclpy.context import Context

    from farl_teleop.topic_teleop_node import RosTopicTeleop

    device = RosTopicTeleop("twist", "/test_teleop/twist", TwistMapping(timeout_s=0.5))
    context = Context()
    rclpy.init(context=context)
    node = rclpy.create_node("twist_driver", context=context)
    try:
        publisher = node.create_publisher(Twist, "/test_teleop/twist", 10)
        assert not device.read(OBS).engaged
        deadline = time.monotonic() + 20.0
        while not device.messages_seen and time.monotonic() < deadline:
            msg = Twist()
            msg.linear.x, msg.linear.y = 0.075, -0.15
            publisher.publish(msg)
            time.sleep(0.05)
        reading = device.read(OBS)
        assert reading.engaged and np.allclose(reading.action[:3], [0.5, -1.0, 0.0])
        time.sleep(0.6)                                      # the driver went quiet: the deadman
        assert not device.read(OBS).engaged
    finally:
        node.destroy_node()
        rclpy.shutdown(context=context)
        device.close()
