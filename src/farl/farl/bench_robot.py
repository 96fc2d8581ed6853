"""`farl bench robot`: the bridge's overhead, franky-sim's speed and the simulated D435's render time.

Latency is command-to-motion-start: from the call until the measured EE has moved 0.2 mm, for a
1 cm Cartesian step, once through FrankaBridge.command (limits, lock, watchdog bookkeeping, the
franky call) and once as the bare franky call it wraps, alternating (and alternating which goes
first) in the same run on the same franky-sim server, so the ratio cancels the machine's load.
The simulation real-time factor is simulated seconds per wall second with the bridge commanding
at 5 Hz; the render time is one 640x480 RGB + aligned depth frame of the Fragile Push Wall scene.
The busy-thread figures are franky-sim's real-time factor while one CPU-bound Python thread shares its
process (what an executor, a renderer or torch glue does to it), at CPython's default GIL switch interval
and at the one EmbeddedFrankaSim sets (embedded_sim.SWITCH_INTERVAL_S), against the idle loop, same run.
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import franky
import numpy as np
from tqdm import tqdm

from farl.bench import percentiles
from farl_control.bridge import FrankaBridge
from farl_control.config import BridgeConfig
from farl_control.embedded_sim import SWITCH_INTERVAL_S
from farl_sim.franka_scenes import SimulatedD435, make_franka_scene

_MOVED = 2e-4  # m: the motion has started
CPYTHON_SWITCH_INTERVAL_S = 0.005


def _time_to_motion(bridge: FrankaBridge, start: Callable[[], object]) -> float:
    before = np.asarray(bridge.robot.current_cartesian_state.pose.end_effector_pose.translation)
    t0 = time.perf_counter()
    start()
    while np.linalg.norm(np.asarray(bridge.robot.current_cartesian_state.pose.end_effector_pose.translation)
                         - before) < _MOVED:
        pass
    elapsed = time.perf_counter() - t0
    bridge.robot.join_motion(timeout=30.0)
    return elapsed


def _bare_move(bridge: FrankaBridge, sign: float) -> None:
    """What FrankaBridge.command does for a valid 1 cm step, as one plain franky call."""
    pose = bridge.robot.current_cartesian_state.pose.end_effector_pose
    target = franky.Affine(np.asarray(pose.translation) + [0.0, 0.01 * sign, 0.0], pose.quaternion)
    bridge.robot.move(franky.CartesianMotion(target), asynchronous=True)


def bench_robot(trials: int = 30, frames: int = 20, realtime: bool = True) -> dict[str, Any]:
    """Figures for BENCHMARKS.md (module docstring); `realtime` paces franky-sim like a real robot."""
    config = BridgeConfig(limits=replace(BridgeConfig().limits, watchdog_periods=1e4))
    scene = make_franka_scene("fragile-push-wall")
    with FrankaBridge.connect(config, scene=scene.build, realtime=realtime) as bridge:
        bridge.reset()
        bridged, bare = [], []
        for k in tqdm(range(trials), desc="command-to-motion latency"):
            sign = 1.0 if k % 2 == 0 else -1.0  # out and back; the order of the two calls alternates too
            pair = [(bridged, lambda s=sign: bridge.command(np.array([0.0, 0.01 * s, 0.0]))),
                    (bare, lambda s=-sign: _bare_move(bridge, s))]
            for samples, start in pair if k % 4 < 2 else pair[::-1]:
                samples.append(_time_to_motion(bridge, start))
        sim_start, wall_start = bridge.robot_time(), time.perf_counter()
        for k in range(25):  # 5 s of robot time at 5 Hz, small alternating steps
            bridge.command(np.array([0.0, 0.005 * (1 if k % 2 == 0 else -1), 0.0]))
            next_tick = bridge.robot_time() + 1.0 / config.control_rate_hz
            while bridge.robot_time() < next_tick:
                time.sleep(0.001)
        rtf = (bridge.robot_time() - sim_start) / (time.perf_counter() - wall_start)
        busy = {"idle": _sim_speed(bridge, None),
                **{f"busy_thread_switch_{interval * 1e3:g}ms": _sim_speed(bridge, interval)
                   for interval in (CPYTHON_SWITCH_INTERVAL_S, SWITCH_INTERVAL_S)}}
        assert bridge.server is not None
        with SimulatedD435(bridge.server, scene.camera) as camera:
            camera.capture()  # first frame builds the GL context
            render = []
            for _ in tqdm(range(frames), desc="RGB-D frames"):
                t0 = time.perf_counter()
                camera.capture()
                render.append(time.perf_counter() - t0)
    bridge_fig, bare_fig = percentiles(bridged), percentiles(bare)
    return {"trials": trials, "bridge_command": bridge_fig, "bare_franky_move": bare_fig,
            "p50_ratio": bridge_fig["p50_ms"] / bare_fig["p50_ms"],
            "realtime_factor": rtf, "paced_realtime": realtime, "render_rgbd": percentiles(render),
            "sim_speed_beside_a_busy_thread": busy}


def _sim_speed(bridge: FrankaBridge, switch_interval: float | None, seconds: float = 3.0) -> float:
    """franky-sim's simulated seconds per wall second over `seconds`, with a CPU-bound Python thread beside it
    at GIL switch interval `switch_interval` (None: no such thread)."""
    saved, stop = sys.getswitchinterval(), threading.Event()

    def spin() -> None:
        while not stop.is_set():
            pass

    busy = threading.Thread(target=spin, daemon=True) if switch_interval is not None else None
    if switch_interval is not None:
        sys.setswitchinterval(switch_interval)
    try:
        if busy is not None:
            busy.start()
        sim_start, wall_start = bridge.robot_time(), time.perf_counter()
        time.sleep(seconds)
        return (bridge.robot_time() - sim_start) / (time.perf_counter() - wall_start)
    finally:
        stop.set()
        if busy is not None:
            busy.join()
        sys.setswitchinterval(saved)
