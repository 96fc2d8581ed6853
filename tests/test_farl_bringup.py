"""`farl bringup`: the graph's node table in one process, on one executor, until its episodes are done."""

from __future__ import annotations

import csv
import subprocess
import sys
from pathlib import Path

import pytest

from farl.data_build import bag_paths, episode_transitions, read_bag
from farl_core.franka_tasks import get_franka_task

pytestmark = pytest.mark.minutes(1.5)  # of one core (conftest.py schedules it early)

REPO = Path(__file__).resolve().parent.parent
CHECKPOINTS = REPO / "checkpoints" / "franka" / "bounded-soccer" / "pretrain"
OUTCOMES = ("success", "ir_failure", "timeout", "aborted")


def test_farl_bringup_runs_the_node_table_in_one_process_until_its_episodes_are_done(tmp_path: Path) -> None:
    """`farl bringup`: the same table on one executor (ground truth in perception's place: a shorter test)."""
    out = tmp_path / "run"
    command = [str(Path(sys.executable).with_name("farl")), "bringup", "--task", "bounded-soccer", "--mode", "deploy",
               "--episodes", "1", "--camera", "ground-truth", "--task-policy", str(CHECKPOINTS / "task_policy"),
               "--recovery-policy", str(CHECKPOINTS / "recovery_policy"),
               "--world-model", str(CHECKPOINTS / "world_model"), "--out", str(out)]
    done = subprocess.run(command, capture_output=True, text=True, timeout=900, cwd=REPO)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    rows = list(csv.DictReader((out / "episodes.csv").open()))
    assert len(rows) == 1 and rows[0]["outcome"] in OUTCOMES, rows
    assert int(rows[0]["length"]) > 5 and float(rows[0]["ret"]) != 0.0, rows  # deploy mode counts its return
    assert f"{out}: 1 episodes" in done.stdout, done.stdout


def test_farl_bringup_mode_teleop_records_the_devices_demonstrations(tmp_path: Path) -> None:
    """mode teleop: the scripted device in the policy's place, no shield, the recorder labels each episode's bag."""
    out = tmp_path / "demos"
    command = [str(Path(sys.executable).with_name("farl")), "bringup", "--task", "bounded-soccer", "--mode", "teleop",
               "--device", "scripted", "--role", "task", "--episodes", "1", "--camera", "ground-truth", "--out",
               str(out)]
    done = subprocess.run(command, capture_output=True, text=True, timeout=900, cwd=REPO)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    [bag] = bag_paths([tmp_path / "demos.bags"])
    label, messages = read_bag(bag)
    assert (label.task, label.role) == ("bounded-soccer", "task") and label.outcome in OUTCOMES[:3], label
    assert "/farl/safety" not in messages and "/farl/action/proposed" not in messages   # no shield, no proposal
    steps = episode_transitions(get_franka_task("bounded-soccer"), label, messages)
    assert steps is not None and len(steps) > 5
    assert steps.terminated[-1] == (label.outcome in ("success", "ir_failure"))  # the scripted push mostly scores
