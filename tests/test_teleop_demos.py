"""Teleoperated demonstrations end to end on franky-sim: scripted teleop -> bridge -> bags -> dataset -> training.

`farl teleop --device scripted` puts the task's scripted controller in the operator's place (the
device interface a keyboard or SpaceMouse also implements), records Bounded Soccer task demos as
one bag per episode, `farl data build` makes a Minari dataset of them, `farl train task-policy`
trains on it, and the trained policy is deployed on franky-sim (`farl run`): it must reach the goal
in some episodes (the rate is printed; BENCHMARKS.md has it at a larger budget).  Recovery and
failure sessions must label their episodes as what they are.  Ground-truth objects (no camera) keep
the episodes short; the camera path is the graph test's and `farl demos`'.
"""

from __future__ import annotations

import csv
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from farl.data_build import bag_paths, episode_transitions, read_bag
from farl_core.datasets import load_dataset
from farl_core.franka_tasks import get_franka_task
from farl_sim.franka_scenes.controllers import failure_margin
from farl_teleop.episode_bags import read_label

pytestmark = pytest.mark.minutes(4.5)  # of one core (conftest.py schedules it early)

TASK = "bounded-soccer"
DEMOS = 6
EVAL_EPISODES = 4
TRAINING = """
farl_training:
  ros__parameters:
    offline:
      policy: {hidden: [64, 64]}
      bc: {ensemble_size: 1, steps: 1500, batch_size: 128}
      critics: {hidden: [64, 64], steps: 50}
      dynamics: {ensemble_size: 1, hidden: [32, 32], steps: 20}
      uni_o4: {steps: 2, eval_every: 1, ope_horizon: 5, ope_repeats: 1}
"""


def farl(*args: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "farl.cli", *args], capture_output=True, text=True, timeout=timeout)


def teleop(out: Path, role: str, episodes: int, seed: int = 0) -> subprocess.CompletedProcess[str]:
    proc = farl("teleop", "--task", TASK, "--role", role, "--device", "scripted", "--camera", "ground-truth",
                "--episodes", str(episodes), "--seed", str(seed), "--out", str(out))
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc


@pytest.fixture(scope="module")
def task_bags(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("teleop") / "task"
    proc = teleop(out, "task", DEMOS)
    assert f"{DEMOS} task episodes saved" in proc.stdout
    return out


def test_task_demos_train_a_policy_that_reaches_the_goal(task_bags: Path, tmp_path: Path) -> None:
    labels = [read_label(b) for b in bag_paths([task_bags])]
    assert len(labels) == DEMOS and {label.role for label in labels} == {"task"}
    assert sum(label.outcome == "success" for label in labels) >= DEMOS - 1   # the scripted expert pushes in
    built = farl("data", "build", str(task_bags), "--task", TASK, "--out", str(tmp_path / "data"))
    assert built.returncode == 0, built.stderr[-2000:]
    data, _ = load_dataset(tmp_path / "data", get_franka_task(TASK).spec)
    assert data.terminated.sum() >= DEMOS - 1 and data.rew[data.terminated].min() > data.rew.mean()
    (tmp_path / "train.yaml").write_text(TRAINING)
    trained = farl("train", "task-policy", "--task", f"franka-{TASK}", "--data", str(tmp_path / "data"),
                   "--config", str(tmp_path / "train.yaml"), "--out", str(tmp_path / "policy"))
    assert trained.returncode == 0, trained.stderr[-2000:]
    run = farl("run", "--task", TASK, "--mode", "deploy", "--no-shield", "--camera", "ground-truth",
               "--episodes", str(EVAL_EPISODES), "--task-policy", str(tmp_path / "policy"),
               "--out", str(tmp_path / "eval"))
    assert run.returncode == 0, run.stderr[-2000:]
    outcomes = [row["outcome"] for row in csv.DictReader((tmp_path / "eval" / "episodes.csv").open())]
    print(f"trained on {DEMOS} scripted-teleop demos: {outcomes.count('success')}/{EVAL_EPISODES} successes")
    assert outcomes.count("success") >= 1, outcomes


def test_rerun_continues_and_never_overwrites(task_bags: Path) -> None:
    before = {b.name: (b / f"{b.name}.mcap").stat().st_mtime for b in bag_paths([task_bags])}
    proc = teleop(task_bags, "task", DEMOS + 1, seed=1)
    assert f"{DEMOS + 1} task episodes saved" in proc.stdout
    after = bag_paths([task_bags])
    assert len(after) == DEMOS + 1
    assert all((b / f"{b.name}.mcap").stat().st_mtime == before[b.name] for b in after if b.name in before)
    other = farl("teleop", "--task", TASK, "--role", "failure", "--device", "scripted", "--camera", "ground-truth",
                 "--episodes", "1", "--out", str(task_bags))
    assert other.returncode != 0 and "holds task demonstrations" in other.stderr


def test_recovery_and_failure_sessions_label_their_episodes(tmp_path: Path) -> None:
    task = get_franka_task(TASK)
    teleop(tmp_path / "failure", "failure", 1)
    teleop(tmp_path / "recovery", "recovery", 1)
    [failure] = bag_paths([tmp_path / "failure"])
    label, messages = read_bag(failure)
    assert (label.role, label.outcome) == ("failure", "ir_failure")
    steps = episode_transitions(task, label, messages)
    assert steps is not None and steps.cost[-1] == 1.0 and steps.terminated[-1]
    [recovery] = bag_paths([tmp_path / "recovery"])
    label, messages = read_bag(recovery)
    assert (label.role, label.outcome) == ("recovery", "timeout")   # the clip ends by the operator's `e`
    steps = episode_transitions(task, label, messages)
    assert steps is not None and steps.truncated[-1] and steps.cost.sum() == 0
    # the clip starts near the failure (the approach was not recorded), and the hand backs away from the ball
    assert failure_margin(task, steps.obs[0]) < 0.05
    hand_to_ball = np.linalg.norm(steps.obs[:, :2] - steps.obs[:, 4:6], axis=1)
    assert hand_to_ball[-1] > hand_to_ball[0] + 0.02
    assert len(steps) <= 30 and np.isfinite(steps.obs).all()
