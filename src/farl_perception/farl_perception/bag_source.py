"""rosbag2 replay as a CameraSource, and the RGB-D bag writer that recording and tests use.

Both use the `rosbags` library, not rclpy: bags recorded on the robot (realsense-ros topics,
MCAP or sqlite3 storage) replay on any machine, and bags written here (MCAP) play back with
`ros2 bag play`.  Replay pairs colour and aligned depth with the same FramePairer as the ROS node,
so a replayed bag gives perception the frames the live node would have given it.

rosbags signals damaged data with many exception types, depending on where the damage lies
(measured by overwriting random bytes of small MCAP and sqlite3 bags: ReaderError, SerdeError,
UnicodeDecodeError, OverflowError, MemoryError, struct.error, apsw.CorruptError, TypeError);
every call into rosbags is therefore guarded, and any failure there becomes one FarlError line.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, Literal, TypeVar

import numpy as np
from rosbags.rosbag2 import Reader, StoragePlugin, Writer
from rosbags.typesys import Stores, get_typestore

from farl_core.camera_model import CameraIntrinsics, RGBDFrame
from farl_core.errors import FarlError
from farl_perception.camera_source import CameraStalled
from farl_perception.ros_image import (
    CAMERA_INFO_TYPE,
    DEFAULT_NAMESPACE,
    DEFAULT_TOPICS,
    IMAGE_TYPE,
    CameraTopics,
    FramePairer,
    camera_topics,
)

T = TypeVar("T")
STORAGE_SUFFIXES = (".mcap", ".db3")
BAG_VERSION = 8
"""rosbag2 metadata version written: rosbags writes 8 or 9, and 9 changed the QoS encoding that Humble parses."""
OPTICAL_FRAME = "camera_color_optical_frame"
"""realsense-ros's frame_id for colour (and aligned depth) images."""


class BagSource:
    """Replays the colour, aligned-depth and camera_info topics of a rosbag2 as RGBDFrames.

    path: the bag directory (with metadata.yaml) or a single .mcap/.db3 storage file.
    realtime: False serves frames as fast as they are read (training, tests); True spaces them
    as they were recorded, so a live-rate pipeline (the 5 Hz loop) sees the recorded timing.
    """

    def __init__(self, path: str | Path, topics: CameraTopics = DEFAULT_TOPICS, realtime: bool = False,
                 tolerance_s: float = 0.02) -> None:
        self.path = Path(path)
        self.topics = topics
        self.realtime = realtime
        self.frames_read = 0
        self._typestore = get_typestore(Stores.ROS2_HUMBLE)
        self._reader = self._open()
        try:
            connections = self._connections()
            infos = self._reader.messages(connections[topics.info])
            info = self._guard("reading camera_info", lambda: next(infos, None))
            infos.close()
            if info is None:
                raise FarlError(f"bag {self.path} has no message on {topics.info}: record the colour camera_info "
                                "with the images")
            self._pairer = FramePairer(tolerance_s)
            self._pairer.set_camera_info(self._deserialize(info[0], info[2]))
            self._messages = self._reader.messages([c for conns in connections.values() for c in conns])
        except BaseException:
            self._reader.close()
            raise
        self._pending: RGBDFrame | None = None
        self._clock: tuple[float, float] | None = None  # (monotonic, bag time) of the first frame served

    @property
    def intrinsics(self) -> CameraIntrinsics:
        """The colour camera_info's intrinsics, from the first one in the bag and then kept in step with it."""
        assert self._pairer.intrinsics is not None  # set from the bag's first camera_info in __init__
        return self._pairer.intrinsics

    def read(self, timeout_s: float = 1.0) -> RGBDFrame:
        """The next colour+depth pair; CameraStalled at the end of the bag (or, realtime, at a gap > timeout_s)."""
        frame = self._pending if self._pending is not None else self._next_frame()
        self._pending = None
        if self.realtime:
            if self._clock is None:
                self._clock = (time.monotonic(), frame.time)
            wait = self._clock[0] + (frame.time - self._clock[1]) - time.monotonic()
            if wait > timeout_s:
                time.sleep(timeout_s)
                self._pending = frame
                raise CameraStalled(f"bag {self.path}: no frame for {timeout_s} s (the recording has a gap here); "
                                    "read again to continue")
            time.sleep(max(wait, 0.0))
        self.frames_read += 1
        return frame

    def close(self) -> None:
        """Close the bag (idempotent)."""
        if self._reader.is_open:
            self._reader.close()

    def __enter__(self) -> BagSource:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _open(self) -> Reader:
        path = self.path
        if not path.exists():
            raise FarlError(f"bag {path} does not exist: check the path")
        if path.is_dir() and not (path / "metadata.yaml").is_file():
            raise FarlError(f"{path} is not a rosbag2 directory (no metadata.yaml): pass the directory "
                            "`ros2 bag record` made, or its .mcap/.db3 file (`ros2 bag reindex` restores metadata)")
        if path.is_file() and path.suffix not in STORAGE_SUFFIXES:
            raise FarlError(f"{path} is not a rosbag2 file: pass a bag directory or a {'/'.join(STORAGE_SUFFIXES)} "
                            "storage file")
        reader = self._guard("opening", lambda: Reader(path))
        self._guard("opening", reader.open)
        return reader

    def _connections(self) -> dict[str, list[Any]]:
        """The bag's connections on our three topics; a FarlError listing what the bag has if one is missing."""
        wanted = {self.topics.color: IMAGE_TYPE, self.topics.depth: IMAGE_TYPE, self.topics.info: CAMERA_INFO_TYPE}
        present = {c.topic: c.msgtype for c in self._reader.connections}
        missing = [f"{topic} ({msgtype})" for topic, msgtype in wanted.items() if present.get(topic) != msgtype]
        if missing:
            has = ", ".join(f"{topic} ({msgtype})" for topic, msgtype in sorted(present.items())) or "no topics"
            raise FarlError(f"bag {self.path} lacks {', '.join(missing)}; it has: {has}; pass the topics it was "
                            "recorded with (camera_topics(namespace))")
        return {topic: [c for c in self._reader.connections if c.topic == topic] for topic in wanted}

    def _next_frame(self) -> RGBDFrame:
        topics = self.topics
        while True:
            record = self._guard("reading", lambda: next(self._messages, None))
            if record is None:
                raise CameraStalled(f"bag {self.path} ended after {self.frames_read} frames")
            connection, _, raw = record
            msg = self._deserialize(connection, raw)
            if connection.topic == topics.info:
                self._pairer.set_camera_info(msg)
                continue
            add = self._pairer.add_color if connection.topic == topics.color else self._pairer.add_depth
            frame = add(msg)
            if frame is not None:
                return frame

    def _deserialize(self, connection: Any, raw: bytes) -> Any:
        return self._guard(f"decoding a {connection.topic} message",
                           lambda: self._typestore.deserialize_cdr(raw, connection.msgtype))

    def _guard(self, doing: str, call: Callable[[], T]) -> T:
        """Run one rosbags call; whatever it raises on damaged data becomes a one-line FarlError."""
        try:
            return call()
        except Exception as exc:  # noqa: BLE001  (rosbags raises assorted types on damaged data: module docstring)
            detail = " ".join(f"{type(exc).__name__}: {exc}".split())[:200]
            raise FarlError(f"bag {self.path} is damaged ({doing} failed: {detail}): re-record it, or try "
                            "`ros2 bag reindex` on its directory") from exc


def write_rgbd_bag(path: str | Path, frames: Iterable[RGBDFrame], namespace: str = DEFAULT_NAMESPACE,
                   frame_id: str = OPTICAL_FRAME, storage: Literal["mcap", "sqlite3"] = "mcap") -> int:
    """Record frames as realsense-ros would publish them (rgb8 + 16UC1 aligned depth + CameraInfo) into a new
    rosbag2 at `path`; the number of frames written.  MCAP is the project's format; sqlite3 is Humble's
    default storage, for tools that still expect it.

    If `frames` raises (a stalled camera, Ctrl-C ending a recording), the frames already written are
    kept: the bag is closed properly before the error propagates.
    """
    path = Path(path)
    if path.exists():
        raise FarlError(f"{path} already exists: record to a new path (a bag is never overwritten)")
    typestore = get_typestore(Stores.ROS2_HUMBLE)
    topics = camera_topics(namespace)
    count, stopped = 0, None
    with Writer(path, version=BAG_VERSION, storage_plugin=StoragePlugin[storage.upper()]) as writer:
        image_types = {topics.color: IMAGE_TYPE, topics.depth: IMAGE_TYPE, topics.info: CAMERA_INFO_TYPE}
        connections = {topic: writer.add_connection(topic, msgtype, typestore=typestore)
                       for topic, msgtype in image_types.items()}
        iterator = iter(frames)
        while True:
            try:
                frame = next(iterator)
            except StopIteration:
                break
            except BaseException as exc:  # noqa: BLE001  (re-raised below, once the bag is closed)
                stopped = exc
                break
            stamp = int(round(frame.time * 1e9))
            for topic, msg in frame_messages(typestore, frame, stamp, frame_id, topics).items():
                writer.write(connections[topic], stamp, typestore.serialize_cdr(msg, msg.__msgtype__))
            count += 1
    if stopped is not None:
        raise stopped
    return count


def frame_messages(typestore: Any, frame: RGBDFrame, stamp_ns: int, frame_id: str,
                    topics: CameraTopics) -> dict[str, Any]:
    """The colour Image, aligned-depth Image and CameraInfo of one frame, all stamped with the frame's time."""
    types = typestore.types
    header = types["std_msgs/msg/Header"](
        stamp=types["builtin_interfaces/msg/Time"](sec=stamp_ns // 1_000_000_000, nanosec=stamp_ns % 1_000_000_000),
        frame_id=frame_id)
    height, width = frame.depth_mm.shape
    image = types[IMAGE_TYPE]
    colour = image(header=header, height=height, width=width, encoding="rgb8", is_bigendian=0, step=width * 3,
                   data=np.ascontiguousarray(frame.rgb, dtype=np.uint8).reshape(-1))
    depth = image(header=header, height=height, width=width, encoding="16UC1", is_bigendian=0, step=width * 2,
                  data=np.ascontiguousarray(frame.depth_mm, dtype="<u2").view(np.uint8).reshape(-1))
    k = frame.intrinsics
    info = types[CAMERA_INFO_TYPE](
        header=header, height=k.height, width=k.width, distortion_model="plumb_bob", d=np.zeros(5),
        k=k.matrix.reshape(-1), r=np.eye(3).reshape(-1),
        p=np.array([k.fx, 0.0, k.cx, 0.0, 0.0, k.fy, k.cy, 0.0, 0.0, 0.0, 1.0, 0.0]),
        binning_x=0, binning_y=0,
        roi=types["sensor_msgs/msg/RegionOfInterest"](x_offset=0, y_offset=0, height=0, width=0, do_rectify=False))
    return {topics.color: colour, topics.depth: depth, topics.info: info}
