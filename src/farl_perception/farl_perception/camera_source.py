"""One interface for every camera: RealSense, ROS image topics, the simulated D435, rosbag replay.

Perception never asks where frames come from.  A source hands out aligned RGB-D frames
(`farl_core.camera_model.RGBDFrame`, colour intrinsics attached) and says clearly when it has
stopped delivering: `read` raises `CameraStalled` after `timeout_s` without a new frame, so the
pipeline reports an error state instead of repeating the last object positions.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from farl_core.camera_model import CameraIntrinsics, RGBDFrame
from farl_core.errors import FarlError


class CameraStalled(FarlError):
    """No new frame within the timeout (USB drop, driver crash, bag at its end, topic silent)."""


@runtime_checkable
class CameraSource(Protocol):
    """A started camera.  `read` blocks for the next frame newer than the last one returned."""

    @property
    def intrinsics(self) -> CameraIntrinsics: ...

    def read(self, timeout_s: float = 1.0) -> RGBDFrame: ...

    def close(self) -> None: ...
