"""Teleoperation devices behind one interface: each control tick, the operator's action or nothing.

The paper's demonstrations (section VI.C) are teleoperated; what a device gives the robot loop is
the task's action (dx, dy, dz, gripper) in the task spec's normalised box, the same layout a policy
proposes, so a demonstration is executed (and recorded) exactly as a policy's action would be:
through the bridge, whose hard limits (per-command translation cap, workspace box, dynamics
factor) scale and clip it.  No device reaches franky directly.

Every device has a deadman: `TeleopInput.engaged` is False when the operator gives no input (no
key held, the SpaceMouse at rest, no fresh Twist, the Joy enable button released), and the loop
then commands zero motion.  The gripper channel is latched: +1 closed, -1 open, as the last
toggle left it, so every recorded action states the gripper it wants (as the scripted demos do).

    keyboard          keys read by the operator console (works over SSH): KEYBOARD_HELP
    spacemouse        a 3Dconnexion SpaceMouse through `pyspacemouse`
    twist:TOPIC       geometry_msgs/Twist (spacenav_node, teleop_twist_joy, ...): topic_teleop_node.py
    joy:TOPIC         sensor_msgs/Joy with an enable button: topic_teleop_node.py
    scripted          the task's scripted controller of the session's role (tests, unattended sim)
"""

from __future__ import annotations

import importlib
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from farl_core.errors import FarlError

CLOSED, OPEN = 1.0, -1.0
"""The gripper channel's latched values (the bridge grasps above its threshold, opens below minus it)."""


@dataclass(frozen=True)
class TeleopInput:
    """One tick's operator input: `action` (dx, dy, dz, gripper) in [-1, 1]; `engaged` False = hold still."""

    action: np.ndarray
    engaged: bool


class TeleopDevice(Protocol):
    """What the teleop agent reads once per control tick (`observation`: the task observation, for scripts)."""

    name: str

    def read(self, observation: np.ndarray) -> TeleopInput: ...

    def close(self) -> None: ...


def _input(motion: np.ndarray, gripper: float, engaged: bool) -> TeleopInput:
    """The action of `motion` (clipped to the unit box) and the latched gripper; zero motion when disengaged."""
    move = np.clip(np.asarray(motion, dtype=float), -1.0, 1.0) if engaged else np.zeros(3)
    return TeleopInput(np.array([*move, gripper], dtype=np.float32), engaged)


KEYBOARD_AXES = {"i": (0, 1.0), "k": (0, -1.0), "j": (1, 1.0), "l": (1, -1.0), "u": (2, 1.0), "o": (2, -1.0)}
"""Motion keys: i/k forward/back (+x/-x), j/l left/right (+y/-y), u/o up/down (+z/-z), base frame."""
KEYBOARD_GRIPPER = "g"
KEYBOARD_HELP = "i/k x  j/l y  u/o z  g gripper"


class KeyboardTeleop:
    """Motion keys from the terminal; a key counts as held for `hold_s` after it arrived (module docstring).

    A terminal reports a held key as repeated characters (after the keyboard's initial repeat delay,
    250-600 ms), never as a release, so `hold_s` is the deadman: the arm stops that long after the
    last repeat.  The console owns the terminal and hands this device the keys it does not use (`feed`).
    """

    name = "keyboard"

    def __init__(self, speed: float = 0.5, hold_s: float = 0.6, clock: Callable[[], float] = time.monotonic) -> None:
        if not 0.0 < speed <= 1.0:
            raise FarlError(f"keyboard teleop speed {speed}: must be in (0, 1] (a fraction of the bridge's cap)")
        self.speed, self.hold_s, self._clock = speed, hold_s, clock
        self._axes: dict[int, tuple[float, float]] = {}   # axis -> (sign, time of the last key)
        self._gripper = OPEN

    def feed(self, key: str) -> bool:
        """A key from the terminal; True if it is one of this device's."""
        if key in KEYBOARD_AXES:
            axis, sign = KEYBOARD_AXES[key]
            self._axes[axis] = (sign, self._clock())
            return True
        if key == KEYBOARD_GRIPPER:
            self._gripper = CLOSED if self._gripper == OPEN else OPEN
            return True
        return False

    def read(self, observation: np.ndarray) -> TeleopInput:
        del observation
        now = self._clock()
        motion = np.zeros(3)
        for axis, (sign, at) in self._axes.items():
            if now - at <= self.hold_s:
                motion[axis] = sign * self.speed
        return _input(motion, self._gripper, bool(np.any(motion)))

    def close(self) -> None:
        """The console restores the terminal."""


@dataclass(frozen=True)
class SpaceMouseMapping:
    """How a SpaceMouse's axes map to the base frame (its default mounting: cable away from the operator,
    who faces the robot's +x), the deadzone that counts as the puck at rest, and the gripper buttons."""

    axes: tuple[int, int, int] = (1, 0, 2)            # base x, y, z <- state (x, y, z)[i]
    signs: tuple[float, float, float] = (1.0, -1.0, 1.0)
    deadzone: float = 0.1
    close_button: int = 0
    open_button: int = 1


def spacemouse_input(state: Any, mapping: SpaceMouseMapping, gripper: float) -> tuple[TeleopInput, float]:
    """(input, latched gripper) of one `pyspacemouse` state (fields x, y, z in [-1, 1], buttons)."""
    raw = np.array([state.x, state.y, state.z], dtype=float)
    motion = np.array([mapping.signs[i] * raw[mapping.axes[i]] for i in range(3)])
    motion[np.abs(motion) < mapping.deadzone] = 0.0
    buttons = list(getattr(state, "buttons", []))
    if len(buttons) > mapping.close_button and buttons[mapping.close_button]:
        gripper = CLOSED
    elif len(buttons) > mapping.open_button and buttons[mapping.open_button]:
        gripper = OPEN
    return _input(motion, gripper, bool(np.any(motion))), gripper


class SpaceMouseTeleop:
    """A 3Dconnexion SpaceMouse: the puck's push is the motion, at rest it is the deadman (it springs back)."""

    name = "spacemouse"

    def __init__(self, mapping: SpaceMouseMapping = SpaceMouseMapping()) -> None:
        try:
            self._lib = importlib.import_module("pyspacemouse")
        except ImportError:
            raise FarlError("--device spacemouse needs pyspacemouse: `pip install pyspacemouse` (and the hidapi "
                            "library: `apt install libhidapi-dev`), or use --device keyboard") from None
        if not self._lib.open():
            raise FarlError("no SpaceMouse found: plug it in and allow access to its hidraw device (udev rule for "
                            "3Dconnexion, vendor 256f/046d), or use --device keyboard")
        self.mapping = mapping
        self._gripper = OPEN

    def read(self, observation: np.ndarray) -> TeleopInput:
        del observation
        result, self._gripper = spacemouse_input(self._lib.read(), self.mapping, self._gripper)
        return result

    def close(self) -> None:
        self._lib.close()


class ScriptedTeleop:
    """A scripted controller as the operator (farl_sim.franka_scenes.controllers), deadman always held.

    It drives the whole demonstration path unattended (device -> bridge -> bag -> dataset -> training),
    with N(0, noise^2) on the motion so demonstrations vary as a person's do.  `begin` (given the
    episode's generator) starts a controller that keeps state across an episode (a guided failure).
    """

    name = "scripted"

    def __init__(self, controller: Callable[[np.ndarray], np.ndarray], noise: float = 0.0,
                 begin: Callable[[np.random.Generator], None] | None = None) -> None:
        self.controller, self.noise, self._begin = controller, noise, begin
        self.rng = np.random.default_rng(0)

    def begin_episode(self, rng: np.random.Generator) -> None:
        self.rng = rng
        if self._begin is not None:
            self._begin(rng)

    def read(self, observation: np.ndarray) -> TeleopInput:
        action = np.asarray(self.controller(observation), dtype=float)
        motion = action[:3] + self.noise * self.rng.standard_normal(3)
        return _input(motion, float(action[3]), True)

    def close(self) -> None:
        """Nothing to release."""


DEVICES = "keyboard | spacemouse | twist:TOPIC | joy:TOPIC | scripted"


def device_kind(spec: str) -> tuple[str, str]:
    """(kind, topic) of a `--device` value; a one-line error for an unknown one."""
    kind, _, topic = spec.partition(":")
    if kind not in ("keyboard", "spacemouse", "twist", "joy", "scripted"):
        raise FarlError(f"unknown teleop device '{spec}': use {DEVICES}")
    if kind in ("twist", "joy") and not topic.startswith("/"):
        raise FarlError(f"--device {spec}: name the absolute topic, e.g. {kind}:/spacenav/{kind}")
    if kind not in ("twist", "joy") and topic:
        raise FarlError(f"--device {spec}: only twist and joy take a topic")
    return kind, topic
