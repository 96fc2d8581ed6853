"""TopicSource: frames pushed by callbacks, read once each, newest wins, silence is an error."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest

from farl_core.camera_model import CameraIntrinsics, RGBDFrame
from farl_perception.camera_source import CameraSource, CameraStalled
from farl_perception.topic_source import TopicSource


def frame(t: float) -> RGBDFrame:
    return RGBDFrame(rgb=np.zeros((4, 4, 3), np.uint8), depth_mm=np.zeros((4, 4), np.uint16), time=t,
                     intrinsics=CameraIntrinsics(width=4, height=4, cx=1.5, cy=1.5))


def test_each_frame_is_read_once_and_the_newest_wins() -> None:
    source = TopicSource()
    source.push(frame(1.0))
    assert isinstance(source, CameraSource)
    source.push(frame(2.0))
    assert source.read(0.1).time == 2.0
    with pytest.raises(CameraStalled, match="no new frame .* for 0.1 s"):
        source.read(0.1)
    assert source.intrinsics.width == 4


def test_read_waits_for_a_frame_pushed_by_another_thread() -> None:
    source = TopicSource()
    threading.Timer(0.05, source.push, args=(frame(3.0),)).start()
    started = time.monotonic()
    assert source.read(2.0).time == 3.0
    assert time.monotonic() - started < 1.5


def test_no_frame_yet_and_closing_are_clear_errors() -> None:
    source = TopicSource("/camera/camera")
    with pytest.raises(CameraStalled, match="no frame from /camera/camera yet"):
        _ = source.intrinsics
    threading.Timer(0.05, source.close).start()
    with pytest.raises(CameraStalled, match="closed"):
        source.read(2.0)
