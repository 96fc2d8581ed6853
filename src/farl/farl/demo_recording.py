"""`farl demos ROLE --task <Franka task>`: scripted demonstrations recorded through the robot loop.

The paper's real-robot pipeline trains on a human's task, recovery and failure demonstrations
(section VI.C).  On franky-sim the scripted controllers of farl_sim.franka_scenes.controllers stand
in for that human, and this module records them through the same RobotLoop `farl run` drives:
simulated D435 -> perception -> task monitor -> bridge, so every observation, reward and cost in
the dataset is what the deployed policy will see (`--camera ground-truth` skips perception).

  task      the task controller plus N(0, noise^2) action noise; the episode ends at success, IR
            failure or timeout, as a deployed one does.
  failure   guided failures: the task controller for a random number of ticks (so failures start
            from states the task distribution visits), then the failure controller into the failure.
            An episode that times out before its failure is dropped (on franky-sim about 3 in 10 Bounded
            Soccer dribbles miss the boundary within the episode) and the next one tries again.
  recovery  the failure controller drives towards a failure, unrecorded, until the state is within
            `handover_gap` of it (a near-failure state); the recovery controller then takes over and
            its first `recovery_steps` steps are the clip.  The recorder then ends the episode with an
            abort (the demonstrator stops recording; an abort is not a failure).  An approach that
            fails before the handover records nothing and the next episode tries again.

Resumable: after every episode the transitions so far and the episode counter are written
atomically beside the output (`.<out>.recording/`); rerunning the same command continues from
there, and the finished dataset is written once, atomically, as a Minari folder.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np
from tqdm import tqdm

from farl.agent import Proposal
from farl.console import ConsoleView
from farl.robot_loop import RobotLoop
from farl.run_session import load_configs, open_world
from farl.runtime_config import demo_runtime
from farl.tasks import franka_task_id, get_task
from farl.training import save_data
from farl_core.atomic_files import write_atomic
from farl_core.episodes import HumanEvent
from farl_core.errors import FarlError
from farl_core.franka_tasks import FrankaTask, get_franka_task
from farl_core.task_monitor import TaskMonitor
from farl_core.transitions import Transitions
from farl_sim.franka_scenes.controllers import ROLES, DemoScript


@dataclass(frozen=True)
class DemoRequest:
    """The `farl demos ROLE --task <Franka task>` command line."""

    task: str
    role: str
    count: int                    # episodes that recorded at least one transition
    out: Path
    camera: str = "sim"           # sim (perception in the loop) | ground-truth
    seed: int = 0
    noise: float | None = None    # action noise std (default: DEFAULT_NOISE[role])
    recovery_steps: int = 30      # the recovery clip's length (FailureBench's clip length)
    handover_gap: float = 0.03    # metres from the failure at which the recovery takes over
    guide_within: int = 40        # failure demos: the task controller runs for U[0, guide_within) ticks
    config: Path | None = None
    overwrite: bool = False

    def check(self) -> None:
        if self.role not in ROLES:
            raise FarlError(f"unknown demonstration role '{self.role}'; choose one of: {', '.join(ROLES)}")
        if self.count < 1:
            raise FarlError(f"--count must be at least 1, got {self.count}")
        if self.camera not in ("sim", "ground-truth"):
            raise FarlError(f"--camera {self.camera}: scripted demos run on franky-sim, use sim or ground-truth "
                            "(on the Panda, record teleoperated demos)")


DEFAULT_NOISE = {"task": 0.2, "recovery": 0.1, "failure": 0.2}
"""Action noise per role: medium-expert task data (FailureBench uses 0.3 on its easier grids; pushes
at the bridge's 3 cm cap lose the object above ~0.2), a gentle recovery, varied failures."""


class ScriptedAgent:
    """The robot loop's agent for recording: a scripted controller per tick, transitions kept as they complete."""

    def __init__(self, task: FrankaTask, request: DemoRequest, rng: np.random.Generator) -> None:
        self.task = task
        self.request = request
        self.rng = rng
        self.noise = DEFAULT_NOISE[request.role] if request.noise is None else request.noise
        self.script = DemoScript(task, request.role, request.handover_gap, request.guide_within)
        self.rows: list[tuple[np.ndarray, ...]] = []
        self.updates = 0
        self._pending: tuple[np.ndarray, np.ndarray, bool] | None = None   # obs, executed action, recorded
        self.clip_done = False

    # --- the RobotLoop agent interface (farl.agent.Agent) ---------------------------------------

    @property
    def pending(self) -> bool:
        return self._pending is not None

    def begin_episode(self) -> None:
        self.clip_done = False
        self.script.begin(self.rng)

    def propose(self, observation: np.ndarray) -> Proposal:
        action = self.script.action(observation).astype(np.float64)
        action[:3] += self.noise * self.rng.standard_normal(3)
        return Proposal(np.clip(action, -1.0, 1.0).astype(np.float32), 0.0, 0)

    def commit(self, observation: np.ndarray, proposal: Proposal, executed: np.ndarray) -> None:
        recorded = self.request.role != "recovery" or self.script.handed_over
        self._pending = (observation.copy(), np.asarray(executed, np.float32).copy(), recorded)

    def outcome(self, reward: float, cost: float, next_observation: np.ndarray, terminated: bool,
                truncated: bool) -> None:
        assert self._pending is not None
        obs, act, recorded = self._pending
        self._pending = None
        if recorded:
            self.rows.append((obs, act, np.float32(reward), next_observation.copy(), terminated, truncated,
                              np.float32(cost)))
            clip = sum(1 for _ in self._episode_rows())
            if self.request.role == "recovery" and clip >= self.request.recovery_steps:
                self.clip_done = True

    def lose_step(self) -> None:
        """The pending step's outcome is unknown: drop it and end the recorded trajectory there."""
        self._pending = None
        self._cut()

    def end_episode(self) -> None:
        self.lose_step()

    # --- recording --------------------------------------------------------------------------

    def _episode_rows(self):
        for row in reversed(self.rows):
            if row[4] or row[5]:
                break
            yield row

    def _cut(self) -> None:
        """Mark the last recorded transition truncated unless it already ends an episode."""
        if self.rows and not (self.rows[-1][4] or self.rows[-1][5]):
            obs, act, rew, nxt, _, _, cost = self.rows[-1]
            self.rows[-1] = (obs, act, rew, nxt, False, True, cost)

    def transitions(self) -> Transitions:
        if not self.rows:
            return Transitions.empty(self.task.spec)
        columns = list(zip(*self.rows, strict=True))
        return Transitions(*(np.asarray(c) for c in columns))


class ClipOperator:
    """The demonstrator at the console: ends the episode once the recovery clip is complete."""

    def __init__(self, agent: ScriptedAgent) -> None:
        self.agent = agent

    def poll(self) -> list[HumanEvent]:
        return [HumanEvent.ABORT] if self.agent.clip_done else []

    def show(self, view: ConsoleView) -> None:
        """Progress goes to the recorder's bar."""


class Recording:
    """The resumable state of one recording, in `.<out>.recording/` beside the dataset."""

    def __init__(self, request: DemoRequest) -> None:
        self.request = request
        self.folder = request.out.parent / f".{request.out.name}.recording"

    def identity(self) -> dict:
        return {k: str(v) if isinstance(v, Path) else v for k, v in asdict(self.request).items()
                if k not in ("count", "overwrite", "out")}

    def load(self, agent: ScriptedAgent) -> tuple[int, int]:
        """(episodes tried, episodes recorded) so far; the agent gets the transitions back."""
        state = self.folder / "state.json"
        if not state.is_file():
            return 0, 0
        saved = json.loads(state.read_text())
        if saved["identity"] != self.identity():
            raise FarlError(f"{self.folder} holds an unfinished recording with other settings; rerun it with "
                            "those, or delete the folder to start over")
        data = Transitions.load(self.folder / "transitions.npz", self.task_spec)
        fields = ("obs", "act", "rew", "next_obs", "terminated", "truncated", "cost")
        agent.rows = [tuple(getattr(data, f)[i] for f in fields) for i in range(len(data))]
        return saved["tried"], saved["recorded"]

    @property
    def task_spec(self):
        return get_franka_task(self.request.task).spec

    def save(self, agent: ScriptedAgent, tried: int, recorded: int) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        agent.transitions().save(self.folder / "transitions.npz", overwrite=True)
        payload = json.dumps({"identity": self.identity(), "tried": tried, "recorded": recorded}, indent=2)
        write_atomic(self.folder / "state.json", lambda tmp: tmp.write_text(payload))


def record_demos(request: DemoRequest, progress: bool = True) -> Transitions:
    """Record (or resume) the demonstrations `request` asks for and write them as a Minari dataset."""
    request.check()
    if request.out.exists() and not request.overwrite:
        raise FarlError(f"{request.out} already exists (choose another --out, or pass --overwrite to replace it)")
    task = get_franka_task(request.task)
    configs = load_configs(request.config)
    configs = replace(configs, runtime=demo_runtime(configs.runtime, request.role))
    agent = ScriptedAgent(task, request, np.random.default_rng(request.seed))
    recording = Recording(request)
    tried, recorded = recording.load(agent)
    max_tries = max(3 * request.count, request.count + 5)  # retries for dropped or empty episodes
    bar = tqdm(total=request.count, initial=recorded, desc=f"{request.role} demos {task.name}", unit="episode",
               disable=not progress)
    with open_world(task, configs, "sim", request.camera, request.seed) as (bridge, objects, timing, scene):
        loop = RobotLoop(task.name, "record", bridge, objects, TaskMonitor(task, configs.runtime.monitor), agent,
                         None, scene, ClipOperator(agent), configs.runtime, request.count, camera_time=timing)
        while recorded < request.count and tried < max_tries:
            # every episode from its own seed, so a resumed recording draws what the uninterrupted one would
            agent.rng = np.random.default_rng([request.seed, tried])
            scene.rng = np.random.default_rng([request.seed, tried, 1])
            before = len(agent.rows)
            agent.begin_episode()
            loop.run_episode(tried)
            tried += 1
            if request.role == "failure" and not any(row[6] for row in agent.rows[before:]):
                del agent.rows[before:]  # the guided failure never happened (timeout): not a failure demonstration
            recorded += len(agent.rows) > before
            recording.save(agent, tried, recorded)
            bar.set_postfix(transitions=len(agent.rows), failures=int(sum(r[6] for r in agent.rows)), tried=tried,
                            refresh=False)
            bar.update(len(agent.rows) > before)
    bar.close()
    if recorded < request.count:
        raise FarlError(f"only {recorded} of {request.count} {request.role} episodes recorded anything in {tried} "
                        f"tries (kept in {recording.folder}); check the scene with `farl run --camera sim`")
    data = agent.transitions()
    save_data(data, request.out, get_task(franka_task_id(task.name)), request.role, overwrite=request.overwrite)
    shutil.rmtree(recording.folder)
    return data

