"""Rectangles on the table plane: workspace regions, boundaries and footprints of every task.

Shared by the FailureBench tasks (MetaWorld's table frame) and the Franka tasks (robot base frame).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class TableRect:
    """An axis-aligned rectangle in the table plane (metres, base frame)."""

    x_min: float
    x_max: float
    y_min: float
    y_max: float

    @property
    def centre(self) -> np.ndarray:
        return np.array([(self.x_min + self.x_max) / 2.0, (self.y_min + self.y_max) / 2.0])

    def contains(self, xy: np.ndarray) -> bool:
        return bool(self.x_min <= xy[0] <= self.x_max and self.y_min <= xy[1] <= self.y_max)

    def distance(self, xy: np.ndarray) -> float:
        """Distance from `xy` to the rectangle (0 inside)."""
        dx = max(self.x_min - xy[0], 0.0, xy[0] - self.x_max)
        dy = max(self.y_min - xy[1], 0.0, xy[1] - self.y_max)
        return float(np.hypot(dx, dy))

    def inside_distance(self, xy: np.ndarray) -> float:
        """Distance to the nearest edge: positive inside, negative outside (metres)."""
        return float(min(xy[0] - self.x_min, self.x_max - xy[0], xy[1] - self.y_min, self.y_max - xy[1]))

    def closest_point(self, xy: np.ndarray) -> np.ndarray:
        return np.array([np.clip(xy[0], self.x_min, self.x_max), np.clip(xy[1], self.y_min, self.y_max)])

    def sample(self, rng: np.random.Generator) -> np.ndarray:
        return rng.uniform([self.x_min, self.y_min], [self.x_max, self.y_max])

    def around(self, xy: np.ndarray) -> TableRect:
        """This rectangle's half sizes, centred at `xy` (a footprint that moves with its owner)."""
        half_x, half_y = (self.x_max - self.x_min) / 2.0, (self.y_max - self.y_min) / 2.0
        return TableRect(xy[0] - half_x, xy[0] + half_x, xy[1] - half_y, xy[1] + half_y)
