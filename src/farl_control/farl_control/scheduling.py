"""Keep libfranka's realtime scheduling inside libfranka's own threads.

libfranka raises the thread that constructs a `franky.Robot` to SCHED_FIFO priority 99 (measured
here; its control loops do the same in whichever thread runs them), and with RealtimeConfig.Ignore
it only skips the error when it may not; a process with CAP_SYS_NICE (root in a container, CI) may.
Gripper commands, asynchronous motions and joins measured here left the caller alone; the bridge
guards all its entry points anyway, since which calls do it is libfranka's detail.  A Python thread
left at FIFO 99 starves the machine: every thread and process it starts afterwards inherits the
policy, and franky-sim's 1 kHz loop, which never blocks when it runs faster than real time, then
holds its core against everything else.  Seen here: a `farl bench franka` worker whose main thread
was runnable but never scheduled for minutes, and a test suite that went from 6 to over 25 minutes.

The bridge therefore restores the calling thread's policy after each call into franky, and
franky-sim's loop is started as an ordinary thread.  On a real Panda with a realtime kernel the
control loop itself still runs at FIFO 99, as libfranka intends.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import ParamSpec, TypeVar

P = ParamSpec("P")
T = TypeVar("T")

_SUPPORTED = hasattr(os, "sched_getscheduler")  # Linux; macOS has no per-thread policy calls


@contextmanager
def keep_scheduling() -> Iterator[None]:
    """Put the calling thread back on the policy and priority it had on entry."""
    if not _SUPPORTED:
        yield
        return
    policy, priority = os.sched_getscheduler(0), os.sched_getparam(0).sched_priority
    try:
        yield
    finally:
        if (os.sched_getscheduler(0), os.sched_getparam(0).sched_priority) != (policy, priority):
            os.sched_setscheduler(0, policy, os.sched_param(priority))


@contextmanager
def ordinary_scheduling() -> Iterator[None]:
    """Run the block (typically a thread start: new threads inherit the policy) at SCHED_OTHER."""
    with keep_scheduling():
        if _SUPPORTED and os.sched_getscheduler(0) != os.SCHED_OTHER:
            os.sched_setscheduler(0, os.SCHED_OTHER, os.sched_param(0))
        yield


def keeps_scheduling(fn: Callable[P, T]) -> Callable[P, T]:
    """Decorator form of `keep_scheduling`, for the bridge's entry points into franky."""

    @functools.wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> T:
        with keep_scheduling():
            return fn(*args, **kwargs)

    return wrapper


SIMULATED_ROBOT_NICE = -10
"""Nice value of a process that serves franky-sim to other processes (the ROS graph's simulated world)."""


def prefer_simulated_robot() -> bool:
    """Raise this process above ordinary ones, where allowed (root, CAP_SYS_NICE); True if it was.

    libfranka drops the connection ("Net Exception") when no robot state arrives for about a second.
    Inside one process (`farl run`) a starved franky-sim stalls its client with it; in the ROS graph the
    other nodes are separate processes that keep loading the cores, and a starved franky-sim loses
    the robot.  Call it before the simulation's threads start: they inherit it (Linux nice is per
    thread).  A nice value, not a realtime policy: franky-sim's loop must not hold a core.
    """
    try:
        os.setpriority(os.PRIO_PROCESS, 0, SIMULATED_ROBOT_NICE)
    except (PermissionError, OSError, AttributeError):
        return False
    return True
