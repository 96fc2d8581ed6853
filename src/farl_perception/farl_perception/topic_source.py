"""A camera source fed from outside: ROS image callbacks push frames, the perception loop reads them.

The ROS node receives colour and depth on DDS threads at the camera's 30 Hz while perception runs
on its own 5 Hz timer.  Only the newest frame matters to a 5 Hz loop (processing an old one adds
latency to every object state), so the source keeps one frame; `read` hands each frame out once
and raises CameraStalled when the topics go silent, like every other source.
"""

from __future__ import annotations

import threading
import time

from farl_core.camera_model import CameraIntrinsics, RGBDFrame
from farl_perception.camera_source import CameraStalled


class TopicSource:
    """CameraSource over frames pushed by another thread (keeps only the newest)."""

    def __init__(self, description: str = "camera topics") -> None:
        self._description = description
        self._frame: RGBDFrame | None = None
        self._delivered_time: float | None = None
        self._closed = False
        self._changed = threading.Condition()

    def push(self, frame: RGBDFrame) -> None:
        """Offer a new frame (from a subscriber callback); replaces any frame not yet read."""
        with self._changed:
            self._frame = frame
            self._changed.notify_all()

    @property
    def intrinsics(self) -> CameraIntrinsics:
        with self._changed:
            if self._frame is None:
                raise CameraStalled(f"no frame from {self._description} yet: is the camera driver running "
                                    "(ros2 topic hz on the colour topic)?")
            return self._frame.intrinsics

    def read(self, timeout_s: float = 1.0) -> RGBDFrame:
        deadline = time.monotonic() + timeout_s
        with self._changed:
            while not self._closed and (self._frame is None or self._frame.time == self._delivered_time):
                left = deadline - time.monotonic()
                if left <= 0:
                    raise CameraStalled(f"no new frame from {self._description} for {timeout_s:.1f} s: check the "
                                        "camera driver and cable (ros2 topic hz on the colour topic)")
                self._changed.wait(left)
            if self._closed:
                raise CameraStalled(f"{self._description} closed")
            assert self._frame is not None
            self._delivered_time = self._frame.time
            return self._frame

    def close(self) -> None:
        with self._changed:
            self._closed = True
            self._changed.notify_all()
