"""`farl bringup`: the graph's node table in one process, on one executor, until its episodes are done."""

from __future__ import annotations

import csv
import re
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


STALLING_BRINGUP = """
import sys, time
from farl.cli import main
from farl_control.bridge import FrankaBridge
command, calls = FrankaBridge.command, []
def stalling(self, *args, **kwargs):  # after the third command (a motion running) franky-sim stops for 1.5 s
    result = command(self, *args, **kwargs)
    calls.append(result)
    if len(calls) == 3:
        self.server.call_in_sim(lambda model, data: time.sleep(1.5))
    return result
FrankaBridge.command = stalling
sys.exit(main())
"""
"""`farl bringup` whose franky-sim stops stepping for longer than libfranka's 1 s timeout, mid-episode."""


def deploy_command(out: Path) -> list[str]:
    """`farl bringup` deploying the committed Soccer checkpoints for one episode (ground truth: a shorter test)."""
    return ["bringup", "--task", "bounded-soccer", "--mode", "deploy", "--episodes", "1", "--camera", "ground-truth",
            "--task-policy", str(CHECKPOINTS / "task_policy"),
            "--recovery-policy", str(CHECKPOINTS / "recovery_policy"),
            "--world-model", str(CHECKPOINTS / "world_model"), "--out", str(out)]


def run_with_log(command: list[str], timeout_s: float) -> subprocess.CompletedProcess:
    """Run `command`; past `timeout_s`, fail with the end of its log (the nodes log to stderr, which a plain
    TimeoutExpired does not show: a CI hang once left nothing to read but MuJoCo's stdout)."""
    try:
        return subprocess.run(command, capture_output=True, text=True, timeout=timeout_s, cwd=REPO)
    except subprocess.TimeoutExpired as exc:
        out, err = (text.decode(errors="replace") if isinstance(text, bytes) else text or ""
                    for text in (exc.stdout, exc.stderr))
        pytest.fail(f"still running after {timeout_s:.0f} s; the end of its output:\n{out[-2000:]}{err[-4000:]}")


def run_bringup(arguments: list[str], simulator_lost) -> subprocess.CompletedProcess:
    """`farl bringup arguments`, which must succeed; franky-sim starved on a loaded machine is simulator_lost's."""
    done = run_with_log([str(Path(sys.executable).with_name("farl")), *arguments], timeout_s=600)
    if done.returncode != 0 and "lost the connection to the robot" in done.stderr:
        simulator_lost(f"in farl bringup:\n{done.stderr[-3000:]}")
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return done


@pytest.mark.flaky(reruns=1)  # franky-sim starved by a loaded machine (simulator_lost)
def test_farl_bringup_runs_the_node_table_in_one_process_until_its_episodes_are_done(
        tmp_path: Path, simulator_lost) -> None:
    """`farl bringup`: the same table on one executor (ground truth in perception's place: a shorter test)."""
    out = tmp_path / "run"
    done = run_bringup(deploy_command(out), simulator_lost)
    rows = list(csv.DictReader((out / "episodes.csv").open()))
    assert len(rows) == 1 and rows[0]["outcome"] in OUTCOMES, rows
    assert int(rows[0]["length"]) > 5 and float(rows[0]["ret"]) != 0.0, rows  # deploy mode counts its return
    assert f"{out}: 1 episodes" in done.stdout, done.stdout


@pytest.mark.flaky(reruns=1)  # franky-sim starved by a loaded machine (simulator_lost)
def test_farl_bringup_mode_teleop_records_the_devices_demonstrations(tmp_path: Path, simulator_lost) -> None:
    """mode teleop: the scripted device in the policy's place, no shield, the recorder labels each episode's bag."""
    out = tmp_path / "demos"
    run_bringup(["bringup", "--task", "bounded-soccer", "--mode", "teleop", "--device", "scripted", "--role", "task",
                 "--episodes", "1", "--camera", "ground-truth", "--out", str(out)], simulator_lost)
    [bag] = bag_paths([tmp_path / "demos.bags"])
    label, messages = read_bag(bag)
    assert (label.task, label.role) == ("bounded-soccer", "task") and label.outcome in OUTCOMES[:3], label
    assert "/farl/safety" not in messages and "/farl/action/proposed" not in messages   # no shield, no proposal
    steps = episode_transitions(get_franka_task("bounded-soccer"), label, messages)
    assert steps is not None and len(steps) > 5
    assert steps.terminated[-1] == (label.outcome in ("success", "ir_failure"))  # the scripted push mostly scores


def test_a_lost_robot_connection_ends_farl_bringup_with_one_line_instead_of_waiting_forever(tmp_path: Path) -> None:
    """libfranka drops a franky-sim that stopped stepping; nothing in the process can bring that bridge back, so the
    process ends (exit 1) with the bridge's error, where it used to wait for a restart that never came (seen in CI)."""
    out = tmp_path / "run"
    done = run_with_log([sys.executable, "-c", STALLING_BRINGUP, *deploy_command(out)], timeout_s=300)
    assert done.returncode == 1, done.stdout[-3000:] + done.stderr[-3000:]
    [said] = [line for line in done.stderr.splitlines() if line.startswith("farl_bridge: error:")]
    assert re.fullmatch(r"farl_bridge: error: lost the connection to the robot at 127\.0\.0\.\d+ \(.*\): .*"
                        r"then rerun to resume", said), said
    assert not (out / "episodes.csv").exists()  # the episode in progress is the one lost
