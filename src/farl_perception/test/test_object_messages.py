"""The ObjectArray dataclass fills the farl_interfaces message field for field (checked via rosbags' CDR)."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from rosbags.typesys import Stores, get_typestore
from rosbags.typesys.msg import get_types_from_msg

from farl_perception.object_messages import MessageTypes, to_object_array_msg
from farl_perception.objects import DetectionSource, ObjectArray, ObjectEstimate

MSG_DIR = Path(__file__).resolve().parents[2] / "farl_interfaces" / "msg"


@pytest.fixture(scope="module")
def store():
    typestore = get_typestore(Stores.ROS2_HUMBLE)
    for name in ("ObjectState", "ObjectArray"):
        typestore.register(get_types_from_msg((MSG_DIR / f"{name}.msg").read_text(), f"farl_interfaces/msg/{name}"))
    return typestore


def test_fields_survive_a_cdr_round_trip(store) -> None:
    types = MessageTypes(*(store.types[t] for t in (
        "farl_interfaces/msg/ObjectArray", "farl_interfaces/msg/ObjectState", "std_msgs/msg/Header",
        "builtin_interfaces/msg/Time", "geometry_msgs/msg/Point", "geometry_msgs/msg/Vector3")))
    array = ObjectArray(stamp=12.25, objects=(
        ObjectEstimate("object", np.array([0.5, -0.1, 0.03]), np.array([0.01, 0.0, -0.02]), 0.9, False,
                       DetectionSource.COLOUR),
        ObjectEstimate("wall", np.full(3, np.nan), np.zeros(3), 0.0, True, DetectionSource.FUSED)))
    msg = to_object_array_msg(array, types, frame_id="base")
    back = store.deserialize_cdr(store.serialize_cdr(msg, "farl_interfaces/msg/ObjectArray"),
                                 "farl_interfaces/msg/ObjectArray")
    assert (back.header.stamp.sec, back.header.stamp.nanosec, back.header.frame_id) == (12, 250_000_000, "base")
    first, second = back.objects
    assert (first.name, first.source, first.stale) == ("object", "colour", False)
    assert (first.position.x, first.position.y, first.position.z) == (0.5, -0.1, 0.03)
    assert first.velocity.z == -0.02 and first.confidence == pytest.approx(0.9)
    assert second.stale and second.source == "fused" and math.isnan(second.position.x)
