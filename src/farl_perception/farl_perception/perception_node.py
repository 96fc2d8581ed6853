"""ROS 2 node `farl_perception`: realsense-ros colour + aligned depth in, /farl/objects out.

A thin adapter (DESIGN.md): parameters -> PerceptionConfig, image callbacks -> TopicSource, a
timer at rate_hz -> Perception.step() -> ObjectArray message.  The timer blocks in step() for
at most read_timeout_s waiting for a frame, so the image subscriptions live in their own callback
group and the node spins on two threads: frames keep arriving while a step waits.

Parameters: the `farl_perception` section of the FARL parameter file (see `farl config show`),
plus `task` (whose objects to report), `camera_namespace` (realsense-ros, default /camera/camera)
and `base_frame` (the frame_id of the published positions, default "base"). rclpy's own
parameters (use_sim_time, ...) are left to rclpy; every other key is validated like the CLI does,
and a bad one stops the node with one line on stderr and exit code 2.

QoS: camera topics best effort (sensor data; also matches a reliable realsense-ros publisher, whose
late frames are worth nothing), `/farl/objects` reliable.
"""

from __future__ import annotations

from collections.abc import Callable

from builtin_interfaces.msg import Time
from geometry_msgs.msg import Point, Vector3
from rclpy.callback_groups import MutuallyExclusiveCallbackGroup
from rclpy.node import Node
from rclpy.qos import qos_profile_sensor_data
from sensor_msgs.msg import CameraInfo, Image
from std_msgs.msg import Header

from farl_core.camera_model import RGBDFrame
from farl_core.franka_tasks import get_franka_task
from farl_core.run_node import Process, read_parameters, run
from farl_interfaces.msg import ObjectArray, ObjectState
from farl_perception.config import NODE, perception_config_from_parameters
from farl_perception.object_messages import MessageTypes, to_object_array_msg
from farl_perception.pipeline import Perception, PerceptionState
from farl_perception.ros_image import DEFAULT_NAMESPACE, FramePairer, camera_topics
from farl_perception.topic_source import TopicSource

NODE_PARAMETERS = {"task": "fragile-push-wall", "camera_namespace": DEFAULT_NAMESPACE, "base_frame": "base"}
MESSAGES = MessageTypes(ObjectArray, ObjectState, Header, Time, Point, Vector3)


class PerceptionNode(Node):
    def __init__(self) -> None:
        super().__init__(NODE, automatically_declare_parameters_from_overrides=True)
        own, values = read_parameters(self, NODE_PARAMETERS)
        task, namespace, self._frame_id = (own[name] for name in NODE_PARAMETERS)
        config = perception_config_from_parameters(task, values, where=f"node {NODE}")
        topics = camera_topics(namespace)
        self._source = TopicSource(namespace)
        self._pairer = FramePairer()
        self._frames = 0  # RGB-D frames paired so far
        self._perception = Perception(config, self._source, get_franka_task(task).object_names)
        self._publisher = self.create_publisher(ObjectArray, "/farl/objects", 10)
        images = MutuallyExclusiveCallbackGroup()
        for msg_type, topic, callback in ((CameraInfo, topics.info, self._pairer.set_camera_info),
                                          (Image, topics.color, self._offer(self._pairer.add_color)),
                                          (Image, topics.depth, self._offer(self._pairer.add_depth))):
            self.create_subscription(msg_type, topic, callback, qos_profile_sensor_data, callback_group=images)
        self.create_timer(1.0 / config.rate_hz, self._step, callback_group=MutuallyExclusiveCallbackGroup())
        self._state = PerceptionState.STARTING

    def _offer(self, add: Callable[[Image], RGBDFrame | None]) -> Callable[[Image], None]:
        """An image callback: hand the message to the pairer, push a completed pair to the source."""
        def callback(msg: Image) -> None:
            frame = add(msg)
            if frame is not None:
                if not self._frames:  # once: tells a silent camera from frames that never pair
                    self.get_logger().info(f"first RGB-D frame {frame.rgb.shape[1]}x{frame.rgb.shape[0]} "
                                           f"({self._pairer.dropped} images unpaired before it)")
                self._frames += 1
                self._source.push(frame)
        return callback

    def _step(self) -> None:
        objects = self._perception.step()
        status = self._perception.status
        if status.state is not self._state:
            # two call sites: rclpy's logger refuses one call site logging at two severities
            if status.state is PerceptionState.STALLED:
                self.get_logger().warning(f"perception {status.state.value}: {status.message}")
            else:
                self.get_logger().info(f"perception {status.state.value}: {status.message}")
            self._state = status.state
        self._publisher.publish(to_object_array_msg(objects, MESSAGES, self._frame_id))


def process() -> Process:
    return Process(NODE, lambda: [PerceptionNode()], threads=2)


def main(args: list[str] | None = None) -> None:
    run(process(), args)
