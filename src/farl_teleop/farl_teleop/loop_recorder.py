"""The synchronous robot loop's recorder: the ROS graph's episode bags, written without ROS.

`farl teleop` and `farl run --record` run perception, policy (or teleop device) and bridge in one
process (robot_loop.py), so nothing is published; this recorder builds the messages the graph's
nodes would have published on each tick (/farl/objects, /farl/robot_state, /farl/action/command
and the /farl/episode START and outcome) from the same dataclasses, with the same converters
(object_messages, state_messages) on a rosbags typestore, and writes them with `EpisodeBagWriter`.
A bag of an in-process session is therefore byte-for-byte the layout of the recorder node's: the
same `farl data build` reads both, `ros2 bag` and the `mcap` reader open both.

Receive times are the robot clock (simulated time under franky-sim) in nanoseconds; a tick's
objects and state are stamped at the tick and its command one microsecond later, the order in
which the graph's recorder receives them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from farl_control.bridge import RobotStateSample
from farl_control.state_messages import fill_robot_state
from farl_core.episodes import Outcome
from farl_core.message_time import to_stamp
from farl_perception.object_messages import MessageTypes, to_object_array_msg
from farl_perception.objects import ObjectArray
from farl_teleop.episode_bags import OUTCOME_EVENTS, START_EVENT, EpisodeBagWriter

BASE_FRAME = "base"
LABELS = {"task": 1, "recovery": 2, "failure": 3, "online": 0}
"""EpisodeEvent.msg's demo_label per role (online sessions are not demonstrations)."""
COMMAND_DELAY_NS = 1_000


class LoopBagRecorder:
    """Episodes of a synchronous session into labelled bags (module docstring); `gate` False pauses recording."""

    def __init__(self, root: Path, task: str, role: str, min_free_gib: float = 1.0) -> None:
        self.writer = EpisodeBagWriter(root, task, min_free_gib=min_free_gib)
        self.role = role
        self.gate = lambda: True    # the teleop session closes it while a recovery demo's approach runs
        self.messages = 0
        store = self.writer.typestore
        self._types = {name: store.types[name] for name in (
            "farl_interfaces/msg/ObjectArray", "farl_interfaces/msg/RobotState", "farl_interfaces/msg/Action",
            "farl_interfaces/msg/EpisodeEvent", "std_msgs/msg/Header", "builtin_interfaces/msg/Time")}
        self._objects = MessageTypes(store.types["farl_interfaces/msg/ObjectArray"],
                                     store.types["farl_interfaces/msg/ObjectState"],
                                     store.types["std_msgs/msg/Header"], store.types["builtin_interfaces/msg/Time"],
                                     store.types["geometry_msgs/msg/Point"], store.types["geometry_msgs/msg/Vector3"])
        self._episode: int | None = None
        self._unwritten: tuple[ObjectArray, RobotStateSample, float] | None = None

    # --- the session's side -------------------------------------------------------------------

    def begin(self, episode: int) -> None:
        self.writer.begin(episode, self.role)
        self._episode, self._unwritten = episode, None

    def finish(self, outcome: Outcome) -> Path:
        self._episode = None
        return self.writer.finish(outcome.value)

    def abandon(self) -> None:
        self._episode = None
        self.writer.abandon()

    # --- the loop's side (robot_loop.TickRecorder) --------------------------------------------

    def started(self, goal: np.ndarray, stamp: float) -> None:
        self._event(START_EVENT, stamp, goal=[float(v) for v in goal[:2]], source="operator", note="episode started")

    def observed(self, objects: ObjectArray, state: RobotStateSample, stamp: float) -> None:
        if self._episode is None:
            return
        self._unwritten = (objects, state, stamp)
        if self.gate():
            self._flush()

    def _flush(self) -> None:
        """Write the tick's observation held back while the gate was closed (the tick the gate opened on)."""
        if self._unwritten is None:
            return
        objects, state, stamp = self._unwritten
        self._unwritten = None
        self._write("/farl/objects", to_object_array_msg(objects, self._objects, BASE_FRAME), stamp)
        msg = fill_robot_state(self._blank_state(), state, stamp, BASE_FRAME,
                               self._types["builtin_interfaces/msg/Time"])
        msg.joint_positions = np.asarray(msg.joint_positions, dtype=np.float64)
        msg.joint_velocities = np.asarray(msg.joint_velocities, dtype=np.float64)
        self._write("/farl/robot_state", msg, stamp)

    def commanded(self, action: np.ndarray, observation: np.ndarray, stamp: float, log_prob: float = float("nan"),
                  policy_version: int = 0) -> None:
        if not self._recording():
            return
        self._flush()
        msg = self._types["farl_interfaces/msg/Action"](
            header=self._header(stamp), delta=np.asarray(action, dtype=np.float64),
            observation=np.asarray(observation, dtype=np.float64), log_prob=float(log_prob),
            policy_version=int(policy_version))
        self._write("/farl/action/command", msg, stamp, COMMAND_DELAY_NS)

    def ended(self, outcome: Outcome, reason: str, stamp: float) -> None:
        if self._episode is not None:
            self._event(OUTCOME_EVENTS[outcome.value], stamp, source="farl_policy", note=reason)

    # --- internals ------------------------------------------------------------------------------

    def _recording(self) -> bool:
        return self._episode is not None and self.gate()

    def _header(self, stamp: float) -> Any:
        return self._types["std_msgs/msg/Header"](stamp=to_stamp(stamp, self._types["builtin_interfaces/msg/Time"]),
                                                  frame_id=BASE_FRAME)

    def _event(self, event: int, stamp: float, source: str, note: str, goal: list[float] | None = None) -> None:
        if self._episode is None:
            return
        msg = self._types["farl_interfaces/msg/EpisodeEvent"](
            header=self._header(stamp), event=event, demo_label=LABELS[self.role], episode_index=self._episode,
            source=source, goal=np.asarray(goal or [], dtype=np.float64), note=note)
        self._write("/farl/episode", msg, stamp)

    def _blank_state(self) -> Any:
        store = self.writer.typestore.types
        point, quaternion = store["geometry_msgs/msg/Point"], store["geometry_msgs/msg/Quaternion"]
        vector = store["geometry_msgs/msg/Vector3"]
        return self._types["farl_interfaces/msg/RobotState"](
            header=self._header(0.0),
            ee_pose=store["geometry_msgs/msg/Pose"](position=point(x=0.0, y=0.0, z=0.0),
                                                    orientation=quaternion(x=0.0, y=0.0, z=0.0, w=1.0)),
            ee_twist=store["geometry_msgs/msg/Twist"](linear=vector(x=0.0, y=0.0, z=0.0),
                                                      angular=vector(x=0.0, y=0.0, z=0.0)),
            gripper_width=0.0, joint_positions=np.zeros(7), joint_velocities=np.zeros(7), error_flags=0,
            error_message="")

    def _write(self, topic: str, msg: Any, stamp: float, delay_ns: int = 0) -> None:
        data = self.writer.typestore.serialize_cdr(msg, msg.__msgtype__)
        self.writer.write(topic, msg.__msgtype__, int(round(stamp * 1e9)) + delay_ns, bytes(data))
        self.messages += 1
