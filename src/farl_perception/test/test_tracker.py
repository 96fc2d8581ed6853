"""The tracker on synthetic measurement sequences at the 5 Hz control rate."""

from __future__ import annotations

import numpy as np
import pytest

from farl_perception.config import TrackerConfig
from farl_perception.localization import Measurement
from farl_perception.objects import DetectionSource
from farl_perception.tracker import Tracker

PERIOD = 0.2
NAMES = ("object", "obstacle")


def _seen(name: str, position, score: float = 0.9) -> dict[str, Measurement]:
    return {name: Measurement(name, np.asarray(position, dtype=float), score, DetectionSource.COLOUR, 500)}


def test_constant_velocity_track_gives_its_velocity() -> None:
    tracker = Tracker(TrackerConfig(), NAMES, DetectionSource.COLOUR)
    start, velocity = np.array([0.4, -0.1, 0.02]), np.array([0.15, 0.05, 0.0])
    for k in range(15):
        estimate = tracker.update(k * PERIOD, _seen("object", start + velocity * k * PERIOD))[0]
    np.testing.assert_allclose(estimate.velocity, velocity, atol=1e-4)
    np.testing.assert_allclose(estimate.position, start + velocity * 14 * PERIOD, atol=1e-4)  # no lag
    assert not estimate.stale and estimate.confidence == pytest.approx(0.9)


def test_noisy_constant_velocity_track() -> None:
    rng = np.random.default_rng(0)
    tracker = Tracker(TrackerConfig(), NAMES, DetectionSource.COLOUR)
    start, velocity = np.array([0.4, 0.0, 0.02]), np.array([-0.1, 0.2, 0.0])
    errors = []
    for k in range(40):
        truth = start + velocity * k * PERIOD
        estimate = tracker.update(k * PERIOD, _seen("object", truth + rng.normal(scale=0.003, size=3)))[0]
        if k >= 10:
            errors.append(np.linalg.norm(estimate.velocity - velocity))
    assert np.median(errors) < 0.03  # m/s, from 3 mm position noise at 5 Hz


def test_missed_object_is_stale_at_once_and_held() -> None:
    tracker = Tracker(TrackerConfig(confidence_decay=0.5), NAMES, DetectionSource.COLOUR)
    for k in range(5):
        seen = tracker.update(k * PERIOD, {**_seen("object", [0.4 + 0.02 * k, 0.0, 0.02]),
                                           **_seen("obstacle", [0.5, 0.0, 0.07])})
    held = seen[0].position
    assert np.linalg.norm(seen[0].velocity) > 0.05
    for missed in range(1, 4):
        obj, obstacle = tracker.update((4 + missed) * PERIOD, _seen("obstacle", [0.5, 0.0, 0.07]))
        assert obj.stale and not obstacle.stale
        np.testing.assert_array_equal(obj.position, held)             # held, not extrapolated
        np.testing.assert_array_equal(obj.velocity, np.zeros(3))
        assert obj.confidence == pytest.approx(0.9 * 0.5 ** missed)


def test_reacquired_object_restarts_at_the_measurement() -> None:
    tracker = Tracker(TrackerConfig(), NAMES, DetectionSource.COLOUR)
    tracker.update(0.0, _seen("object", [0.4, 0.0, 0.02]))
    tracker.update(0.2, {})
    estimate = tracker.update(0.4, _seen("object", [0.45, 0.02, 0.02], score=0.7))[0]
    np.testing.assert_allclose(estimate.position, [0.45, 0.02, 0.02])
    np.testing.assert_array_equal(estimate.velocity, np.zeros(3))
    assert not estimate.stale and estimate.confidence == pytest.approx(0.7)


def test_jump_beyond_the_gate_restarts_a_seen_track() -> None:
    tracker = Tracker(TrackerConfig(reacquire_distance=0.1), NAMES, DetectionSource.COLOUR)
    tracker.update(0.0, _seen("object", [0.4, 0.0, 0.02]))
    small = tracker.update(0.2, _seen("object", [0.42, 0.0, 0.02]))[0]   # filtered: between the two
    assert 0.4 < small.position[0] < 0.42 and small.velocity[0] > 0.0
    jump = tracker.update(0.4, _seen("object", [0.65, 0.1, 0.02]))[0]    # moved while the robot reset it
    np.testing.assert_allclose(jump.position, [0.65, 0.1, 0.02])
    np.testing.assert_array_equal(jump.velocity, np.zeros(3))


def test_never_seen_object_is_reported_unknown() -> None:
    obj, obstacle = Tracker(TrackerConfig(), NAMES, DetectionSource.YOLO).update(0.0, _seen("object", [0.4, 0, 0]))
    assert obstacle.name == "obstacle" and obstacle.stale and obstacle.confidence == 0.0
    assert np.isnan(obstacle.position).all() and obstacle.source is DetectionSource.YOLO
    assert obj.name == "object" and not obj.stale
