"""ObjectArray dataclass <-> farl_interfaces/ObjectArray message, for any ROS 2 message implementation.

The node publishes rclpy messages; recordings and tests build the same message with the rosbags
type system.  Both take every field as a keyword, so one function fills either, given the message
classes (`MessageTypes`), and the field mapping is tested without ROS.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from farl_core.message_time import stamp_seconds, to_stamp
from farl_perception.objects import DetectionSource, ObjectArray, ObjectEstimate


@dataclass(frozen=True)
class MessageTypes:
    """The message classes the conversion fills (rclpy's or a rosbags typestore's)."""

    object_array: Any   # farl_interfaces/msg/ObjectArray
    object_state: Any   # farl_interfaces/msg/ObjectState
    header: Any         # std_msgs/msg/Header
    time: Any           # builtin_interfaces/msg/Time
    point: Any          # geometry_msgs/msg/Point
    vector3: Any        # geometry_msgs/msg/Vector3


def to_object_array_msg(array: ObjectArray, types: MessageTypes, frame_id: str) -> Any:
    """The message of `array`; an object never seen has NaN coordinates (stale, confidence 0)."""
    stamp = to_stamp(array.stamp, types.time)
    states = [types.object_state(
        name=o.name,
        position=types.point(x=float(o.position[0]), y=float(o.position[1]), z=float(o.position[2])),
        velocity=types.vector3(x=float(o.velocity[0]), y=float(o.velocity[1]), z=float(o.velocity[2])),
        confidence=float(o.confidence), stale=bool(o.stale), source=o.source.value) for o in array.objects]
    return types.object_array(header=types.header(stamp=stamp, frame_id=frame_id), objects=states)


def from_object_array_msg(msg: Any) -> ObjectArray:
    """The dataclass of a received message (what the policy node hands the task monitor)."""
    objects = tuple(ObjectEstimate(
        name=o.name, position=np.array([o.position.x, o.position.y, o.position.z], dtype=float),
        velocity=np.array([o.velocity.x, o.velocity.y, o.velocity.z], dtype=float),
        confidence=float(o.confidence), stale=bool(o.stale), source=DetectionSource(o.source)) for o in msg.objects)
    return ObjectArray(stamp_seconds(msg.header.stamp), objects)

