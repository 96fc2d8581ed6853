"""`farl data replay BAG --robot sim`: re-execute a recorded episode's commands on franky-sim, open loop.

Whether a recording can be trusted as a model of the world (for offline RL, for the world model)
shows in how well its own commands reproduce it: the replay homes the arm, puts every object where
the recording saw it at the first command (the arm first goes where the recording had it, for clips
that start mid-episode), then sends each recorded command through the bridge at its recorded tick
and reads the objects' simulated positions after each.  The report is the distance between the
replayed and the recorded object paths per tick (mean, max, final, per object), in a JSON file
and a plot of both paths (`replay.json`, `replay.png` in `--out`).

Divergence has three sources the numbers do not tell apart: perception noise in the recording,
contact dynamics being chaotic (a push a millimetre off turns the object), and a recording made on
another world (a real robot's bag replayed in simulation measures the sim-to-real gap).
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from farl.data_build import read_bag
from farl.robot_loop import wait_for_robot_time
from farl.run_session import load_configs, open_world
from farl.training import write_json
from farl_control.state_messages import robot_state_from_msg
from farl_core.atomic_files import write_atomic
from farl_core.errors import FarlError
from farl_core.franka_tasks import get_franka_task
from farl_perception.object_messages import from_object_array_msg

log = logging.getLogger(__name__)

POSITIONING_TICKS = 60
"""Ticks the arm gets to reach the recording's first end-effector position (3 cm each: 1.8 m)."""


@dataclass(frozen=True)
class ReplayReport:
    bag: str
    task: str
    commands: int
    mean_divergence_m: dict[str, float]     # per object: mean distance replayed vs recorded, over the ticks
    max_divergence_m: dict[str, float]
    final_divergence_m: dict[str, float]
    start_error_m: float                    # end effector: where the replay started vs the recording


def _latest_before(messages: list[tuple[int, Any]], stamp: int) -> Any:
    before = [m for t, m in messages if t <= stamp]
    return before[-1] if before else None


def replay_bag(bag: Path, out: Path, robot: str = "sim", config: Path | None = None,
               progress: bool = True) -> ReplayReport:
    """Replay one episode bag's commands on franky-sim and write the divergence report into `out`."""
    if robot != "sim":
        raise FarlError(f"--robot {robot}: replay runs the recorded commands open loop, which is safe only in "
                        "simulation; use --robot sim")
    if out.exists() and any(out.iterdir()):
        raise FarlError(f"{out} is not empty: choose another --out (nothing is overwritten)")
    label, messages = read_bag(bag)
    task = get_franka_task(label.task)
    commands = messages["/farl/action/command"]
    first = commands[0][0]
    start_objects = _latest_before(messages["/farl/objects"], first)
    start_state = _latest_before(messages["/farl/robot_state"], first)
    if start_objects is None or start_state is None:
        raise FarlError(f"{bag}: no objects or robot state before the first command: nothing to start the replay from")
    recorded_start = from_object_array_msg(start_objects)
    configs = load_configs(config)
    configs = replace(configs, bridge=replace(configs.bridge, robot="sim"))
    names = task.observed
    recorded, replayed = {n: [] for n in names}, {n: [] for n in names}
    with open_world(task, configs, "sim", "ground-truth", seed=0) as (bridge, truth, _, scene):
        bridge.reset()
        start_error = _go_to(bridge, robot_state_from_msg(start_state)[1].ee_position)
        scene.place({o.name: o.position for o in recorded_start.objects if o.name in names and not o.stale})
        period = 1.0 / bridge.config.control_rate_hz
        stamps = [t for t, _ in commands] + [messages["/farl/objects"][-1][0]]
        for k, (_, command) in enumerate(tqdm(commands, desc=f"replay {bag.name}", unit="command",
                                              disable=not progress)):
            tick = bridge.robot_time()
            delta = np.asarray(command.delta, dtype=float)
            bridge.command(delta[:3] * bridge.config.limits.max_translation, gripper=float(delta[3]))
            wait_for_robot_time(bridge, tick + period)
            seen = _latest_before(messages["/farl/objects"], stamps[k + 1])
            now = truth.step()
            for name in names:
                was, is_now = from_object_array_msg(seen).get(name), now.get(name)
                if was is not None and is_now is not None and not was.stale:
                    recorded[name].append(was.position[:2])
                    replayed[name].append(is_now.position[:2])
        bridge.command(np.zeros(3))
    distances = {n: np.linalg.norm(np.asarray(recorded[n]) - np.asarray(replayed[n]), axis=1)
                 for n in names if recorded[n]}
    report = ReplayReport(
        bag=str(bag), task=task.name, commands=len(commands),
        mean_divergence_m={n: float(d.mean()) for n, d in distances.items()},
        max_divergence_m={n: float(d.max()) for n, d in distances.items()},
        final_divergence_m={n: float(d[-1]) for n, d in distances.items()}, start_error_m=start_error)
    out.mkdir(parents=True, exist_ok=True)
    write_json(out / "replay.json", asdict(report))
    _plot(recorded, replayed, out / "replay.png", bag.name)
    return report


def _go_to(bridge: Any, target: np.ndarray) -> float:
    """Drive the end effector to `target` in capped steps (before the objects are placed); the remaining error."""
    period = 1.0 / bridge.config.control_rate_hz
    for _ in range(POSITIONING_TICKS):
        error = target - bridge.state().ee_position
        if np.linalg.norm(error) < 0.005:
            break
        tick = bridge.robot_time()
        bridge.command(error)
        wait_for_robot_time(bridge, tick + period)
    bridge.command(np.zeros(3))
    return float(np.linalg.norm(target - bridge.state().ee_position))


def _plot(recorded: dict[str, list], replayed: dict[str, list], path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 5))
    for name in recorded:
        if recorded[name]:
            rec, rep = np.asarray(recorded[name]), np.asarray(replayed[name])
            ax.plot(rec[:, 0], rec[:, 1], label=f"{name} recorded")
            ax.plot(rep[:, 0], rep[:, 1], "--", label=f"{name} replayed")
    ax.set(xlabel="x (m, base)", ylabel="y (m, base)", title=f"replay of {title}", aspect="equal")
    ax.legend(fontsize=8)
    fig.tight_layout()
    write_atomic(path, lambda tmp: fig.savefig(tmp, dpi=100, format="png"))
    plt.close(fig)
