"""The `farl` console script: doctor, config check/show, and the one-line error boundary."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from farl import cli, doctor
from farl.config_files import NODE_SCHEMAS
from farl_core.config import load_file

pytestmark = pytest.mark.minutes(1)  # of one core (conftest.py schedules it early)

FARL = Path(sys.executable).with_name("farl")


def run_farl(*args: str) -> subprocess.CompletedProcess[str]:
    """Run the installed console script, as a user would."""
    return subprocess.run([str(FARL), *args], capture_output=True, text=True, timeout=300)


def test_doctor_json_reports_every_check_and_passes_here() -> None:
    proc = run_farl("doctor", "--json")
    records = {r["name"]: r for r in json.loads(proc.stdout)}
    assert set(records) == {"python", "torch", "cuda", "mujoco", "franky", "franky-sim",
                            "realsense", "ros2", "farl_interfaces"}
    # This machine is provisioned by scripts/setup.sh: everything required must work.
    assert proc.returncode == 0, proc.stdout
    assert "osmesa ok" in records["mujoco"]["detail"]
    assert all(r["fix"] for r in records.values() if r["status"] != "ok")
    # ROS 2 is real here: the Kilted wheels of scripts/setup.sh, Fast DDS, our interfaces built into .venv
    assert records["ros2"]["status"] == "ok", records["ros2"]
    assert records["ros2"]["detail"].startswith("kilted; rclpy 9.") and "from PyPI wheels" in records["ros2"]["detail"]
    assert "RMW rmw_fastrtps_cpp" in records["ros2"]["detail"]
    assert records["farl_interfaces"]["status"] == "ok", records["farl_interfaces"]
    assert str(Path(sys.prefix).resolve()) in records["farl_interfaces"]["detail"]


def test_doctor_names_broken_ros_libraries_with_the_fix(tmp_path: Path) -> None:
    """A venv python whose loader path lacks the ROS libraries (and whose bootstrapper re-exec is skipped)."""
    import os

    env = {k: v for k, v in os.environ.items() if k not in ("LD_LIBRARY_PATH", "FARL_ROS_ENV")}
    env["_ROS_WHEELS_BOOTSTRAP_COMPLETE"] = "1"
    proc = subprocess.run([str(FARL), "doctor", "--json"], capture_output=True, text=True, timeout=300, env=env)
    records = {r["name"]: r for r in json.loads(proc.stdout)}
    assert records["ros2"]["status"] == "fail" and "farl-ros.env" in records["ros2"]["fix"]
    assert records["farl_interfaces"]["status"] == "fail"
    assert proc.returncode == 1


def test_doctor_failure_exits_nonzero_with_fix(capsys, monkeypatch) -> None:
    broken = (lambda: doctor.check_module("franky", "franky_not_installed_here", "pip install franky-control"),
              doctor.check_python)
    monkeypatch.setattr(doctor, "CHECKS", broken)
    assert cli.main(["doctor"]) == 1
    out = capsys.readouterr().out
    assert "FAIL  franky" in out and "fix: pip install franky-control" in out
    assert "1 problem(s)" in out


def test_gl_probe_reports_unknown_backend() -> None:
    ok, why = doctor.probe_mujoco_gl("no_such_backend", timeout_s=60)
    assert not ok and why


def test_config_check_accepts_shipped_file() -> None:
    proc = run_farl("config", "check")
    assert proc.returncode == 0, proc.stderr
    assert "ok (farl_bridge, farl_training, farl_policy, farl_perception)" in proc.stdout


def test_config_check_bad_value_is_one_line_error(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("farl_bridge:\n  ros__parameters:\n    control_rate_hz: -5.0\n")
    proc = run_farl("config", "check", str(path))
    assert proc.returncode == 2
    assert proc.stderr.count("\n") == 1
    assert proc.stderr.startswith(f"farl: error: {path}: farl_bridge.control_rate_hz: expected a value > 0.0")


def test_config_check_missing_file(tmp_path: Path) -> None:
    proc = run_farl("config", "check", str(tmp_path / "nope.yaml"))
    assert proc.returncode == 2 and "config file not found" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_config_show_is_a_valid_parameter_file(tmp_path: Path, capsys) -> None:
    assert cli.main(["config", "show"]) == 0
    path = tmp_path / "defaults.yaml"
    path.write_text(capsys.readouterr().out)
    configs = load_file(path, NODE_SCHEMAS)
    assert configs == {node: schema() for node, schema in NODE_SCHEMAS.items()}
    assert yaml.safe_load(path.read_text())["farl_bridge"]["ros__parameters"]["robot"] == "sim"


def test_demos_and_train_world_model_from_the_command_line(tmp_path: Path) -> None:
    """The user's path: generate demos, train with a small config, and never overwrite silently."""
    config = tmp_path / "small.yaml"
    config.write_text("farl_training:\n  ros__parameters:\n    world_model: {steps: 50, hidden: [32, 32]}\n")
    for kind, count in (("task", "5"), ("failure", "30")):
        proc = run_farl("demos", kind, "--count", count, "--out", str(tmp_path / f"{kind}.npz"))
        assert proc.returncode == 0, proc.stderr
    args = ["train", "world-model", "--data", str(tmp_path / "task.npz"), str(tmp_path / "failure.npz"),
            "--out", str(tmp_path / "wm"), "--config", str(config)]
    proc = run_farl(*args)
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "wm" / "world_model" / "weights.safetensors").is_file()
    rows = list(csv.DictReader((tmp_path / "wm" / "metrics.csv").open()))
    assert {row["stage"] for row in rows} == {"world_model"}
    assert sorted({int(row["step"]) for row in rows}) == list(range(50))
    assert {row["name"] for row in rows} == {"loss", "consistency", "reward", "constraint", "decoder"}
    assert any((tmp_path / "wm" / "tensorboard").iterdir())
    again = run_farl(*args)
    assert again.returncode == 2 and "already holds results" in again.stderr and "Traceback" not in again.stderr
    again = run_farl("demos", "task", "--out", str(tmp_path / "task.npz"))
    assert again.returncode == 2 and "already exists" in again.stderr


def test_train_task_policy_logs_every_stage_per_step(tmp_path: Path) -> None:
    config = tmp_path / "small.yaml"
    config.write_text("farl_training:\n  ros__parameters:\n    offline:\n"
                      "      bc: {ensemble_size: 2, steps: 20}\n      critics: {steps: 15}\n"
                      "      dynamics: {steps: 10}\n      uni_o4: {steps: 12, eval_every: 6, ope_horizon: 5}\n")
    assert run_farl("demos", "task", "--count", "3", "--out", str(tmp_path / "task.npz")).returncode == 0
    proc = run_farl("train", "task-policy", "--data", str(tmp_path / "task.npz"), "--out", str(tmp_path / "run"),
                    "--config", str(config))
    assert proc.returncode == 0, proc.stderr
    rows = list(csv.DictReader((tmp_path / "run" / "metrics.csv").open()))
    steps: dict[tuple[str, str], list[int]] = {}
    for row in rows:
        steps.setdefault((row["stage"], row["name"]), []).append(int(row["step"]))
    assert steps[("bc/member0", "nll")] == list(range(20)) and steps[("bc/member1", "nll")] == list(range(20))
    assert steps[("critics", "value_loss")] == list(range(15)) == steps[("critics", "q_loss")]
    assert steps[("dynamics", "loss")] == list(range(10))
    assert steps[("uni_o4/member0", "objective")] == list(range(12))
    assert steps[("uni_o4/member1", "ope_behaviour")] == [5, 11]  # at every OPE gate
    assert (tmp_path / "run" / "policy" / "weights.safetensors").is_file()


def test_calibrate_out_of_range_share_is_one_line_error(tmp_path: Path, capsys) -> None:
    args = ["calibrate", "--world-model", str(tmp_path), "--task-policy", str(tmp_path), "--data", str(tmp_path)]
    assert cli.main([*args, "--max-false-alarm", "1.5"]) == 2
    err = capsys.readouterr().err
    assert "--max-false-alarm in [0, 1], got 0.9 and 1.5" in err and len(err.strip().splitlines()) == 1
    assert cli.main([*args, "--recall", "0"]) == 2
