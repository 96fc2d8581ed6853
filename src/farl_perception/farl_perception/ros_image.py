"""sensor_msgs/Image and CameraInfo <-> RGBDFrame, shared by the camera ROS node and bag replay.

No rclpy here: messages are duck-typed (height, width, encoding, is_bigendian, step, data,
header.stamp.sec/nanosec, k), so the same code reads live rclpy messages and messages that
`rosbags` deserialised from a bag, and the tests need no ROS.

Topic names are realsense-ros's (`ros2 launch realsense2_camera rs_launch.py align_depth.enable:=true`
publishes under /camera/camera): perception needs depth aligned to the colour image, so the depth
topic is `aligned_depth_to_color`, never the raw depth stream, whose pixels do not line up.
"""

from __future__ import annotations

from collections import deque
from typing import Any, NamedTuple

import numpy as np

from farl_core.camera_model import CameraIntrinsics, RGBDFrame
from farl_core.errors import FarlError

DEFAULT_NAMESPACE = "/camera/camera"
COLOR_IMAGE = "color/image_raw"
ALIGNED_DEPTH_IMAGE = "aligned_depth_to_color/image_raw"
COLOR_CAMERA_INFO = "color/camera_info"

IMAGE_TYPE = "sensor_msgs/msg/Image"
CAMERA_INFO_TYPE = "sensor_msgs/msg/CameraInfo"


class CameraTopics(NamedTuple):
    """The three topics one RGB-D camera publishes."""

    color: str
    depth: str
    info: str


def camera_topics(namespace: str = DEFAULT_NAMESPACE) -> CameraTopics:
    """realsense-ros topic names under `namespace` (its `camera_namespace`/`camera_name`, e.g. /camera/camera)."""
    base = "/" + namespace.strip("/") if namespace.strip("/") else ""
    return CameraTopics(f"{base}/{COLOR_IMAGE}", f"{base}/{ALIGNED_DEPTH_IMAGE}", f"{base}/{COLOR_CAMERA_INFO}")


DEFAULT_TOPICS = camera_topics()

# encoding -> (bytes per channel, channels, numpy dtype code)
_ENCODINGS = {"rgb8": (1, 3, "u1"), "bgr8": (1, 3, "u1"), "16UC1": (2, 1, "u2"), "32FC1": (4, 1, "f4")}
_MAX_DEPTH_MM = np.iinfo(np.uint16).max


def stamp_ns(msg: Any) -> int:
    """A message's header stamp in integer nanoseconds (exact, unlike float seconds at epoch scale)."""
    stamp = msg.header.stamp
    return int(stamp.sec) * 1_000_000_000 + int(stamp.nanosec)


def image_to_array(msg: Any) -> np.ndarray:
    """The image as RGBDFrame holds it: colour as (H, W, 3) uint8 RGB, depth as (H, W) uint16 millimetres.

    bgr8 is swapped to RGB; 32FC1 depth (metres, NaN or inf where unknown) becomes millimetres with 0
    for no depth, the 16UC1 convention.  Rows may be padded (step > width x pixel size), as some
    drivers align rows; the padding is cut off.
    """
    encoding = str(msg.encoding)
    if encoding not in _ENCODINGS:
        raise FarlError(f"image encoding '{encoding}' is not supported: publish rgb8 or bgr8 colour and 16UC1 or "
                        "32FC1 depth (the realsense-ros defaults are rgb8 and 16UC1)")
    size, channels, code = _ENCODINGS[encoding]
    height, width, step = int(msg.height), int(msg.width), int(msg.step)
    row_bytes = width * channels * size
    raw = np.frombuffer(msg.data, dtype=np.uint8)
    if step < row_bytes or raw.size < step * height:
        raise FarlError(f"{encoding} image {width}x{height} with step {step} holds {raw.size} bytes, expected at "
                        f"least {max(step, row_bytes) * height}: the message is truncated or its header is wrong")
    rows = raw[:step * height].reshape(height, step)[:, :row_bytes]
    dtype = np.dtype(code).newbyteorder(">" if getattr(msg, "is_bigendian", 0) else "<")
    pixels = np.ascontiguousarray(rows).view(dtype).reshape((height, width, channels) if channels > 1 else
                                                             (height, width))
    if encoding == "bgr8":
        return np.ascontiguousarray(pixels[..., ::-1])
    if encoding == "32FC1":
        millimetres = np.rint(np.nan_to_num(pixels.astype(np.float64), nan=0.0, posinf=0.0, neginf=0.0) * 1000.0)
        return np.clip(millimetres, 0, _MAX_DEPTH_MM).astype(np.uint16)
    return pixels.astype(pixels.dtype.newbyteorder("="), copy=True)


def camera_info_to_intrinsics(msg: Any) -> CameraIntrinsics:
    """Pinhole intrinsics from CameraInfo's K = [fx 0 cx; 0 fy cy; 0 0 1] (distortion is ignored: ~0 on a D435)."""
    k = [float(v) for v in msg.k]
    if len(k) != 9 or k[0] <= 0.0 or k[4] <= 0.0:
        raise FarlError(f"camera_info has no usable K matrix ({k}): the camera is uncalibrated or the wrong "
                        "camera_info topic is used; use the colour stream's camera_info")
    return CameraIntrinsics(width=int(msg.width), height=int(msg.height), fx=k[0], fy=k[4], cx=k[2], cy=k[5])


class FramePairer:
    """Pairs colour and aligned-depth images by header stamp into RGBDFrames.

    The two topics arrive independently (separate subscriptions, interleaved bag records), so a
    frame exists only once both halves are in.  realsense-ros stamps an aligned depth image with
    its colour frame's stamp; `tolerance_s` also admits drivers that stamp them a little apart.
    Frames come out in stamp order: a pending message older than a pair just formed can only
    produce an out-of-order frame, so it is dropped (and counted in `dropped`), as are messages
    that wait longer than `max_pending` newer ones and pairs formed before any camera_info.
    """

    def __init__(self, tolerance_s: float = 0.02, max_pending: int = 10,
                 intrinsics: CameraIntrinsics | None = None) -> None:
        self.tolerance_ns = int(round(tolerance_s * 1e9))
        self.max_pending = max_pending
        self.intrinsics = intrinsics
        self.dropped = 0
        self._color: deque[tuple[int, Any]] = deque()
        self._depth: deque[tuple[int, Any]] = deque()

    def set_camera_info(self, msg: Any) -> None:
        self.intrinsics = camera_info_to_intrinsics(msg)

    def add_color(self, msg: Any) -> RGBDFrame | None:
        """Take a colour image; the frame it completes, if any."""
        pair = self._add(msg, self._color, self._depth)
        return None if pair is None else self._frame(msg, pair)

    def add_depth(self, msg: Any) -> RGBDFrame | None:
        """Take an aligned depth image; the frame it completes, if any."""
        pair = self._add(msg, self._depth, self._color)
        return None if pair is None else self._frame(pair, msg)

    def _add(self, msg: Any, mine: deque[tuple[int, Any]], other: deque[tuple[int, Any]]) -> Any | None:
        stamp = stamp_ns(msg)
        candidates = [(abs(s - stamp), i) for i, (s, _) in enumerate(other) if abs(s - stamp) <= self.tolerance_ns]
        if not candidates:
            mine.append((stamp, msg))
            if len(mine) > self.max_pending:
                mine.popleft()
                self.dropped += 1
            return None
        _, index = min(candidates)
        self.dropped += index + sum(1 for s, _ in mine if s <= stamp)
        match = other[index][1]
        for _ in range(index + 1):
            other.popleft()
        kept = [(s, m) for s, m in mine if s > stamp]
        mine.clear()
        mine.extend(kept)
        return match

    def _frame(self, color: Any, depth: Any) -> RGBDFrame | None:
        if self.intrinsics is None:
            self.dropped += 1
            return None
        rgb, depth_mm = image_to_array(color), image_to_array(depth)
        if rgb.ndim != 3 or depth_mm.ndim != 2:
            raise FarlError(f"expected a colour image (rgb8/bgr8) and a depth image (16UC1/32FC1), got "
                            f"'{color.encoding}' and '{depth.encoding}': check which topic is which")
        shape = (self.intrinsics.height, self.intrinsics.width)
        if rgb.shape[:2] != shape or depth_mm.shape != shape:
            raise FarlError(f"colour {rgb.shape[1]}x{rgb.shape[0]}, depth {depth_mm.shape[1]}x{depth_mm.shape[0]} "
                            f"and camera_info {shape[1]}x{shape[0]} differ: use aligned_depth_to_color "
                            "(realsense-ros align_depth.enable:=true) and the colour camera_info")
        return RGBDFrame(rgb=rgb, depth_mm=depth_mm, time=stamp_ns(color) * 1e-9, intrinsics=self.intrinsics)
