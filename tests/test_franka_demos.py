"""Scripted Franka demonstrations recorded through the robot loop, and training on them unchanged.

Episodes run on franky-sim (about 10-25 s each here), so the recordings are one or two episodes
of Bounded Soccer, the shortest task; `farl bench franka` records the full datasets.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from farl.demo_recording import DemoRequest, record_demos
from farl.robot_loop import RobotLoop
from farl_core.datasets import LABELS, load_dataset
from farl_core.errors import FarlError
from farl_core.franka_tasks import get_franka_task
from farl_sim.franka_scenes.controllers import failure_margin, scripted_controller

pytestmark = pytest.mark.minutes(1.5)  # of one core (conftest.py schedules it early)

TASK = "bounded-soccer"
SMALL_TRAINING = ("farl_training:\n  ros__parameters:\n    world_model: {steps: 30, hidden: [32, 32]}\n"
                  "    offline:\n      bc: {ensemble_size: 2, steps: 10}\n      critics: {steps: 10}\n"
                  "      dynamics: {steps: 5}\n      uni_o4: {steps: 6, eval_every: 3, ope_horizon: 5}\n")


def farl(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "farl.cli", *args], capture_output=True, text=True, timeout=600)


@pytest.fixture(scope="module")
def datasets(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """One episode per role: task demos through the simulated camera and perception, the others on ground truth."""
    root = tmp_path_factory.mktemp("demos")
    made = {}
    for role, camera in (("task", "sim"), ("failure", "ground-truth"), ("recovery", "ground-truth")):
        made[role] = root / role
        proc = farl("demos", role, "--task", f"franka-{TASK}", "--count", "1", "--camera", camera,
                    "--out", str(made[role]))
        assert proc.returncode == 0, proc.stderr[-2000:]
        assert f"{role} demos of franka-{TASK}, camera {camera}" in proc.stdout
    return made


def test_each_role_records_what_it_is_for(datasets: dict[str, Path]) -> None:
    task = get_franka_task(TASK)
    for role, path in datasets.items():
        data, labels = load_dataset(path, task.spec)
        assert len(data) > 0 and np.all(labels == LABELS[role])
        # consecutive transitions chain: what the loop observed after an action is the next one's observation
        inner = ~data.done[:-1]
        assert np.allclose(data.next_obs[:-1][inner], data.obs[1:][inner])
    task_demo, _ = load_dataset(datasets["task"], task.spec)
    assert task_demo.terminated[-1] and task_demo.cost.sum() == 0  # ended at the goal, never out of bounds
    last = task_demo.next_obs[-1]
    assert np.linalg.norm(last[4:6] - last[6:8]) <= task.geometry.success_radius
    failure, _ = load_dataset(datasets["failure"], task.spec)
    assert failure.cost[-1] == 1.0 and failure.terminated[-1] and failure.cost[:-1].sum() == 0
    recovery, _ = load_dataset(datasets["recovery"], task.spec)
    # the clip starts near the boundary (the failure controller handed over) and backs the hand away from the
    # ball; the ball, already rolling, still crosses the boundary in some clips (README, known limitations)
    assert failure_margin(task, recovery.obs[0]) < 0.03
    assert len(recovery) == 30 or (recovery.cost[-1] == 1.0 and recovery.terminated[-1])
    gap = np.linalg.norm(recovery.obs[:, :2] - recovery.obs[:, 4:6], axis=1)
    assert gap[-1] > gap[0] + 0.02


def test_train_and_calibrate_work_on_the_recorded_demos(datasets: dict[str, Path], tmp_path: Path) -> None:
    config = tmp_path / "small.yaml"
    config.write_text(SMALL_TRAINING)
    every = [str(p) for p in datasets.values()]
    common = ("--task", f"franka-{TASK}", "--config", str(config))
    model = farl("train", "world-model", "--data", *every, "--out", str(tmp_path / "model"), *common)
    assert model.returncode == 0, model.stderr[-2000:]
    policy = farl("train", "task-policy", "--data", str(datasets["task"]), "--out", str(tmp_path / "task"), *common)
    assert policy.returncode == 0, policy.stderr[-2000:]
    calibrated = farl("calibrate", "--world-model", str(tmp_path / "model"), "--task-policy", str(tmp_path / "task"),
                      "--data", str(datasets["failure"]), *common)
    assert calibrated.returncode == 0 and "eps_safe=" in calibrated.stdout, calibrated.stderr[-2000:]
    assert "alarm lead: median" in calibrated.stdout


def test_an_interrupted_recording_resumes_where_it_stopped(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    request = DemoRequest(task=TASK, role="task", count=2, out=tmp_path / "task", camera="ground-truth", seed=5)
    episodes: list[int] = []
    original = RobotLoop.run_episode

    def crash_on_second(loop: RobotLoop, episode: int):  # noqa: ANN202 - as RobotLoop.run_episode
        if episode == 1 and not episodes.count(1):
            episodes.append(1)
            raise KeyboardInterrupt
        episodes.append(episode)
        return original(loop, episode)

    monkeypatch.setattr(RobotLoop, "run_episode", crash_on_second)
    with pytest.raises(KeyboardInterrupt):
        record_demos(request, progress=False)
    assert not request.out.exists() and (tmp_path / ".task.recording" / "state.json").is_file()
    data = record_demos(request, progress=False)
    assert episodes == [0, 1, 1]  # episode 0 was not recorded again
    assert len(data.episode_slices()) == 2 and request.out.is_dir()
    assert not (tmp_path / ".task.recording").exists()
    with pytest.raises(FarlError, match="already exists"):
        record_demos(request, progress=False)


def test_the_controllers_read_the_observation_only_and_refuse_unknown_roles() -> None:
    task = get_franka_task("fragile-push-wall")
    obs = np.array([0.55, 0.0, 0.5, 0.0, 0.42, 0.08, 0.64, 0.08], dtype=np.float32)
    action = scripted_controller(task, "task")(obs)
    assert action.shape == (4,) and np.all(np.abs(action) <= 1.0) and action[2] < 0  # goes down to push
    # the cup far from the wall; the failure controller's straight push heads for it
    assert failure_margin(task, obs) > 0.05 and scripted_controller(task, "failure")(obs)[0] != 0
    with pytest.raises(FarlError, match="unknown demonstration role"):
        scripted_controller(task, "teleop")
    with pytest.raises(FarlError, match="scripted demos run on franky-sim"):
        DemoRequest(task=TASK, role="task", count=1, out=Path("x"), camera="realsense").check()
