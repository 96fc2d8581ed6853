"""Fault injection for drills and tests: a franky Robot whose next motions fail like reflex errors.

franky-sim never raises a reflex error by itself, yet the bridge's recovery path (and everything
above it: the robot loop's accounting, the ROS bridge's status) must be exercised on real client
objects.  Wrap `bridge.robot` in a FaultInjectingRobot and set `faults`.
"""

from __future__ import annotations

from typing import Any

import franky


class FaultInjectingRobot:
    """A real franky Robot, except that chosen calls fail the way a reflex error does.

    `faults` next `move` calls raise ControlException and set `has_errors`; `recover_from_errors`
    clears it unless `stuck`, in which case it fails like a robot whose error cannot be acknowledged.
    """

    def __init__(self, robot: Any, faults: int = 0, stuck: bool = False) -> None:
        self._robot, self.faults, self.stuck = robot, faults, stuck
        self.errored = False
        self.recover_calls = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self._robot, name)

    def __setattr__(self, name: str, value: Any) -> None:
        if name == "relative_dynamics_factor":
            self._robot.relative_dynamics_factor = value
        else:
            super().__setattr__(name, value)

    @property
    def has_errors(self) -> bool:
        return self.errored or self._robot.has_errors

    def move(self, motion: Any, asynchronous: bool = False) -> None:
        if self.faults > 0:
            self.faults -= 1
            self.errored = True
            raise franky.ControlException("libfranka: Move command aborted: motion aborted by reflex! "
                                          "[\"cartesian_reflex\"] (injected)")
        self._robot.move(motion, asynchronous=asynchronous)

    def recover_from_errors(self) -> None:
        self.recover_calls += 1
        if self.stuck:
            raise franky.CommandException("libfranka: automatic error recovery failed (injected)")
        self.errored = False
        self._robot.recover_from_errors()
