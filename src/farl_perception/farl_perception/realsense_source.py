"""An Intel RealSense (D435) as a CameraSource, straight through pyrealsense2 (no ROS needed).

What it does, and why:
- colour rgb8 and depth z16 at the same size and rate, depth aligned to colour
  (`rs.align(rs.stream.color)`): detections are found in the colour image and looked up in the
  depth image pixel for pixel, so both must share the colour stream's pixel grid and intrinsics,
  which are read from the device (every unit is calibrated differently).
- depth in millimetres through the device's depth scale (metres per unit: 0.001 on a D435 by
  default, but a unit configured for higher precision reports e.g. 0.0001).
- the frame time is the colour frame's timestamp (ms -> s): librealsense's global time by default,
  i.e. host-clock capture time, not the time the frame reached Python.
- a USB drop or a stalled stream makes wait_for_frames raise RuntimeError; the source stops and
  restarts the pipeline on the same serial a bounded number of times with growing back-off, then
  raises CameraStalled, so perception reports an error instead of hanging or repeating itself.

pyrealsense2 is imported when a source is made, not at module import, so the rest of perception
works on machines without it; tests pass an rs-like module instead (`rs_module`), because no
camera can be attached to a test machine.
"""

from __future__ import annotations

import contextlib
import logging
import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from farl_core.camera_model import CameraIntrinsics, RGBDFrame
from farl_core.errors import FarlError
from farl_perception.camera_source import CameraStalled

LOG = logging.getLogger(__name__)
_USB_HINT = "check the USB 3 cable and port, then `rs-enumerate-devices`"


@dataclass(frozen=True)
class RealSenseConfig:
    """Which camera, which stream mode, how hard to try after a USB drop."""

    serial: str = ""                 # "" = the first camera found
    width: int = 640
    height: int = 480
    fps: int = 30
    reconnect_attempts: int = 3      # pipeline restarts per failed read before CameraStalled
    reconnect_backoff_s: float = 0.5  # wait before the first restart; doubled before each further one


class RealSenseSource:
    """A started RealSense pipeline serving aligned RGB-D frames (see the module docstring)."""

    def __init__(self, config: RealSenseConfig = RealSenseConfig(), rs_module: Any = None) -> None:
        if rs_module is None:
            import pyrealsense2 as rs_module
        self.config = config
        self._rs = rs_module
        self.serial = self._find_serial()
        self._pipeline: Any = None
        self._closed = False
        self._align: Any = None
        self._depth_scale_mm = 1.0
        self._intrinsics = CameraIntrinsics()
        try:
            self._start()
        except RuntimeError as exc:
            raise FarlError(f"RealSense {self.serial} did not start {config.width}x{config.height} at {config.fps} fps "
                            f"({_one_line(exc)}): pick a mode `rs-enumerate-devices` lists, and {_USB_HINT}") from None

    @property
    def intrinsics(self) -> CameraIntrinsics:
        """The colour stream's intrinsics, as calibrated in the device (shared by the aligned depth)."""
        return self._intrinsics

    def read(self, timeout_s: float = 1.0) -> RGBDFrame:
        """The next aligned frame; on a stream error, restart the pipeline before giving up with CameraStalled.

        After a CameraStalled the next read tries again (a re-plugged camera comes back).
        """
        if self._closed:
            raise FarlError("read from a closed RealSenseSource: make a new one")
        try:
            return self._next_frame(timeout_s)
        except RuntimeError as exc:
            error = exc
        backoff = self.config.reconnect_backoff_s
        for attempt in range(1, self.config.reconnect_attempts + 1):
            LOG.warning("RealSense %s: %s; restarting the pipeline (attempt %d of %d)", self.serial, error, attempt,
                        self.config.reconnect_attempts)
            time.sleep(backoff)
            backoff *= 2.0
            try:
                self._stop()
                self._start()
                return self._next_frame(timeout_s)
            except RuntimeError as exc:
                error = exc
        raise CameraStalled(f"RealSense {self.serial} delivered no frame within {timeout_s} s, even after "
                            f"{self.config.reconnect_attempts} pipeline restarts ({_one_line(error)}): {_USB_HINT}")

    def close(self) -> None:
        """Stop streaming (idempotent)."""
        self._closed = True
        self._stop()

    def __enter__(self) -> RealSenseSource:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _find_serial(self) -> str:
        rs = self._rs
        serials = [device.get_info(rs.camera_info.serial_number) for device in rs.context().query_devices()]
        if not serials:
            raise FarlError(f"no RealSense camera is connected: plug it in, {_USB_HINT}")
        if not self.config.serial:
            return serials[0]
        if self.config.serial not in serials:
            raise FarlError(f"no RealSense camera with serial '{self.config.serial}'; connected: "
                            f"{', '.join(serials)}: set the serial to one of them")
        return self.config.serial

    def _start(self) -> None:
        """Start streaming from this serial; (re)read depth scale and intrinsics, which belong to the device."""
        rs, config = self._rs, self.config
        rs_config = rs.config()
        rs_config.enable_device(self.serial)
        rs_config.enable_stream(rs.stream.color, config.width, config.height, rs.format.rgb8, config.fps)
        rs_config.enable_stream(rs.stream.depth, config.width, config.height, rs.format.z16, config.fps)
        pipeline = rs.pipeline()
        profile = pipeline.start(rs_config)
        self._pipeline = pipeline
        self._depth_scale_mm = float(profile.get_device().first_depth_sensor().get_depth_scale()) * 1000.0
        colour = profile.get_stream(rs.stream.color).as_video_stream_profile().get_intrinsics()
        self._intrinsics = CameraIntrinsics(width=int(colour.width), height=int(colour.height), fx=float(colour.fx),
                                            fy=float(colour.fy), cx=float(colour.ppx), cy=float(colour.ppy))
        self._align = rs.align(rs.stream.color)

    def _stop(self) -> None:
        if self._pipeline is not None:
            with contextlib.suppress(RuntimeError):  # already stopped, or the device is gone
                self._pipeline.stop()
            self._pipeline = None

    def _next_frame(self, timeout_s: float) -> RGBDFrame:
        """Wait for a frameset holding both streams; RuntimeError (librealsense's error type) if none comes in time."""
        deadline = time.monotonic() + timeout_s
        while True:
            if self._pipeline is None:  # the last restart failed
                raise RuntimeError("the pipeline is not running")
            remaining_ms = max(1, int((deadline - time.monotonic()) * 1000.0))
            aligned = self._align.process(self._pipeline.wait_for_frames(remaining_ms))
            colour, depth = aligned.get_color_frame(), aligned.get_depth_frame()
            if colour and depth:
                return self._to_frame(colour, depth)
            if time.monotonic() >= deadline:
                raise RuntimeError("only framesets without colour or depth arrived")

    def _to_frame(self, colour: Any, depth: Any) -> RGBDFrame:
        # copies: librealsense recycles a frame's buffer once the frame object is released
        rgb = np.array(np.asanyarray(colour.get_data()), dtype=np.uint8)
        units = np.asanyarray(depth.get_data())
        if abs(self._depth_scale_mm - 1.0) < 1e-9:
            depth_mm = np.array(units, dtype=np.uint16)
        else:
            depth_mm = np.clip(np.rint(units * self._depth_scale_mm), 0, np.iinfo(np.uint16).max).astype(np.uint16)
        return RGBDFrame(rgb=rgb, depth_mm=depth_mm, time=float(colour.get_timestamp()) / 1000.0,
                         intrinsics=self._intrinsics)


def _one_line(error: Exception) -> str:
    return " ".join(str(error).split())
