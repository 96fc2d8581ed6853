"""The simulated world of the ROS graph: `farl_bridge` on franky-sim and the scene node `farl_scene`, one process.

DESIGN.md, "The runtime": in simulation the world is one process, franky-sim's MuJoCo model with
the task's objects and the simulated D435; the bridge node and the simulation-only scene node share
it as two nodes on one executor, and every other node runs as it would on hardware.  The scene
node is the person of the paper's protocol and the RealSense driver:

- on the policy node's RESET event (the arm is home) it resets the scene (`SimulatedHuman`) and
  answers START with the episode's goal, as a person would press the start key;
- during an episode it lets the scene's scripted human move Disturbed Push's vase;
- it publishes the simulated D435 as realsense-ros does (rgb8 colour, 16UC1 depth aligned to
  colour, CameraInfo, under `camera_namespace`), stamped on the node's clock (simulated time with
  `use_sim_time`), so the real perception node runs on it unchanged.  Rendering happens in a thread
  of its own (the renderer's OpenGL context belongs to one thread).

Parameters (section `farl_scene`): task, seed, camera (`sim`: publish the camera for perception;
`ground-truth`: publish /farl/objects from the simulator instead, no perception node, as `farl run
--camera ground-truth`; `none`), camera_rate_hz, camera_namespace.  The bridge reads
`farl_bridge` as on hardware; its `robot` must be `sim`.
"""

from __future__ import annotations

import threading
import time
from dataclasses import replace

from builtin_interfaces.msg import Time
from geometry_msgs.msg import Point, Vector3
from rclpy.callback_groups import MutuallyExclusiveCallbackGroup
from rclpy.node import Node
from rclpy.qos import QoSProfile, ReliabilityPolicy, qos_profile_sensor_data
from rosbags.typesys import Stores, get_typestore
from sensor_msgs.msg import CameraInfo, Image
from std_msgs.msg import Header

from farl_control.bridge import FrankaBridge
from farl_control.bridge_node import BridgeNode
from farl_control.config import BridgeConfig
from farl_control.scheduling import prefer_simulated_robot
from farl_core.errors import ConfigError, FarlError
from farl_core.message_time import stamp_seconds
from farl_core.run_node import Process, read_own_parameters, run
from farl_interfaces.msg import EpisodeEvent, ObjectArray, ObjectState
from farl_perception.bag_source import frame_messages
from farl_perception.object_messages import MessageTypes, to_object_array_msg
from farl_perception.ros_image import DEFAULT_NAMESPACE, camera_topics
from farl_sim.franka_scenes.camera import load_torch_compiler_before_gl
from farl_sim.franka_scenes.scenes import make_franka_scene
from farl_sim.franka_scenes.sim_source import GroundTruthObjects, SceneCamera
from farl_sim.franka_scenes.simulated_human import SimulatedHuman

CAMERAS = ("sim", "ground-truth", "none")
"""sim: publish the D435 for perception; ground-truth: publish /farl/objects from the simulator, no perception."""
NODE = "farl_scene"
PROCESS = "farl_sim_world"
NODE_PARAMETERS = {"task": "fragile-push-wall", "seed": 0, "camera": "sim", "camera_rate_hz": 5.0,
                   "camera_namespace": DEFAULT_NAMESPACE}
EPISODES = "/farl/episode"
EVENTS_QOS = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE)
CAMERA_FRAME = "camera_color_optical_frame"
SOURCE = "sim_human"
OBJECT_MESSAGES = MessageTypes(ObjectArray, ObjectState, Header, Time, Point, Vector3)


class SceneNode(Node):
    """The simulated person and camera of one task scene (module docstring); `attach` it to the running sim."""

    def __init__(self) -> None:
        super().__init__(NODE, automatically_declare_parameters_from_overrides=True)
        own = read_own_parameters(self, NODE_PARAMETERS)
        if own["camera"] not in CAMERAS:
            raise ConfigError(f"node {NODE}.camera: '{own['camera']}' is not one of {', '.join(CAMERAS)}")
        if not own["camera_rate_hz"] > 0:
            raise ConfigError(f"node {NODE}.camera_rate_hz: must be > 0, got {own['camera_rate_hz']}")
        self.scene = make_franka_scene(own["task"])
        self._seed, self._camera = int(own["seed"]), own["camera"]
        self._period = 1.0 / float(own["camera_rate_hz"])
        self._topics = camera_topics(own["camera_namespace"])
        self.human: SimulatedHuman | None = None
        self._running = False
        self._stop = threading.Event()
        self._camera_thread: threading.Thread | None = None
        self.frames = 0

    def attach(self, bridge: FrankaBridge) -> None:
        """The bridge's franky-sim runs this node's scene: start resetting, disturbing and filming it."""
        assert bridge.server is not None
        self.human = SimulatedHuman(self.scene, bridge.server, self._seed)
        self._events = self.create_publisher(EpisodeEvent, EPISODES, EVENTS_QOS)
        self.create_subscription(EpisodeEvent, EPISODES, self._on_event, EVENTS_QOS,
                                 callback_group=MutuallyExclusiveCallbackGroup())
        self.create_timer(0.2, self._disturb, callback_group=MutuallyExclusiveCallbackGroup())
        if self._camera == "ground-truth":
            self._truth = GroundTruthObjects(self.scene, bridge.server)
            self._objects = self.create_publisher(ObjectArray, "/farl/objects", EVENTS_QOS)
            self.create_timer(self._period, self._publish_truth, callback_group=MutuallyExclusiveCallbackGroup())
        if self._camera == "sim":
            self._images = {topic: self.create_publisher(kind, topic, qos_profile_sensor_data) for kind, topic in
                            ((Image, self._topics.color), (Image, self._topics.depth), (CameraInfo, self._topics.info))}
            self._camera_thread = threading.Thread(target=self._film, args=(bridge,), daemon=True, name="sim-d435")
            self._camera_thread.start()

    def _now(self) -> float:
        return stamp_seconds(self.get_clock().now().to_msg())

    def _on_event(self, msg: EpisodeEvent) -> None:
        if msg.source == SOURCE:
            return
        if msg.event == EpisodeEvent.RESET:
            assert self.human is not None
            goal = self.human.reset_scene(int(msg.episode_index), self._now())
            self._running = True
            self._events.publish(EpisodeEvent(
                header=Header(stamp=self.get_clock().now().to_msg()), event=EpisodeEvent.START,
                episode_index=msg.episode_index, source=SOURCE, goal=[float(v) for v in goal[:2]],
                note="scene reset by the simulated human"))
        elif msg.event in (EpisodeEvent.SUCCESS, EpisodeEvent.IR_FAILURE, EpisodeEvent.TIMEOUT, EpisodeEvent.ABORT,
                           EpisodeEvent.DISCARD):
            self._running = False

    def _disturb(self) -> None:
        if self._running and self.human is not None:
            self.human.during_episode(self._now())

    def _publish_truth(self) -> None:
        """Ground truth in perception's place, stamped like a frame taken now (`farl run --camera ground-truth`)."""
        objects = replace(self._truth.step(), stamp=self._now())
        self._objects.publish(to_object_array_msg(objects, OBJECT_MESSAGES, "base"))

    def _film(self, bridge: FrankaBridge) -> None:
        """The camera thread: render at camera_rate_hz (node clock), publish in realsense-ros layout."""
        assert bridge.server is not None
        typestore = get_typestore(Stores.ROS2_KILTED)
        camera = SceneCamera(bridge.server, self.scene.camera)
        try:
            next_frame = self._now()
            while not self._stop.is_set():
                now = self._now()
                if now < next_frame:
                    time.sleep(min(0.005, next_frame - now))
                    continue
                next_frame = max(next_frame + self._period, now)
                frame = camera.read()
                stamp = self.get_clock().now().nanoseconds
                for topic, msg in frame_messages(typestore, frame, stamp, CAMERA_FRAME, self._topics).items():
                    self._images[topic].publish(bytes(typestore.serialize_cdr(msg, msg.__msgtype__)))
                self.frames += 1
        except FarlError as exc:  # franky-sim stopped under the camera: the perception node reports the stall
            self.get_logger().error(f"simulated camera stopped: {exc}")
        except Exception:
            if self.context.ok():
                raise
            # Ctrl-C shut the context down under a publish: the process is stopping
        finally:
            camera.close()

    def close(self) -> None:
        self._stop.set()
        if self._camera_thread is not None:
            self._camera_thread.join(timeout=5.0)


def process() -> Process:
    built: list = []

    def build() -> list[Node]:
        prefer_simulated_robot()  # before franky-sim's threads start (scheduling.py says why)
        # The camera thread's first render would import torch's compiler (camera.py): seconds of dlopen under
        # the GIL, which starve franky-sim's loop until libfranka drops the connection. Do it before it starts.
        load_torch_compiler_before_gl()
        scene = SceneNode()
        built.append(scene)

        def connect(config: BridgeConfig) -> FrankaBridge:
            if config.robot != "sim":
                raise ConfigError(f"node farl_bridge.robot: the simulated world drives franky-sim (robot: sim), "
                                  f"got '{config.robot}'; on a real robot start bridge_node instead")
            return FrankaBridge.connect(config, scene=scene.scene.build, realtime=True)

        bridge = BridgeNode(connect)
        built.append(bridge)
        scene.attach(bridge.bridge)
        return [bridge, scene]

    def close() -> None:
        for node in reversed(built):
            node.close()

    return Process(PROCESS, build, close, threads=4)


def main(args: list[str] | None = None) -> None:
    run(process(), args)
