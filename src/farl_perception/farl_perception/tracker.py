"""Temporal filter per object: smoothed position, velocity, confidence and the stale flag.

An alpha-beta filter (a constant-velocity Kalman filter with fixed gains) per object: it needs no
noise model to tune, has no steady-state lag on a constant-velocity object (a pushed puck, a
rolling ball) and gives the velocity the observation does not measure.  dt comes from the frames'
capture stamps, so a dropped frame is a longer step, not a wrong velocity.

What a consumer sees when an object is not detected in a frame (occluded, out of view, the camera
stalled): the estimate is stale at once, in that very frame, its position is held where it was
last seen (not extrapolated: a held position is a known-old fact, an extrapolated one a guess
that grows without bound), its velocity is reported as zero (consistent with the held position)
and its confidence decays by confidence_decay per missed frame.  Re-acquisition: the first
detection after a miss, or one farther than reacquire_distance from the prediction (the object
was moved while unseen, or teleported in a simulation reset), restarts the track at the
measurement with zero velocity instead of blending it with an old state.  An object never seen
is reported stale with a NaN position and zero confidence.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from farl_perception.config import TrackerConfig
from farl_perception.localization import Measurement
from farl_perception.objects import DetectionSource, ObjectEstimate

MIN_DT = 1e-3  # s: guards the velocity update against a repeated stamp


@dataclass
class _Track:
    position: np.ndarray
    velocity: np.ndarray
    stamp: float
    confidence: float
    source: DetectionSource
    missed: int = 0


class Tracker:
    """One alpha-beta track per named object; `update` once per frame (or per stalled step).

    source: what an estimate of a never-seen object names as its source (the configured detector).
    """

    def __init__(self, config: TrackerConfig, names: tuple[str, ...], source: DetectionSource) -> None:
        self._config = config
        self._names = names
        self._source = source
        self._tracks: dict[str, _Track] = {}

    def update(self, stamp: float, measurements: Mapping[str, Measurement]) -> tuple[ObjectEstimate, ...]:
        """Fold in one frame's measurements (objects absent from it were not seen) and report every object."""
        for name in self._names:
            measurement, track = measurements.get(name), self._tracks.get(name)
            if measurement is not None:
                self._fold(name, stamp, measurement)
            elif track is not None:
                track.missed += 1
                track.confidence *= self._config.confidence_decay
        return tuple(self._estimate(name) for name in self._names)

    def _fold(self, name: str, stamp: float, measurement: Measurement) -> None:
        """Correct a continuously seen track with the measurement, or restart it there."""
        track = self._tracks.get(name)
        if track is not None and track.missed == 0:
            dt = max(stamp - track.stamp, MIN_DT)
            predicted = track.position + track.velocity * dt
            innovation = measurement.position - predicted
            if np.linalg.norm(innovation) <= self._config.reacquire_distance:
                track.position = predicted + self._config.alpha * innovation
                track.velocity = track.velocity + self._config.beta / dt * innovation
                track.stamp, track.confidence, track.source = stamp, measurement.score, measurement.source
                return
        self._tracks[name] = _Track(measurement.position.copy(), np.zeros(3), stamp, measurement.score,
                                    measurement.source)

    def _estimate(self, name: str) -> ObjectEstimate:
        track = self._tracks.get(name)
        if track is None:
            return ObjectEstimate(name, np.full(3, np.nan), np.zeros(3), 0.0, True, self._source)
        stale = track.missed > 0
        return ObjectEstimate(name, track.position.copy(), np.zeros(3) if stale else track.velocity.copy(),
                              float(track.confidence), stale, track.source)
