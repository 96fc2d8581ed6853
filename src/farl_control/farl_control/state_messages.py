"""RobotStateSample <-> farl_interfaces/RobotState, for any ROS 2 message implementation.

The bridge node fills the message it publishes, the policy node reads it back into the sample the
task monitor takes; both directions are here so the error-flag mapping is written once.  Messages
are duck-typed (rclpy's, or a rosbags typestore's for recordings): fields are set on a message
whose nested fields already exist, as rclpy constructs them.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from farl_control.bridge import BridgeStatus, RobotStateSample
from farl_core.message_time import stamp_seconds, to_stamp

ERROR_NONE = 0
ERROR_REFLEX = 1
ERROR_COMMAND_REJECTED = 2
ERROR_WATCHDOG = 4
ERROR_UNRECOVERABLE = 8
"""RobotState.msg's ERROR_* constants (kept here so the mapping is testable without ROS)."""

_FLAGS = {BridgeStatus.READY: ERROR_NONE, BridgeStatus.HOLDING: ERROR_COMMAND_REJECTED,
          BridgeStatus.STOPPED: ERROR_WATCHDOG, BridgeStatus.RECOVERING: ERROR_REFLEX,
          BridgeStatus.UNRECOVERABLE: ERROR_UNRECOVERABLE}


def error_flags(sample: RobotStateSample) -> int:
    """The message's error bits for a sample: its bridge status, plus REFLEX while the robot reports errors."""
    return _FLAGS[sample.status] | (ERROR_REFLEX if sample.has_errors else ERROR_NONE)


def status_of(flags: int) -> BridgeStatus:
    """The bridge status a message's flags stand for (the most severe bit wins)."""
    for flag, status in ((ERROR_UNRECOVERABLE, BridgeStatus.UNRECOVERABLE), (ERROR_REFLEX, BridgeStatus.RECOVERING),
                         (ERROR_WATCHDOG, BridgeStatus.STOPPED), (ERROR_COMMAND_REJECTED, BridgeStatus.HOLDING)):
        if flags & flag:
            return status
    return BridgeStatus.READY


def fill_robot_state(msg: Any, sample: RobotStateSample, stamp: float, frame_id: str, time_type: Any) -> Any:
    """Write `sample`, taken at robot time `stamp`, into `msg` (a RobotState); returns msg."""
    msg.header.stamp = to_stamp(stamp, time_type)
    msg.header.frame_id = frame_id
    position, orientation = msg.ee_pose.position, msg.ee_pose.orientation
    position.x, position.y, position.z = (float(v) for v in sample.ee_position)
    orientation.x, orientation.y, orientation.z, orientation.w = (float(v) for v in sample.ee_quaternion)
    linear, angular = msg.ee_twist.linear, msg.ee_twist.angular
    linear.x, linear.y, linear.z, angular.x, angular.y, angular.z = (float(v) for v in sample.ee_twist)
    msg.gripper_width = float(sample.gripper_width)
    msg.joint_positions = [float(v) for v in sample.joints]
    msg.joint_velocities = [float(v) for v in sample.joint_velocities]
    msg.error_flags = error_flags(sample)
    msg.error_message = sample.error
    return msg


def robot_state_from_msg(msg: Any) -> tuple[float, RobotStateSample]:
    """(stamp in seconds, sample) of a received RobotState."""
    pose, twist = msg.ee_pose, msg.ee_twist
    sample = RobotStateSample(
        ee_position=np.array([pose.position.x, pose.position.y, pose.position.z], dtype=float),
        ee_quaternion=np.array([pose.orientation.x, pose.orientation.y, pose.orientation.z, pose.orientation.w]),
        ee_twist=np.array([twist.linear.x, twist.linear.y, twist.linear.z,
                           twist.angular.x, twist.angular.y, twist.angular.z], dtype=float),
        joints=np.asarray(msg.joint_positions, dtype=float),
        joint_velocities=np.asarray(msg.joint_velocities, dtype=float),
        gripper_width=float(msg.gripper_width), has_errors=bool(msg.error_flags & ERROR_REFLEX),
        status=status_of(int(msg.error_flags)), error=str(msg.error_message))
    return stamp_seconds(msg.header.stamp), sample
