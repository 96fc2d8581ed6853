"""`farl bench loop`: the robot loop's step time on franky-sim, as a share of the 200 ms control period.

One tick = perception's processing of the frame (colour path: detect, localise, track) + task
monitor + task policy + shield (C_H over H latent steps, recovery policy) + the bridge command.
The simulated camera's render time is measured separately: a real D435 delivers its frames
without costing this process anything, so adding the render would charge the loop for the
simulator.  Timing does not depend on what the networks learned, so the checkpoints are untrained
networks of the default sizes (`farl_training` defaults), built in a temporary folder.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from farl.bench import percentiles
from farl.console import ScriptedOperator
from farl.robot_loop import RobotLoop
from farl.run_session import RunRequest, build_agent, load_configs, open_world
from farl.training import TrainingConfig
from farl_core.franka_tasks import get_franka_task
from farl_core.task_monitor import TaskMonitor
from farl_policy.critics import ValueCritics
from farl_policy.gaussian import GaussianPolicy
from farl_safety.world_model import WorldModel


def default_size_checkpoints(task_name: str, root: Path, config: TrainingConfig) -> dict[str, Path]:
    """Untrained task policy (+ V), recovery policy and world model with the configured sizes."""
    spec = get_franka_task(task_name).spec
    torch.manual_seed(0)
    GaussianPolicy(spec, config.offline.policy).save(root / "task" / "policy", kind="task_policy")
    ValueCritics(spec, config.offline.critics).save(root / "task" / "critics")
    GaussianPolicy(spec, config.offline.policy).save(root / "recovery" / "policy", kind="recovery_policy")
    WorldModel(spec, config.world_model).save(root / "model" / "world_model")
    return {"task": root / "task", "recovery": root / "recovery", "model": root / "model"}


def bench_loop(task_name: str = "fragile-push-wall", episodes: int = 3, config: Path | None = None,
               progress: bool = True) -> dict[str, Any]:
    """Step and render percentiles over `episodes` shielded deploy episodes with perception in the loop."""
    configs = load_configs(config)
    task = get_franka_task(task_name)
    with tempfile.TemporaryDirectory() as scratch:
        made = default_size_checkpoints(task_name, Path(scratch), configs.training)
        request = RunRequest(task=task_name, mode="deploy", episodes=episodes, task_policy=made["task"],
                             out=Path(scratch) / "run", recovery_policy=made["recovery"], world_model=made["model"],
                             config=configs.path)
        agent, shield = build_agent(request, task, configs)
        with open_world(task, configs, request.robot, request.camera, request.seed) as (bridge, objects, timing, scene):
            loop = RobotLoop(task_name, "deploy", bridge, objects, TaskMonitor(task, configs.runtime.monitor), agent,
                             shield, scene, ScriptedOperator(), configs.runtime, episodes, camera_time=timing)
            records = [loop.run_episode(k) for k in tqdm(range(episodes), desc="loop episodes", disable=not progress)]
    period_ms = 1000.0 / configs.bridge.control_rate_hz
    step = percentiles([s for s, _ in loop.timings])
    render = percentiles([c for _, c in loop.timings if c is not None])
    return {"task": task_name, "episodes": episodes, "ticks": len(loop.timings), "period_ms": period_ms,
            "step": step, "render": render,
            "step_share_of_period": {k: v / period_ms for k, v in step.items()},
            "step_plus_render_share_of_period": {k: (step[k] + render[k]) / period_ms for k in step},
            "overruns": int(sum(r.overruns for r in records)),
            "unusable_ticks": int(sum(r.unusable_ticks for r in records)),
            "outcomes": [r.outcome for r in records], "mean_risk": float(np.nanmean([r.mean_risk for r in records]))}
