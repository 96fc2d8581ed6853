"""What perception produces: the ObjectArray topic's content as plain dataclasses.

Field for field the `farl_interfaces/ObjectState` message (base frame, metres, m/s), so the ROS
node only copies fields and the synchronous runner, the recorder and the tests use the same
objects.  `Detection` is the 2-D intermediate every detector returns.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum

import numpy as np


class DetectionSource(str, Enum):
    YOLO = "yolo"
    COLOUR = "colour"
    FUSED = "fused"
    SIM = "sim"
    REPLAY = "replay"


@dataclass(frozen=True)
class Detection:
    """One object found in one image: a pixel mask (bool H x W) and/or a box (x0, y0, x1, y1) in pixels."""

    name: str
    score: float                                   # detector confidence in [0, 1]
    source: DetectionSource
    box: tuple[float, float, float, float] | None = None
    mask: np.ndarray | None = field(default=None, repr=False)


@dataclass(frozen=True)
class ObjectEstimate:
    """One tracked object (ObjectState.msg)."""

    name: str
    position: np.ndarray        # m, robot base frame
    velocity: np.ndarray        # m/s, from the temporal filter
    confidence: float           # in [0, 1]
    stale: bool                 # not seen in the latest frame
    source: DetectionSource


@dataclass(frozen=True)
class ObjectArray:
    """All objects of the task at `stamp` (ObjectArray.msg; frame: robot base)."""

    stamp: float                # s, the frame's capture time
    objects: tuple[ObjectEstimate, ...]

    def get(self, name: str) -> ObjectEstimate | None:
        return next((o for o in self.objects if o.name == name), None)
