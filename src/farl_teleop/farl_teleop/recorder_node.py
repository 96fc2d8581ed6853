"""ROS 2 node `farl_recorder`: every /farl/* topic (and optionally the camera) into one rosbag2 per episode.

Raw subscriptions (the serialised bytes as they arrive, no deserialisation) feed `EpisodeBagWriter`;
/farl/episode decides the episodes: START opens episode N's bag, the policy node's outcome (or an
operator's ABORT) labels and closes it, so a crash loses at most the episode being recorded.
Messages between episodes (the reset) are not recorded.  Online sessions are data too: with
`record:=true` the bringup starts this node next to the policy, role `online`.

Demonstration sessions (mode teleop): the policy node's DISCARD deletes the episode's bag (the operator
re-records that episode).  With `record_from: handover` (a recovery demo in simulation, where the
scripted approach drives the scene near a failure first), the bag holds the START and then nothing
until the policy node's HANDOVER: from there on it records, beginning with the latest message of each
topic held back while waiting (the handover tick's objects and robot state, and its command if it came
first), as `farl teleop` records the same demo.

Parameters (section `farl_recorder`): out (the bag folder), task, role (task | recovery | failure |
online), camera (also record the realsense-ros topics), camera_every (keep every N-th camera message
of each camera topic: 6 turns 30 fps into the 5 Hz control rate, a sixth of the ~46 MB/s of a raw
640x480 D435), camera_namespace, min_free_gib, record_from (start | handover).
QoS: as the publishers (reliable for /farl/*, sensor data for the camera); /farl/episode depth 10.
"""

from __future__ import annotations

from rclpy.node import Node
from rclpy.qos import QoSProfile, ReliabilityPolicy, qos_profile_sensor_data
from rclpy.serialization import deserialize_message, serialize_message
from sensor_msgs.msg import CameraInfo, Image

from farl_core.errors import ConfigError, FarlError
from farl_core.run_node import Process, closing_process, read_own_parameters, run
from farl_interfaces.msg import Action, EpisodeEvent, ObjectArray, RobotState, SafetyVerdict
from farl_perception.ros_image import DEFAULT_NAMESPACE, camera_topics
from farl_teleop.episode_bags import ROLES, EpisodeBagWriter

NODE = "farl_recorder"
NODE_PARAMETERS = {"out": "", "task": "fragile-push-wall", "role": "online", "camera": False, "camera_every": 1,
                   "camera_namespace": DEFAULT_NAMESPACE, "min_free_gib": 1.0, "record_from": "start"}
FARL_TOPICS = {"/farl/objects": ObjectArray, "/farl/robot_state": RobotState, "/farl/action/proposed": Action,
               "/farl/action/command": Action, "/farl/safety": SafetyVerdict, "/farl/episode": EpisodeEvent}
EPISODES = "/farl/episode"  # recorded by its typed callback: the START that opens a bag must be in it
OUTCOMES = {EpisodeEvent.SUCCESS: "success", EpisodeEvent.IR_FAILURE: "ir_failure",
            EpisodeEvent.TIMEOUT: "timeout", EpisodeEvent.ABORT: "aborted"}
RECORD_FROM = ("start", "handover")
ACTIONS = ("/farl/action/proposed", "/farl/action/command")
RELIABLE = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE)


def type_name(kind: type) -> str:
    """`farl_interfaces/msg/ObjectArray` of an rclpy message class."""
    module = kind.__module__.split(".")[0]
    return f"{module}/msg/{kind.__name__}"


class RecorderNode(Node):
    def __init__(self) -> None:
        super().__init__(NODE, automatically_declare_parameters_from_overrides=True)
        own = read_own_parameters(self, NODE_PARAMETERS)
        if not own["out"]:
            raise ConfigError(f"node {NODE}.out: not set (the folder the episode bags go to)")
        if own["role"] not in ROLES:
            raise ConfigError(f"node {NODE}.role: '{own['role']}' is not one of {', '.join(ROLES)}")
        self.writer = EpisodeBagWriter(own["out"], own["task"], min_free_gib=float(own["min_free_gib"]))
        if int(own["camera_every"]) < 1:
            raise ConfigError(f"node {NODE}.camera_every: must be at least 1 (every frame), got {own['camera_every']}")
        if own["record_from"] not in RECORD_FROM:
            raise ConfigError(f"node {NODE}.record_from: '{own['record_from']}' is not one of {', '.join(RECORD_FROM)}")
        self._role = own["role"]
        self._from_handover = own["record_from"] == "handover"
        self._recording: int | None = None
        self._waiting = False   # the bag is open, but the recovery demo's approach is still running
        self._held: dict[str, tuple[str, int, bytes]] = {}
        self._every: dict[str, int] = {}
        topics = {topic: (kind, RELIABLE) for topic, kind in FARL_TOPICS.items() if topic != EPISODES}
        if own["camera"]:
            camera = camera_topics(own["camera_namespace"])
            topics |= {camera.color: (Image, qos_profile_sensor_data), camera.depth: (Image, qos_profile_sensor_data),
                       camera.info: (CameraInfo, qos_profile_sensor_data)}
            self._every = {topic: int(own["camera_every"]) for topic in (camera.color, camera.depth, camera.info)}
        for topic, (kind, qos) in topics.items():
            self.create_subscription(kind, topic, self._keep(topic, type_name(kind)), qos, raw=True)
        self.create_subscription(EpisodeEvent, EPISODES, self._on_event, RELIABLE)
        self.get_logger().info(f"recording {len(topics)} topics per episode into {own['out']} (role {self._role})")

    def _keep(self, topic: str, msgtype: str):
        every, seen = self._every.get(topic, 1), [0]

        def callback(data: bytes) -> None:
            if self._recording is None:
                return
            seen[0] += 1
            if (seen[0] - 1) % every != 0:
                return
            if self._waiting:
                self._held[topic] = (msgtype, self.get_clock().now().nanoseconds, data)
            else:
                self.writer.write(topic, msgtype, self.get_clock().now().nanoseconds, data)
        return callback

    def _hand_over(self, msg: EpisodeEvent) -> None:
        """The approach is over: write what was held back from this tick on, then record everything."""
        tick = (msg.header.stamp.sec, msg.header.stamp.nanosec)
        for topic, (msgtype, stamp, data) in sorted(self._held.items(), key=lambda item: item[1][1]):
            if topic in ACTIONS:  # an action held back is the handover tick's only if it carries that tick's stamp
                header = deserialize_message(data, Action).header.stamp
                if (header.sec, header.nanosec) < tick:
                    continue
            self.writer.write(topic, msgtype, stamp, data)
        self._held, self._waiting = {}, False

    def _on_event(self, msg: EpisodeEvent) -> None:
        try:
            if msg.event == EpisodeEvent.START and self._recording is None:
                self.writer.begin(int(msg.episode_index), self._role)
                self._recording = int(msg.episode_index)
                self._waiting, self._held = self._from_handover, {}
            if self._recording is None:
                return
            if msg.event == EpisodeEvent.DISCARD and msg.source == "farl_policy":
                self.writer.abandon()
                self._recording, self._waiting = None, False
                self.get_logger().info(f"episode {msg.episode_index + 1}: discarded, its bag deleted (re-recorded)")
                return
            if msg.event == EpisodeEvent.HANDOVER and msg.source == "farl_policy" and self._waiting:
                self._hand_over(msg)
            self.writer.write(EPISODES, type_name(EpisodeEvent), self.get_clock().now().nanoseconds,
                              serialize_message(msg))
            if msg.event in OUTCOMES and msg.source == "farl_policy":
                path = self.writer.finish(OUTCOMES[msg.event])
                self._recording = None
                self.get_logger().info(f"episode {msg.episode_index + 1}: {OUTCOMES[msg.event]} -> {path}")
        except FarlError as exc:  # an existing bag, a full disk: say it, record nothing until the next start
            self.get_logger().error(str(exc))
            self._recording, self._waiting = None, False

    @property
    def recording(self) -> bool:
        """An episode's bag is open (its outcome has not come yet)."""
        return self._recording is not None

    def close(self) -> None:
        """Ctrl-C mid-episode: that episode's recording is dropped (it has no outcome); finished ones stay."""
        self.writer.abandon()


def process() -> Process:
    return closing_process(NODE, RecorderNode, threads=1)


def main(args: list[str] | None = None) -> None:
    run(process(), args)
