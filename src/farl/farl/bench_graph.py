"""`farl bench graph`: the ROS graph's control-step latency beside the synchronous runner's, on franky-sim.

Graph: every node of the table its own process (as `ros2 launch` starts them), deploy mode, the
scene node publishing the simulator's object states on /farl/objects (`camera:=ground-truth`: no
camera, no perception node), all nodes on the wall clock (no sim time: /clock's 5 ms steps would
blur a few-millisecond figure).  The latency is what the bridge node
measures for every command it applies: from the tick's stamp (the policy node taking the
/farl/objects message) to the bridge having applied the resulting command: task monitor, policy,
/farl/action/proposed, shield, /farl/action/command, the franky command.  Perception's own compute
would come before the stamp anyway; leaving it out keeps a 2-core machine from turning the
benchmark into a measurement of perception's backlog.

Synchronous runner, same run, same checkpoints: `farl run`'s loop with `--camera ground-truth`, so
its step time (monitor + policy + shield + bridge command) also excludes perception.  The ratio
graph / runner is the middleware's and the process split's price.  Checkpoints are untrained
networks of the default sizes (bench_loop.py: timing does not depend on what they learned).
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from tqdm import tqdm

from farl.bench import percentiles
from farl.bench_loop import default_size_checkpoints
from farl.console import ScriptedOperator
from farl.graph import GraphArgs, graph_nodes, ros_arguments, write_bringup_parameters
from farl.robot_loop import RobotLoop
from farl.run_session import RunRequest, build_agent, load_configs, open_world
from farl_core.errors import FarlError
from farl_core.franka_tasks import get_franka_task
from farl_core.ros_domain import claim_isolated_domain
from farl_core.task_monitor import TaskMonitor

GRAPH_TIMEOUT_S = 1800.0


def bench_graph(task_name: str = "fragile-push-wall", episodes: int = 3, config: Path | None = None,
                progress: bool = True) -> dict[str, Any]:
    """Latency percentiles of the graph (bridge-measured) and of the synchronous runner's step, side by side."""
    configs = load_configs(config)
    task = get_franka_task(task_name)
    with tempfile.TemporaryDirectory() as scratch:
        root = Path(scratch)
        made = default_size_checkpoints(task_name, root, configs.training)
        graph = _graph_latency(task_name, episodes, configs.path, made, root, progress)
        runner = _runner_step(task, episodes, configs, made, root, progress)
    return {"task": task_name, "episodes": episodes, "graph": graph, "runner": runner,
            "ratio_p50": graph["latency"]["p50_ms"] / runner["step"]["p50_ms"],
            "ratio_p99": graph["latency"]["p99_ms"] / runner["step"]["p99_ms"]}


def _graph_latency(task_name: str, episodes: int, config: Path, made: dict[str, Path], root: Path,
                   progress: bool) -> dict[str, Any]:
    claim_isolated_domain()  # nothing else on this machine joins (or disturbs) the measured graph
    stats = root / "bridge_stats.json"
    args = GraphArgs(task=task_name, mode="deploy", camera="ground-truth", config=config, task_policy=str(made["task"]),
                     recovery_policy=str(made["recovery"]), world_model=str(made["model"]), out=str(root / "graph"),
                     episodes=episodes, sim_time=False, bridge_stats=str(stats))
    nodes = graph_nodes(args)
    bringup = write_bringup_parameters(args, nodes)
    logs = root / "logs"
    logs.mkdir()
    processes = []
    for node in nodes:
        command = [str(Path(sys.executable).with_name(node.executable)), "--ros-args",
                   *ros_arguments(node, config, bringup)]
        with (logs / f"{node.executable}.log").open("wb") as log:
            processes.append(subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT))
    episodes_csv = root / "graph" / "episodes.csv"
    bar = tqdm(total=episodes, desc="graph episodes", unit="episode", disable=not progress)
    deadline = time.monotonic() + GRAPH_TIMEOUT_S
    try:
        done = 0
        while done < episodes:
            if time.monotonic() > deadline or any(p.poll() is not None for p in processes):
                tail = "\n".join((logs / f"{n.executable}.log").read_text(errors="replace")[-1500:] for n in nodes)
                raise FarlError(f"the graph did not finish {episodes} episodes (logs in {logs}):\n{tail}")
            time.sleep(1.0)
            now = max(0, len(episodes_csv.read_text().splitlines()) - 1) if episodes_csv.is_file() else 0
            bar.update(now - done)
            done = now
    finally:
        bar.close()
        for process in processes:
            process.send_signal(signal.SIGINT)
        for process in processes:
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                process.kill()
    figures = json.loads(stats.read_text())
    return {"commands": figures["commands"], "dropped": figures["dropped"],
            "latency": {"p50_ms": figures["latency_p50_ms"], "p99_ms": figures["latency_p99_ms"]},
            "outcomes": [line.split(",")[1] for line in episodes_csv.read_text().splitlines()[1:]]}


def _runner_step(task: Any, episodes: int, configs: Any, made: dict[str, Path], root: Path,
                 progress: bool) -> dict[str, Any]:
    request = RunRequest(task=task.name, mode="deploy", episodes=episodes, task_policy=made["task"],
                         out=root / "runner", recovery_policy=made["recovery"], world_model=made["model"],
                         camera="ground-truth", config=configs.path)
    agent, shield = build_agent(request, task, configs)
    with open_world(task, configs, request.robot, request.camera, request.seed) as (bridge, objects, timing, scene):
        loop = RobotLoop(task.name, "deploy", bridge, objects, TaskMonitor(task, configs.runtime.monitor), agent,
                         shield, scene, ScriptedOperator(), configs.runtime, episodes, camera_time=timing)
        records = [loop.run_episode(k) for k in tqdm(range(episodes), desc="runner episodes", disable=not progress)]
    return {"ticks": len(loop.timings), "step": percentiles([s for s, _ in loop.timings]),
            "outcomes": [r.outcome for r in records]}
