"""Camera sources: RealSense (through a scripted rs-like module), ROS image conversion, frame pairing,
rosbag2 write and replay (real bags, MCAP and sqlite3), and the simulated D435 (needs MUJOCO_GL=egl).

No RealSense can be attached to a test machine, so `FakeRealSense` stands in for pyrealsense2: it
implements exactly the calls RealSenseSource makes, records them, and plays a script of framesets
and USB errors.  Everything else runs the real libraries.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest

from farl_core.camera_model import CameraIntrinsics, RGBDFrame
from farl_core.errors import FarlError
from farl_perception.bag_source import BagSource, write_rgbd_bag
from farl_perception.camera_source import CameraSource, CameraStalled
from farl_perception.realsense_source import RealSenseConfig, RealSenseSource
from farl_perception.ros_image import (
    DEFAULT_TOPICS,
    FramePairer,
    camera_info_to_intrinsics,
    camera_topics,
    image_to_array,
)
from farl_sim.franka_scenes.sim_source import SimSource


def one_line(error: pytest.ExceptionInfo[BaseException]) -> str:
    message = str(error.value)
    assert "\n" not in message and message
    return message


# -- a scripted pyrealsense2 -------------------------------------------------------------------------


class FakeFrame:
    def __init__(self, data: np.ndarray | None, timestamp_ms: float = 0.0) -> None:
        self.data, self.timestamp_ms = data, timestamp_ms

    def get_data(self) -> np.ndarray:
        assert self.data is not None
        return self.data

    def get_timestamp(self) -> float:
        return self.timestamp_ms

    def __bool__(self) -> bool:  # pyrealsense2 frames are falsy when the stream is absent
        return self.data is not None


class FakeFrameset:
    """What wait_for_frames returns (unaligned depth); `aligned` is what align.process turns it into."""

    def __init__(self, rgb: np.ndarray | None, depth: np.ndarray | None, timestamp_ms: float,
                 aligned: FakeFrameset | None = None) -> None:
        self.colour = FakeFrame(rgb, timestamp_ms)
        self.depth = FakeFrame(depth, timestamp_ms)
        self.aligned = aligned

    def get_color_frame(self) -> FakeFrame:
        return self.colour

    def get_depth_frame(self) -> FakeFrame:
        return self.depth


class FakeRealSense:
    """The parts of pyrealsense2 RealSenseSource uses, recording every call."""

    stream = SimpleNamespace(color="stream.color", depth="stream.depth")
    format = SimpleNamespace(rgb8="format.rgb8", z16="format.z16")
    camera_info = SimpleNamespace(serial_number="camera_info.serial_number")

    def __init__(self, serials: tuple[str, ...] = ("841512070001",), depth_scale: float = 0.001,
                 script: list[FakeFrameset | Exception] | None = None, start_errors: int = 0) -> None:
        self.serials = serials
        self.depth_scale = depth_scale
        self.script = list(script or [])
        self.start_errors = start_errors  # pipeline.start raises this many times (device gone), then works
        self.calls: list[tuple[Any, ...]] = []
        self.colour_intrinsics = SimpleNamespace(width=6, height=4, fx=612.5, fy=611.75, ppx=2.6, ppy=1.4,
                                                 model="distortion.inverse_brown_conrady", coeffs=[0.0] * 5)

    # rs.context().query_devices()
    def context(self) -> FakeRealSense:
        return self

    def query_devices(self) -> list[SimpleNamespace]:
        return [SimpleNamespace(get_info=lambda key, s=serial: {self.camera_info.serial_number: s}[key])
                for serial in self.serials]

    def config(self) -> SimpleNamespace:
        return SimpleNamespace(enable_device=lambda serial: self.calls.append(("enable_device", serial)),
                               enable_stream=lambda *args: self.calls.append(("enable_stream", *args)))

    def pipeline(self) -> SimpleNamespace:
        return SimpleNamespace(start=self._start, stop=lambda: self.calls.append(("stop",)),
                               wait_for_frames=self._wait)

    def align(self, stream: str) -> SimpleNamespace:
        self.calls.append(("align", stream))
        return SimpleNamespace(process=self._process)

    def _start(self, config: SimpleNamespace) -> SimpleNamespace:
        self.calls.append(("start",))
        if self.start_errors:
            self.start_errors -= 1
            raise RuntimeError("No device connected")
        device = SimpleNamespace(first_depth_sensor=lambda: SimpleNamespace(get_depth_scale=lambda: self.depth_scale))
        video = SimpleNamespace(get_intrinsics=lambda: self.colour_intrinsics)
        return SimpleNamespace(get_device=lambda: device,
                               get_stream=lambda stream: SimpleNamespace(as_video_stream_profile=lambda: video))

    def _wait(self, timeout_ms: int) -> FakeFrameset:
        self.calls.append(("wait_for_frames", timeout_ms))
        if not self.script:
            raise RuntimeError(f"Frame didn't arrive within {timeout_ms}")
        item = self.script.pop(0)
        if isinstance(item, Exception):
            raise item
        return item

    def _process(self, frames: FakeFrameset) -> FakeFrameset:
        self.calls.append(("align.process",))
        assert frames.aligned is not None
        return frames.aligned

    def count(self, name: str) -> int:
        return sum(1 for call in self.calls if call[0] == name)


RGB = np.arange(4 * 6 * 3, dtype=np.uint8).reshape(4, 6, 3)
RAW_DEPTH = np.full((4, 6), 9999, dtype=np.uint16)            # unaligned: must never reach the frame
ALIGNED_UNITS = np.arange(4 * 6, dtype=np.uint16).reshape(4, 6) * 100


def frameset(timestamp_ms: float = 1_700_000_000_123.5, rgb: np.ndarray = RGB,
             aligned_depth: np.ndarray | None = ALIGNED_UNITS) -> FakeFrameset:
    """A frameset whose raw depth differs from its aligned depth, so the tests see which one is used."""
    depth = None if aligned_depth is None else aligned_depth.copy()
    return FakeFrameset(rgb.copy(), RAW_DEPTH.copy(), timestamp_ms,
                        aligned=FakeFrameset(rgb.copy(), depth, timestamp_ms))


def test_realsense_streams_aligned_frames_with_device_intrinsics() -> None:
    rs = FakeRealSense(script=[frameset()])
    config = RealSenseConfig(width=6, height=4, fps=15)
    with RealSenseSource(config, rs_module=rs) as source:
        assert isinstance(source, CameraSource)
        frame = source.read(timeout_s=0.5)
        assert source.serial == "841512070001"
        assert source.intrinsics == CameraIntrinsics(width=6, height=4, fx=612.5, fy=611.75, cx=2.6, cy=1.4)
    assert ("enable_device", "841512070001") in rs.calls
    assert ("enable_stream", rs.stream.color, 6, 4, rs.format.rgb8, 15) in rs.calls
    assert ("enable_stream", rs.stream.depth, 6, 4, rs.format.z16, 15) in rs.calls
    assert ("align", rs.stream.color) in rs.calls
    assert rs.calls[-2:] == [("align.process",), ("stop",)]
    np.testing.assert_array_equal(frame.rgb, RGB)
    np.testing.assert_array_equal(frame.depth_mm, ALIGNED_UNITS)  # scale 0.001 m: units are millimetres
    assert frame.depth_mm.dtype == np.uint16 and frame.rgb.dtype == np.uint8
    assert frame.time == pytest.approx(1_700_000_000.1235)
    assert frame.intrinsics == source.intrinsics


def test_realsense_frames_own_their_pixels() -> None:
    """librealsense reuses a frame's buffer once the frame is released: the source must copy."""
    frames = frameset()
    rs = FakeRealSense(script=[frames])
    frame = RealSenseSource(RealSenseConfig(), rs_module=rs).read()
    assert frames.aligned is not None
    frames.aligned.colour.get_data()[:] = 0
    frames.aligned.depth.get_data()[:] = 0
    np.testing.assert_array_equal(frame.rgb, RGB)
    np.testing.assert_array_equal(frame.depth_mm, ALIGNED_UNITS)


def test_realsense_depth_scale_converts_units_to_millimetres() -> None:
    units = np.array([[0, 12346, 65535]], dtype=np.uint16)
    fine = FakeRealSense(depth_scale=0.0001, script=[frameset(0.0, RGB[:1, :3], units)])
    np.testing.assert_array_equal(RealSenseSource(rs_module=fine).read().depth_mm, [[0, 1235, 6554]])
    coarse = FakeRealSense(depth_scale=0.002, script=[frameset(0.0, RGB[:1, :3], units)])
    np.testing.assert_array_equal(RealSenseSource(rs_module=coarse).read().depth_mm, [[0, 24692, 65535]])


def test_realsense_skips_framesets_missing_a_stream() -> None:
    rs = FakeRealSense(script=[frameset(1000.0, aligned_depth=None), frameset(2000.0)])
    assert RealSenseSource(rs_module=rs).read().time == pytest.approx(2.0)
    assert rs.count("start") == 1


def test_realsense_reconnects_after_a_usb_drop() -> None:
    rs = FakeRealSense(script=[RuntimeError("Frame didn't arrive within 1000"), frameset(5000.0)], start_errors=0)
    source = RealSenseSource(RealSenseConfig(reconnect_attempts=3, reconnect_backoff_s=0.01), rs_module=rs)
    rs.start_errors = 1  # the first restart finds no device yet (still re-enumerating), the second works
    frame = source.read(timeout_s=0.2)
    assert frame.time == pytest.approx(5.0)
    assert rs.count("start") == 3 and rs.count("stop") == 1  # a pipeline that did not start is not stopped
    assert rs.calls.count(("enable_device", "841512070001")) == 3  # always the same camera


@pytest.mark.parametrize("start_errors", [0, 100], ids=["stream-silent", "device-gone"])
def test_realsense_persistent_failure_stalls_in_bounded_time(start_errors: int) -> None:
    rs = FakeRealSense()
    source = RealSenseSource(RealSenseConfig(reconnect_attempts=2, reconnect_backoff_s=0.05), rs_module=rs)
    rs.start_errors = start_errors
    began = time.monotonic()
    with pytest.raises(CameraStalled) as error:
        source.read(timeout_s=0.1)
    assert time.monotonic() - began < 1.0  # backoff 0.05 + 0.1 s; the fake's waits return at once
    assert rs.count("start") == 3
    message = one_line(error)
    assert "841512070001" in message and "USB 3" in message and "rs-enumerate-devices" in message
    rs.start_errors, rs.script = 0, [frameset(7000.0)]  # plugged back in: the next read recovers
    assert source.read(timeout_s=0.1).time == pytest.approx(7.0)
    source.close()
    with pytest.raises(FarlError):
        source.read()


def test_realsense_no_device_and_unknown_serial_are_one_line_errors() -> None:
    with pytest.raises(FarlError) as error:
        RealSenseSource(rs_module=FakeRealSense(serials=()))
    assert "no RealSense camera is connected" in one_line(error)
    with pytest.raises(FarlError) as error:
        RealSenseSource(RealSenseConfig(serial="999"), rs_module=FakeRealSense(serials=("111", "222")))
    message = one_line(error)
    assert "'999'" in message and "111, 222" in message


def test_realsense_unsupported_mode_is_a_one_line_error() -> None:
    with pytest.raises(FarlError) as error:
        RealSenseSource(RealSenseConfig(width=1234), rs_module=FakeRealSense(start_errors=1))
    assert "1234x480" in one_line(error)


def test_realsense_without_a_camera_with_the_real_library() -> None:
    rs = pytest.importorskip("pyrealsense2")
    if rs.context().query_devices().size() > 0:
        pytest.skip("a RealSense is connected")
    with pytest.raises(FarlError) as error:
        RealSenseSource()
    assert "no RealSense camera is connected" in one_line(error)


# -- ROS image messages -------------------------------------------------------------------------------


def stamped(t_ns: int) -> SimpleNamespace:
    return SimpleNamespace(stamp=SimpleNamespace(sec=t_ns // 1_000_000_000, nanosec=t_ns % 1_000_000_000))


def image_msg(pixels: np.ndarray, encoding: str, t_ns: int = 0, pad: int = 0, bigendian: bool = False,
              as_bytes: bool = True) -> SimpleNamespace:
    """An Image message as rclpy or rosbags would hand it over, rows padded by `pad` bytes."""
    height, width = pixels.shape[:2]
    dtype = pixels.dtype.newbyteorder(">" if bigendian else "<")
    rows = np.ascontiguousarray(pixels, dtype=dtype).view(np.uint8).reshape(height, -1)
    padded = np.concatenate([rows, np.full((height, pad), 0xAB, dtype=np.uint8)], axis=1).reshape(-1)
    return SimpleNamespace(header=stamped(t_ns), height=height, width=width, encoding=encoding,
                           is_bigendian=int(bigendian), step=rows.shape[1] + pad,
                           data=padded.tobytes() if as_bytes else padded)


def test_colour_encodings_with_padded_rows() -> None:
    rgb = np.random.default_rng(0).integers(0, 256, (3, 5, 3), dtype=np.uint8)
    np.testing.assert_array_equal(image_to_array(image_msg(rgb, "rgb8", pad=4)), rgb)
    np.testing.assert_array_equal(image_to_array(image_msg(rgb[..., ::-1], "bgr8", pad=1, as_bytes=False)), rgb)


@pytest.mark.parametrize("bigendian", [False, True])
def test_16uc1_depth_is_millimetres(bigendian: bool) -> None:
    depth = np.array([[0, 1, 65535], [500, 1234, 258]], dtype=np.uint16)
    converted = image_to_array(image_msg(depth, "16UC1", pad=2, bigendian=bigendian))
    assert converted.dtype == np.uint16
    np.testing.assert_array_equal(converted, depth)


def test_32fc1_depth_metres_become_millimetres() -> None:
    metres = np.array([[0.5, 1.2344, np.nan], [np.inf, -1.0, 70.0]], dtype=np.float32)
    converted = image_to_array(image_msg(metres, "32FC1", pad=8))
    assert converted.dtype == np.uint16
    np.testing.assert_array_equal(converted, [[500, 1234, 0], [0, 0, 65535]])


def test_bad_images_are_one_line_errors() -> None:
    with pytest.raises(FarlError) as error:
        image_to_array(image_msg(np.zeros((2, 2), np.uint8), "mono8"))
    assert "'mono8'" in one_line(error)
    short = image_msg(np.zeros((4, 4, 3), np.uint8), "rgb8")
    short.data = short.data[:-1]
    with pytest.raises(FarlError) as error:
        image_to_array(short)
    assert "truncated" in one_line(error)


def test_camera_info_and_topic_names() -> None:
    info = SimpleNamespace(width=640, height=480, k=[615.1, 0.0, 321.2, 0.0, 614.3, 238.7, 0.0, 0.0, 1.0])
    assert camera_info_to_intrinsics(info) == CameraIntrinsics(640, 480, 615.1, 614.3, 321.2, 238.7)
    with pytest.raises(FarlError):
        camera_info_to_intrinsics(SimpleNamespace(width=640, height=480, k=[0.0] * 9))
    assert DEFAULT_TOPICS == ("/camera/camera/color/image_raw", "/camera/camera/aligned_depth_to_color/image_raw",
                              "/camera/camera/color/camera_info")
    assert camera_topics("robot/d435/").info == "/robot/d435/color/camera_info"


# -- pairing ------------------------------------------------------------------------------------------

SMALL = CameraIntrinsics(width=3, height=2, fx=100.0, fy=100.0, cx=1.0, cy=0.5)
MS = 1_000_000


def colour_msg(t_ns: int, value: int = 7) -> SimpleNamespace:
    return image_msg(np.full((2, 3, 3), value, np.uint8), "rgb8", t_ns)


def depth_msg(t_ns: int, value: int = 800, size: tuple[int, int] = (2, 3)) -> SimpleNamespace:
    return image_msg(np.full(size, value, np.uint16), "16UC1", t_ns)


def test_pairer_pairs_by_stamp_within_tolerance() -> None:
    pairer = FramePairer(tolerance_s=0.02, intrinsics=SMALL)
    assert pairer.add_depth(depth_msg(1_000 * MS, 801)) is None
    frame = pairer.add_color(colour_msg(1_015 * MS, 9))
    assert frame is not None and frame.intrinsics == SMALL
    assert frame.time == pytest.approx(1.015)
    assert frame.rgb[0, 0, 0] == 9 and frame.depth_mm[0, 0] == 801
    assert pairer.add_color(colour_msg(1_100 * MS)) is None
    assert pairer.add_depth(depth_msg(1_125 * MS)) is None  # 25 ms apart: not a pair
    assert pairer.dropped == 0


def test_pairer_drops_unmatched_and_keeps_stamp_order() -> None:
    pairer = FramePairer(intrinsics=SMALL)
    assert pairer.add_color(colour_msg(0)) is None                # its depth never comes
    assert pairer.add_color(colour_msg(100 * MS, 1)) is None
    assert pairer.add_depth(depth_msg(200 * MS)) is None          # its colour never comes
    frame = pairer.add_depth(depth_msg(100 * MS, 5))              # late, but matches
    assert frame is not None and frame.time == pytest.approx(0.1) and frame.depth_mm[0, 0] == 5
    assert pairer.dropped == 1                                    # the colour at t = 0
    late = pairer.add_color(colour_msg(200 * MS, 3))
    assert late is not None and late.time == pytest.approx(0.2)
    assert pairer.add_depth(depth_msg(150 * MS)) is None          # older than the last frame: never emitted


def test_pairer_bounds_pending_and_needs_camera_info() -> None:
    pairer = FramePairer(max_pending=2)
    for t in range(4):
        assert pairer.add_color(colour_msg(t * 100 * MS)) is None
    assert pairer.dropped == 2
    assert pairer.add_depth(depth_msg(300 * MS)) is None          # a pair, but no camera_info yet
    assert pairer.dropped == 4                                    # the colour at 200 ms, and the pair
    pairer.set_camera_info(SimpleNamespace(width=3, height=2, k=SMALL.matrix.reshape(-1)))
    pairer.add_color(colour_msg(400 * MS))
    with pytest.raises(FarlError) as error:
        pairer.add_depth(depth_msg(400 * MS, size=(4, 6)))
    assert "aligned_depth_to_color" in one_line(error)


# -- bags ---------------------------------------------------------------------------------------------


def tiny_frames(times: list[float]) -> list[RGBDFrame]:
    rng = np.random.default_rng(1)
    return [RGBDFrame(rgb=rng.integers(0, 256, (2, 3, 3), dtype=np.uint8),
                      depth_mm=rng.integers(0, 5000, (2, 3), dtype=np.uint16), time=t, intrinsics=SMALL)
            for t in times]


def assert_same_frames(read: list[RGBDFrame], written: list[RGBDFrame]) -> None:
    assert len(read) == len(written)
    for got, want in zip(read, written, strict=True):
        np.testing.assert_array_equal(got.rgb, want.rgb)
        np.testing.assert_array_equal(got.depth_mm, want.depth_mm)
        assert got.rgb.dtype == np.uint8 and got.depth_mm.dtype == np.uint16
        assert got.time == pytest.approx(want.time, abs=1e-9)
        assert got.intrinsics == want.intrinsics


def read_all(source: BagSource) -> list[RGBDFrame]:
    frames = []
    with pytest.raises(CameraStalled) as error:
        while True:
            frames.append(source.read())
    assert one_line(error) == f"bag {source.path} ended after {len(frames)} frames"
    return frames


@pytest.fixture(scope="module")
def sim() -> Iterator[SimSource]:
    with SimSource("fragile-push-wall", seed=0, positions={"object": np.array([0.42, -0.05, 0.03])}) as source:
        yield source


def test_sim_source_renders_the_ground_truth(sim: SimSource) -> None:
    np.testing.assert_allclose(sim.object_states()["object"], [0.42, -0.05, 0.03], atol=2e-3)
    np.testing.assert_array_equal(sim.camera_to_base, sim.scene.camera.extrinsics.matrix)
    frame = sim.read()
    assert isinstance(sim, CameraSource) and frame.intrinsics == sim.intrinsics
    assert sim.read().time > frame.time
    centre = sim.object_states()["object"]
    camera = np.linalg.inv(sim.camera_to_base) @ np.append(centre, 1.0)
    u, v = np.rint(sim.intrinsics.project(camera[:3])).astype(int)
    r, g, b = frame.rgb[v, u].astype(int)
    assert r > 150 and g < 80 and b < 80  # the red cup is where the truth says
    radius = sim.scene.task.geometry.object_radius
    assert camera[2] - radius - 0.01 < frame.depth_mm[v, u] / 1000.0 < camera[2]  # its near surface


def test_sim_source_reset_resamples_objects(sim: SimSource) -> None:
    states = sim.reset(np.random.default_rng(3))
    assert sim.scene.task.geometry.object_start.contains(states["object"][:2])
    np.testing.assert_allclose(sim.object_states()["object"], states["object"], atol=2e-3)


def test_bag_round_trip_of_sim_frames(sim: SimSource, tmp_path: Path) -> None:
    frames = [sim.read() for _ in range(3)]
    path = tmp_path / "rgbd"
    assert write_rgbd_bag(path, frames) == 3
    assert (path / "metadata.yaml").is_file() and (path / "rgbd.mcap").is_file()
    with BagSource(path) as source:
        assert source.intrinsics == sim.intrinsics
        assert_same_frames(read_all(source), frames)
    with BagSource(path / "rgbd.mcap") as source:  # the storage file alone is a bag too
        assert len(read_all(source)) == 3


def test_sqlite3_bag_and_other_namespace(tmp_path: Path) -> None:
    frames = tiny_frames([10.0, 10.2, 10.4])
    write_rgbd_bag(tmp_path / "db", frames, namespace="/robot/d435", storage="sqlite3")
    with BagSource(tmp_path / "db", topics=camera_topics("/robot/d435")) as source:
        assert_same_frames(read_all(source), frames)
    with pytest.raises(FarlError) as error:
        BagSource(tmp_path / "db")
    message = one_line(error)
    assert "lacks /camera/camera/color/image_raw (sensor_msgs/msg/Image)" in message
    assert "/robot/d435/color/camera_info (sensor_msgs/msg/CameraInfo)" in message


def test_realtime_replay_keeps_recorded_spacing_and_reports_gaps(tmp_path: Path) -> None:
    frames = tiny_frames([1.0, 1.05, 1.1, 1.5])
    write_rgbd_bag(tmp_path / "bag", frames)
    with BagSource(tmp_path / "bag", realtime=True) as source:
        began = time.monotonic()
        assert [source.read(timeout_s=0.2).time for _ in range(3)] == pytest.approx([1.0, 1.05, 1.1])
        assert 0.09 < time.monotonic() - began < 0.3
        with pytest.raises(CameraStalled):
            source.read(timeout_s=0.2)  # 0.4 s gap in the recording
        assert source.read(timeout_s=0.5).time == pytest.approx(1.5)
        assert 0.45 < time.monotonic() - began < 0.8


def test_writer_refuses_to_overwrite_and_keeps_frames_of_a_failed_recording(tmp_path: Path) -> None:
    path = tmp_path / "bag"
    path.mkdir()
    with pytest.raises(FarlError) as error:
        write_rgbd_bag(path, tiny_frames([0.0]))
    assert "already exists" in one_line(error) and list(path.iterdir()) == []

    def stalling() -> Iterator[RGBDFrame]:
        yield from tiny_frames([0.0, 0.1])
        raise CameraStalled("camera unplugged")

    with pytest.raises(CameraStalled):
        write_rgbd_bag(tmp_path / "cut", stalling())
    with BagSource(tmp_path / "cut") as source:
        assert len(read_all(source)) == 2


def test_unreadable_bags_are_one_line_errors(tmp_path: Path) -> None:
    write_rgbd_bag(tmp_path / "good", tiny_frames([0.0, 0.1]))
    storage = (tmp_path / "good" / "good.mcap").read_bytes()
    cases = {"missing": (tmp_path / "nothing", "does not exist"),
             "plain dir": (tmp_path, "not a rosbag2 directory"),
             "text file": (tmp_path / "notes.txt", "not a rosbag2 file"),
             "garbage": (tmp_path / "garbage.mcap", "damaged"),
             "truncated": (tmp_path / "truncated.mcap", "damaged")}
    (tmp_path / "notes.txt").write_text("hello")
    (tmp_path / "garbage.mcap").write_bytes(np.random.default_rng(0).bytes(4096))
    (tmp_path / "truncated.mcap").write_bytes(storage[:len(storage) // 2])
    for name, (path, expected) in cases.items():
        with pytest.raises(FarlError) as error:
            BagSource(path)
        assert expected in one_line(error), name


def test_a_damaged_message_is_a_one_line_error(tmp_path: Path) -> None:
    write_rgbd_bag(tmp_path / "bag", tiny_frames([0.0, 0.1]), frame_id="marker_frame")
    storage = tmp_path / "bag" / "bag.mcap"
    data = bytearray(storage.read_bytes())
    # messages in write order: colour, depth, camera_info of frame 0, then of frame 1; damage frame 1's colour
    # message: CDR encapsulation (4 B), stamp (8 B), frame_id length (4 B), frame_id
    found = [0]
    for _ in range(4):
        found.append(data.index(b"marker_frame", found[-1] + 1))
    start = found[4] - 16
    assert data[start:start + 4] == b"\x00\x01\x00\x00"
    data[start:start + 4] = b"\xff\xff\xff\xff"
    storage.write_bytes(bytes(data))
    with BagSource(tmp_path / "bag") as source:
        assert source.read().time == 0.0
        with pytest.raises(FarlError) as error:
            source.read()
    assert not isinstance(error.value, CameraStalled)
    assert "damaged" in one_line(error) and "/camera/camera/color/image_raw" in one_line(error)
