"""`farl run`: build the robot runtime from the command line, run it episode by episode, resume it after a crash.

The run directory (`--out`) holds everything a session produces, each file written atomically:

    run.json          what was asked (task, mode, robot, camera, checkpoints, seed): a rerun must match
    session/          the session checkpoint after the last finished episode (agent weights, optimisers,
                      generators, stored transitions, episode records, the simulated human's generator)
    episodes.csv      one row per finished episode (robot_loop.EpisodeRecord)
    summary.json      totals and figures; episodes.png: return and cumulative failures per episode
    policy/           the fine-tuned task policy after the latest PPO update (a `--task-policy` for deploy)
    bags/             with --record: one labelled rosbag2/MCAP per episode, role online (`farl data build`)
    tensorboard/      per-episode scalars and PPO statistics

A crash, Ctrl-C or `kill -9` loses at most the episode in progress: the checkpoint is written after
every episode, and rerunning the same command with the same `--out` continues from it.
"""

from __future__ import annotations

import contextlib
import copy
import csv
import io
import json
import logging
import math
from collections.abc import Iterator
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from farl.agent import Agent
from farl.config_files import default_config_path
from farl.online import OnlineFinetuner
from farl.robot_loop import EpisodeRecord, ManualReset, Operator, RobotLoop, SceneOperator
from farl.runtime_config import RuntimeConfig
from farl.training import TrainingConfig, write_json
from farl_control.bridge import FrankaBridge
from farl_control.config import BridgeConfig
from farl_core.atomic_files import write_atomic
from farl_core.checkpoint import load_checkpoint, save_checkpoint
from farl_core.config import load_section, read_yaml
from farl_core.episodes import Outcome
from farl_core.errors import FarlError
from farl_core.franka_tasks import FrankaTask, get_franka_task
from farl_core.task_monitor import TaskMonitor
from farl_policy.critics import ValueCritics
from farl_policy.gaussian import GaussianPolicy
from farl_safety.failure_kinds import count_by_kind
from farl_safety.safety_critic import SafetyCritic
from farl_safety.shield import Shield
from farl_safety.world_model import WorldModel
from farl_teleop.loop_recorder import LoopBagRecorder

log = logging.getLogger(__name__)

SESSION_KIND = "run_session"
RUNTIME_SECTION = "farl_policy"
MODES = ("deploy", "finetune")
CAMERAS = "sim | realsense[:SERIAL] | ground-truth"


@dataclass(frozen=True)
class RunRequest:
    """The `farl run` command line."""

    task: str
    mode: str
    episodes: int
    task_policy: Path
    out: Path
    robot: str = "sim"
    camera: str = "sim"
    recovery_policy: Path | None = None
    world_model: Path | None = None
    seed: int = 0
    config: Path | None = None
    record: bool = False          # every episode also as a labelled bag under out/bags (role online)

    @property
    def shielded(self) -> bool:
        return self.recovery_policy is not None

    def identity(self) -> dict[str, Any]:
        """What a resumed run must share with the interrupted one (the episode count may grow)."""
        return {"task": self.task, "mode": self.mode, "robot": self.robot, "camera": self.camera,
                "task_policy": str(self.task_policy), "recovery_policy": str(self.recovery_policy or ""),
                "world_model": str(self.world_model or ""), "seed": self.seed}

    def check(self) -> None:
        if self.mode not in MODES:
            raise FarlError(f"--mode {self.mode}: choose one of {', '.join(MODES)}")
        if self.episodes < 1:
            raise FarlError(f"--episodes must be at least 1, got {self.episodes}")
        if (self.recovery_policy is None) != (self.world_model is None):
            raise FarlError("the shield needs both --recovery-policy and --world-model (or --no-shield)")
        sim_only = self.camera in ("sim", "ground-truth")
        if sim_only and self.robot != "sim":
            raise FarlError(f"--camera {self.camera} renders franky-sim's scene: with a real robot "
                            f"({self.robot}) use --camera realsense[:SERIAL]")
        kind = self.camera.partition(":")[0]
        if kind not in ("sim", "realsense", "ground-truth"):
            raise FarlError(f"unknown --camera '{self.camera}': use {CAMERAS}")


@dataclass(frozen=True)
class Configs:
    """Every section the runtime reads from the one parameter file."""

    training: TrainingConfig
    bridge: BridgeConfig
    runtime: RuntimeConfig
    path: Path


def load_configs(path: Path | None) -> Configs:
    """The sections of the parameter file the runtime reads; a section left out keeps its defaults."""
    path = path or default_config_path()
    document = read_yaml(path)

    def section(name: str, schema: type) -> Any:
        return load_section(path, name, schema) if name in document else schema()

    return Configs(section("farl_training", TrainingConfig), section("farl_bridge", BridgeConfig),
                   section(RUNTIME_SECTION, RuntimeConfig), path)


def build_agent(request: RunRequest, task: FrankaTask, configs: Configs) -> tuple[Agent, Shield | None]:
    """Task policy (+ PPO learner from the offline V in finetune mode) and the shield, from checkpoints."""
    policy = GaussianPolicy.load(request.task_policy / "policy", kind="task_policy", spec=task.spec)
    learner = None
    if request.mode == "finetune":
        value = copy.deepcopy(ValueCritics.load(request.task_policy / "critics", spec=task.spec).v)
        ppo = configs.training.ppo
        total_updates = max(1, request.episodes * configs.runtime.episodes.max_steps // ppo.rollout_steps)
        torch.manual_seed(request.seed)
        learner = OnlineFinetuner(policy, value, ppo, total_updates, seed=request.seed)
    shield = None
    if request.shielded:
        assert request.recovery_policy is not None and request.world_model is not None
        recovery = GaussianPolicy.load(request.recovery_policy / "policy", kind="recovery_policy", spec=task.spec)
        model = WorldModel.load(request.world_model / "world_model", spec=task.spec)
        shield = Shield(SafetyCritic(model, policy, configs.training.safety_critic), recovery, configs.training.shield)
        if learner is not None:
            learner.shield = shield  # the learner's update_with follows the shield's configuration
    return Agent(policy, learner), shield


@contextlib.contextmanager
def open_world(task: FrankaTask, configs: Configs, robot: str, camera_name: str,
               seed: int) -> Iterator[tuple[FrankaBridge, Any, Any, SceneOperator]]:
    """The bridge, the object source (perception or ground truth), its camera timing and the scene operator."""
    bridge_config = replace(configs.bridge, robot=robot)
    scene = None
    if robot == "sim":
        from farl_sim.franka_scenes import make_franka_scene

        scene = make_franka_scene(task.name)
    # franky-sim unpaced and in lock-step with the loop: the same seed gives the same run (lockstep_server.py)
    bridge = FrankaBridge.connect(bridge_config, scene=scene.build if scene else None, realtime=False,
                                  lockstep=scene is not None)
    camera = None
    try:
        if camera_name == "ground-truth":
            from farl_sim.franka_scenes.sim_source import GroundTruthObjects

            assert scene is not None and bridge.server is not None
            objects: Any = GroundTruthObjects(scene, bridge.server)
            timing = lambda: None  # noqa: E731 - no camera
        else:
            objects, camera = _perception(camera_name, task, configs, bridge, scene)
            timing = lambda: objects.last.timing.grab_s if objects.last is not None else None  # noqa: E731
        if scene is not None:
            from farl_sim.franka_scenes.simulated_human import SimulatedHuman

            assert bridge.server is not None
            operator: SceneOperator = SimulatedHuman(scene, bridge.server, seed)
        else:
            operator = ManualReset(configs.runtime.goal or tuple(task.geometry.goal_region.centre))
        yield bridge, objects, timing, operator
    finally:
        if camera is not None:
            camera.close()
        bridge.close()


def _perception(camera_name: str, task: FrankaTask, configs: Configs, bridge: FrankaBridge,
                scene: Any) -> tuple[Any, Any]:
    from farl_core.camera_model import CameraExtrinsics
    from farl_perception.config import perception_config
    from farl_perception.pipeline import Perception

    config = perception_config(task.name, configs.path)
    if camera_name == "sim":
        from farl_sim.franka_scenes.sim_source import SceneCamera

        assert bridge.server is not None and scene is not None and scene.camera is not None
        camera: Any = SceneCamera(bridge.server, scene.camera)
        if config.extrinsics is None and not config.calibration_file:  # the simulated camera's pose is known
            config = replace(config, extrinsics=CameraExtrinsics.from_matrix(camera.camera_to_base))
    else:
        from farl_perception.realsense_source import RealSenseConfig, RealSenseSource

        camera = RealSenseSource(RealSenseConfig(serial=camera_name.partition(":")[2]))
    try:
        return Perception(config, camera, task.object_names), camera
    except BaseException:
        camera.close()
        raise


class RunDirectory:
    """The files of one run directory (module docstring)."""

    def __init__(self, out: Path) -> None:
        self.out = out

    def claim(self, request: RunRequest) -> bool:
        """Create the run or check it is this request's; True when there is a session to resume."""
        run_file = self.out / "run.json"
        if run_file.is_file():
            recorded = json.loads(run_file.read_text())["identity"]
            if recorded != request.identity():
                changed = ", ".join(k for k in recorded if recorded[k] != request.identity().get(k))
                raise FarlError(f"{self.out} holds another run (different {changed}); choose another --out "
                                "(nothing there is overwritten)")
            return (self.out / "session").is_dir()
        if self.out.exists() and any(self.out.iterdir()):
            raise FarlError(f"{self.out} is not empty and holds no farl run; choose another --out")
        self.out.mkdir(parents=True, exist_ok=True)
        write_json(run_file, {"identity": request.identity(), "episodes": request.episodes})
        return False

    def save(self, agent: Agent, task: FrankaTask, records: list[EpisodeRecord], operator: SceneOperator) -> None:
        """Session checkpoint first, then the files derived from it (a crash in between is healed on resume)."""
        tensors, meta = agent.state()
        rng = getattr(operator, "rng", None)
        save_checkpoint(self.out / "session", kind=SESSION_KIND, tensors=tensors, spec=task.spec, config={},
                        extra={"agent": meta, "records": [asdict(r) for r in records],
                               "scene_rng": rng.bit_generator.state if rng is not None else None},
                        overwrite=True)
        self.write_derived(records)

    def load(self, agent: Agent, task: FrankaTask, operator: SceneOperator) -> list[EpisodeRecord]:
        checkpoint = load_checkpoint(self.out / "session", kind=SESSION_KIND, spec=task.spec)
        agent.load_state(checkpoint.tensors, checkpoint.meta["agent"])
        rng = getattr(operator, "rng", None)
        if rng is not None and checkpoint.meta.get("scene_rng") is not None:
            rng.bit_generator.state = checkpoint.meta["scene_rng"]
        records = [EpisodeRecord(**r) for r in checkpoint.meta["records"]]
        self.write_derived(records)
        return records

    def write_derived(self, records: list[EpisodeRecord]) -> None:
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=[f.name for f in fields(EpisodeRecord)])
        writer.writeheader()
        for record in records:
            writer.writerow(asdict(record))
        write_atomic(self.out / "episodes.csv", lambda tmp: tmp.write_text(buffer.getvalue()))
        write_json(self.out / "summary.json", summarise(records))
        plot_episodes(records, self.out / "episodes.png")


def summarise(records: list[EpisodeRecord]) -> dict[str, Any]:
    """Totals of a session: failures, outcomes, returns, loop timing."""
    def mean(values: list[float]) -> float:
        finite = [v for v in values if math.isfinite(v)]
        return float(np.mean(finite)) if finite else float("nan")

    outcomes = {o: sum(r.outcome == o for r in records) for o in ("success", "ir_failure", "timeout", "aborted")}
    learned = [r for r in records if r.outcome != "aborted"]
    return {"episodes": len(records), "failure_episodes": outcomes["ir_failure"], "outcomes": outcomes,
            "failure_kinds": count_by_kind(r.failure_kind for r in records),
            "mean_return": mean([r.ret for r in learned]),
            "mean_return_first_10": mean([r.ret for r in learned[:10]]),
            "mean_return_last_10": mean([r.ret for r in learned[-10:]]),
            "overrides": sum(r.overrides for r in records), "interventions": sum(r.interventions for r in records),
            "updates": sum(r.updated for r in records),
            "step_p50_ms": mean([r.step_p50_ms for r in records]), "step_p99_ms_max":
            max((r.step_p99_ms for r in records if math.isfinite(r.step_p99_ms)), default=float("nan")),
            "camera_p50_ms": mean([r.camera_p50_ms for r in records]),
            "unusable_ticks": sum(r.unusable_ticks for r in records), "overruns": sum(r.overruns for r in records),
            "robot_errors": sum(r.robot_errors for r in records)}


def plot_episodes(records: list[EpisodeRecord], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax_ret, ax_fail) = plt.subplots(1, 2, figsize=(10, 3.5))
    index = [r.episode + 1 for r in records]
    ax_ret.plot(index, [r.ret for r in records], marker=".")
    ax_fail.plot(index, np.cumsum([r.ir_failure for r in records]))
    ax_ret.set(xlabel="episode", ylabel="return")
    ax_fail.set(xlabel="episode", ylabel="failure episodes (cumulative)")
    fig.tight_layout()
    write_atomic(path, lambda tmp: fig.savefig(tmp, dpi=100, format="png"))
    plt.close(fig)


def run_session(request: RunRequest, operator: Operator | None = None, progress: bool = True) -> list[EpisodeRecord]:
    """Run (or resume) the session `request` describes; the records of all its finished episodes."""
    request.check()
    task = get_franka_task(request.task)
    configs = load_configs(request.config)
    agent, shield = build_agent(request, task, configs)  # before the robot: a bad checkpoint moves nothing
    run_dir = RunDirectory(request.out)
    resume = run_dir.claim(request)
    world = open_world(task, configs, request.robot, request.camera, request.seed)
    with world as (bridge, objects, timing, scene_operator), _console(operator) as console:
        records = run_dir.load(agent, task, scene_operator) if resume else []
        if records:
            log.info("resuming %s after episode %d", request.out, len(records))
        recorder = LoopBagRecorder(request.out / "bags", task.name, "online") if request.record else None
        loop = RobotLoop(task.name, request.mode, bridge, objects, TaskMonitor(task, configs.runtime.monitor), agent,
                         shield, scene_operator, console, configs.runtime, request.episodes, camera_time=timing,
                         recorder=recorder)
        loop.failures = sum(r.ir_failure for r in records)
        tensorboard = _tensorboard(request.out)
        bar = tqdm(total=request.episodes, initial=len(records), desc=f"{request.mode} {task.name}", unit="episode",
                   disable=not progress or getattr(console, "interactive", False))
        try:
            for episode in range(len(records), request.episodes):
                updates_before = agent.updates
                if recorder is not None:
                    recorder.begin(episode)
                record = loop.run_episode(episode)
                records.append(record)
                run_dir.save(agent, task, records, scene_operator)
                if recorder is not None:  # after the checkpoint: a resumed run never re-records a saved bag
                    recorder.finish(Outcome(record.outcome))
                if agent.updates > updates_before:
                    agent.policy.save(request.out / "policy", kind="task_policy", overwrite=True,
                                      extra={"seed": request.seed, "updates": agent.updates})
                _log_episode(tensorboard, record, loop.failures)
                bar.update(1)
                bar.set_postfix(failures=loop.failures, ret=f"{record.ret:.2f}", updates=agent.updates)
                if loop.stop_requested:
                    break
        finally:
            bar.close()
            tensorboard.close()
            if recorder is not None:
                recorder.abandon()  # the episode in progress, if any (nothing when it finished)
    return records


@contextlib.contextmanager
def _console(operator: Operator | None) -> Iterator[Operator]:
    if operator is not None:
        yield operator
        return
    from farl.console import TerminalConsole

    with TerminalConsole() as console:
        yield console


def _tensorboard(out: Path) -> Any:
    from torch.utils.tensorboard import SummaryWriter

    return SummaryWriter(str(out / "tensorboard"))


def _log_episode(writer: Any, record: EpisodeRecord, failures: int) -> None:
    for name, value in (("return", record.ret), ("failure_episodes", failures), ("overrides", record.overrides),
                        ("max_risk", record.max_risk), ("step_p99_ms", record.step_p99_ms)):
        if math.isfinite(value):
            writer.add_scalar(f"episode/{name}", value, record.episode)
    writer.flush()
